"""Webhook deliveries in the admin: what Polar sent, how it went, and replay."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import WebhookEvent
from ..services.webhooks import webhook_events_replay
from .base import MAX_ROWS_PER_ACTION, ReadOnlyAdmin, pretty_json, text_pre


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "event_type",
        "status",
        "attempts",
        "customer_id",
        "short_error",
        "occurred_at",
    )
    list_filter = ("status", "event_type")
    search_fields = ("=webhook_id", "=customer_id")
    date_hierarchy = "received_at"
    actions = ("replay",)
    readonly_fields = ("payload_pretty", "error_pre")
    fields = (
        ("webhook_id", "event_type"),
        ("status", "attempts", "next_attempt_at"),
        ("occurred_at", "received_at", "processed_at"),
        "customer_id",
        "error_pre",
        "payload_pretty",
    )

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return self._has_model_perm(request, "change")

    @admin.display(description="error")
    def short_error(self, obj: WebhookEvent) -> str:
        first = obj.error.strip().splitlines()[0] if obj.error.strip() else ""
        return first[:80] + ("…" if len(first) > 80 else "")

    @admin.display(description="error")
    def error_pre(self, obj: WebhookEvent) -> str:
        return text_pre(obj.error)

    @admin.display(description="payload")
    def payload_pretty(self, obj: WebhookEvent) -> str:
        return pretty_json(obj.payload)

    @admin.action(description="Replay (process again)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        ids = list(queryset.values_list("pk", flat=True)[: MAX_ROWS_PER_ACTION + 1])
        if len(ids) > MAX_ROWS_PER_ACTION:
            messages.warning(request, f"Select at most {MAX_ROWS_PER_ACTION} deliveries.")
            return
        outcomes = webhook_events_replay(ids=ids)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items()))
        level = messages.WARNING if outcomes.get(WebhookEvent.Status.FAILED) else messages.SUCCESS
        messages.add_message(request, level, f"Replayed {len(ids)} deliveries: {summary}.")
