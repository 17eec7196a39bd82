"""How the polar_sync admin shows values: one date format, key / value tables, "none".

Every date and time in these pages reads ``2026-12-02 15:23 UTC``: Polar stamps
everything in UTC, and one unambiguous format is easier to compare across pages
than the locale's ``Dec. 2, 2026, 3:23 p.m.`` next to ``timesince`` ages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin
from django.db.models import DateTimeField
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

WHEN_FORMAT = "%Y-%m-%d %H:%M UTC"
WHEN_SUFFIX = "_utc"  # an admin attribute showing the model's datetime field of that name


def when(value: datetime | None) -> str:
    """``2026-12-02 15:23 UTC``; ``-`` for None."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime(WHEN_FORMAT)


def key_values(value: Any, *, sort: bool = False) -> str:
    """A mapping as a small key / value table (escaped: it holds customer-entered text).

    Nested values are shown as compact JSON; an empty or missing mapping is "none".
    """
    if not isinstance(value, Mapping) or not value:
        return "none"
    items = sorted(value.items()) if sort else list(value.items())
    rows = format_html_join(
        "",
        "<tr><th scope='row'>{}</th><td>{}</td></tr>",
        ((key, _scalar(item)) for key, item in items),
    )
    return format_html('<table class="polar-kv"><tbody>{}</tbody></table>', rows)


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _when_display(field: DateTimeField) -> Any:
    @admin.display(description=str(field.verbose_name), ordering=field.name)
    def show(obj: Any) -> str:
        return when(getattr(obj, field.name))

    return show


def _swap(names: Any, datetimes: set[str]) -> Any:
    """``names`` (a list, or fieldsets' nested tuples) with each datetime field renamed."""
    if isinstance(names, str):
        return f"{names}{WHEN_SUFFIX}" if names in datetimes else names
    if isinstance(names, list | tuple):
        return type(names)(_swap(name, datetimes) for name in names)
    return names


class OneDateFormat:
    """Shows every ``DateTimeField`` of the model as :func:`when` does, sortable as before.

    Admins list fields by their names as usual; the swap to a display attribute
    happens in the ``get_*`` hooks, so system checks still see real field names.
    The mirror is read-only, so every field shown is a read-only one.
    """

    model: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields = self.model._meta.get_fields()
        self._datetimes = {f.name for f in fields if isinstance(f, DateTimeField)}
        for field in fields:
            if isinstance(field, DateTimeField):
                setattr(self, f"{field.name}{WHEN_SUFFIX}", _when_display(field))

    def get_list_display(self, request: HttpRequest) -> Any:
        return _swap(list(super().get_list_display(request)), self._datetimes)  # type: ignore[misc]

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> Any:
        links = super().get_list_display_links(request, list_display)  # type: ignore[misc]
        return _swap(list(links), self._datetimes) if links else links

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return _swap(list(super().get_readonly_fields(request, obj)), self._datetimes)  # type: ignore[misc]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        return [
            (title, {**options, "fields": _swap(list(options["fields"]), self._datetimes)})
            for title, options in fieldsets
        ]
