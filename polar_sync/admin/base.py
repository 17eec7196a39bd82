"""What every polar_sync admin shares: read-only mirrors, display helpers, enqueuing tasks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from kombu.exceptions import OperationalError

from ..exceptions import PolarError
from .display import OneDateFormat

logger = logging.getLogger("polar_sync.admin")

# Selections larger than this are refused: such work belongs to the periodic tasks.
MAX_ROWS_PER_ACTION = 1000
# Each of these is a synchronous request to Polar while the operator waits.
MAX_POLAR_CALLS = 100


class NoWrites:
    """Nobody adds, changes or deletes these rows by hand: they belong to Polar or a service.

    Actions that write through a service check their own ``has_<name>_permission``.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(OneDateFormat, NoWrites, admin.ModelAdmin):
    def _has_model_perm(self, request: HttpRequest, action: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{action}_{self.opts.model_name}")


class ReadOnlyInline(OneDateFormat, NoWrites, admin.TabularInline):
    """Rows shown to whoever may view (or change) customers; a sentence when there are none."""

    template = "admin/polar_sync/edit_inline/tabular_or_none.html"
    # Shown instead of an empty table, e.g. "No active meters."
    empty_text = "None."
    extra = 0
    max_num = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        perms = ("polar_sync.view_customer", "polar_sync.change_customer")
        return any(request.user.has_perm(perm) for perm in perms)


def pretty_json(value: Any) -> str:
    """JSON, indented, in a ``<pre>`` (escaped: payloads hold customer-entered text)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="polar-json">{}</pre>', text)


def text_pre(text: str) -> str:
    """Text (an error, a traceback) as it was written, escaped, in a ``<pre>``."""
    return format_html("<pre>{}</pre>", text) if text else "-"


def first_line(text: str) -> str:
    """The first line of ``text``, cut at 80 characters, for a list column."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    return first[:80] + ("…" if len(first) > 80 else "")


def field_display(attr: str, description: str, render: Callable[[Any], Any]) -> Any:
    """An admin column showing ``render(obj.<attr>)``; e.g. ``len`` of a prefetched list."""

    @admin.display(description=description)
    def show(self: Any, obj: Model) -> Any:
        return render(getattr(obj, attr))

    return show


def admin_link(obj: Model | None) -> str:
    """A link to ``obj``'s admin page, or its text when it has none."""
    if obj is None:
        return "-"
    try:
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return str(obj)
    return format_html('<a href="{}">{}</a>', url, obj)


def enqueue(request: HttpRequest, send: Callable[[], Any], *, what: str) -> bool:
    """Enqueue a task through ``send``; on failure, tell the operator why and return False.

    Without a broker, Celery runs the task right here (eager mode), so Polar's
    errors surface too.
    """
    try:
        send()
    except OperationalError as exc:
        logger.error("could not enqueue %s: %s", what, exc)
        messages.error(request, f"Could not queue {what}: the task broker is unreachable.")
        return False
    except PolarError as exc:
        logger.warning("%s failed: %s", what, exc)
        messages.error(request, f"{what[:1].upper()}{what[1:]} failed: {exc}")
        return False
    return True


def selected(
    request: HttpRequest, rows: QuerySet[Any, Any], limit: int, noun: str
) -> list[Any] | None:
    """The selection's ``rows``; None, with a warning, when there are over ``limit``."""
    first = list(rows[: limit + 1])
    if len(first) > limit:
        messages.warning(request, f"Select at most {limit} {noun} at once.")
        return None
    return first
