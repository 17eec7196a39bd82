"""The push outbox in the admin: what waits to reach Polar, what Polar refused, and retry."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ..exceptions import PolarError
from ..models import PushOutbox
from ..services.push import outbox_drain
from .actions import report_pushes
from .base import ReadOnlyAdmin, pretty_json, text_pre

# Each retry is a synchronous push to Polar while the operator waits.
MAX_RETRIES_PER_ACTION = 100


@admin.register(PushOutbox)
class PushOutboxAdmin(ReadOnlyAdmin):
    list_display = (
        "external_id",
        "action",
        "status",
        "attempts",
        "short_error",
        "next_attempt_at",
        "updated_at",
    )
    list_filter = ("status", "action")
    search_fields = ("=external_id", "=user_id")
    ordering = ("-updated_at",)
    actions = ("retry_now",)
    readonly_fields = ("payload_pretty", "last_error_pre")
    fields = (
        ("external_id", "user_id"),
        ("action", "status", "attempts"),
        ("next_attempt_at", "locked_until"),
        ("created_at", "updated_at"),
        "delete_first",
        "payload_pretty",
        "last_error_pre",
    )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return self._has_model_perm(request, "change")

    @admin.display(description="last error")
    def short_error(self, obj: PushOutbox) -> str:
        first = obj.last_error.strip().splitlines()[0] if obj.last_error.strip() else ""
        return first[:80] + ("…" if len(first) > 80 else "")

    @admin.display(description="payload")
    def payload_pretty(self, obj: PushOutbox) -> str:
        return pretty_json(obj.payload)

    @admin.display(description="last error")
    def last_error_pre(self, obj: PushOutbox) -> str:
        return text_pre(obj.last_error)

    @admin.action(description="Retry now (push to Polar)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[PushOutbox]) -> None:
        rows = queryset.values_list("external_id", flat=True)
        external_ids = list(rows[: MAX_RETRIES_PER_ACTION + 1])
        if len(external_ids) > MAX_RETRIES_PER_ACTION:
            messages.warning(
                request,
                f"Select at most {MAX_RETRIES_PER_ACTION} rows: "
                "the periodic drain pushes the others.",
            )
            return
        report_pushes(request, [_retry(external_id) for external_id in external_ids])


def _retry(external_id: str) -> Any:
    """Push one row now, failed or waiting for its backoff."""
    try:
        return outbox_drain(external_id=external_id, retry_failed=True, force=True)
    except PolarError as exc:  # a drain records Polar's errors; this is the unexpected
        return exc
