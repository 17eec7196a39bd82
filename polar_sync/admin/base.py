"""What every polar_sync admin shares: read-only mirrors and enqueuing tasks safely."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from kombu.exceptions import OperationalError

from ..exceptions import PolarError

logger = logging.getLogger("polar_sync.admin")

# Selections larger than this are refused: such work belongs to the periodic tasks.
MAX_ROWS_PER_ACTION = 1000


class NoWrites:
    """Nobody adds, changes or deletes these rows by hand in the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(NoWrites, admin.ModelAdmin):
    """An admin that shows rows and never writes them: they belong to Polar or to a service.

    Actions that do write (through a service) check the permission they need
    with their own ``has_<name>_permission`` methods.
    """

    def _has_model_perm(self, request: HttpRequest, action: str) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")


class ReadOnlyInline(NoWrites, admin.TabularInline):
    """Rows shown inside their customer's page, visible to whoever may view the customer."""

    def permission_model(self) -> Any:
        """The model whose view (or change) permission shows these rows."""
        return self.parent_model

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        opts = self.permission_model()._meta
        return any(
            request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")
            for action in ("view", "change")
        )


def pretty_json(value: Any) -> str:
    """JSON, indented, in a ``<pre>`` (escaped: payloads hold customer-entered text)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="polar-json">{}</pre>', text)


def text_pre(text: str) -> str:
    """Text (an error, a traceback) as it was written, escaped, in a ``<pre>``."""
    return format_html("<pre>{}</pre>", text) if text else "-"


def admin_link(obj: Model | None, text: Any = None) -> str:
    """A link to ``obj``'s admin page, or its text when it has none."""
    if obj is None:
        return "-"
    opts = obj._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return str(text if text is not None else obj)
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


def tasks_run_inline() -> bool:
    """Whether Celery runs tasks in-process (no broker): once sent, they are done."""
    from .. import tasks

    return bool(tasks.refresh_customer.app.conf.task_always_eager)


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
