"""The sync log, the push outbox and webhook deliveries in the admin, and the status page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html_join

from .. import status_selectors
from ..conf import polar_settings
from ..exceptions import PolarError
from ..models import Benefit, Product, PushOutbox, SyncRun, WebhookEvent
from ..services.push import outbox_drain
from ..services.states import balances_unavailable
from ..services.webhooks import webhook_events_replay
from .actions import report_pushes
from .base import (
    MAX_POLAR_CALLS,
    MAX_ROWS_PER_ACTION,
    ReadOnlyAdmin,
    field_display,
    first_line,
    pretty_json,
    selected,
    text_pre,
)
from .related import (
    ATTR,
    RelatedChangeList,
    catalog_by_pk,
    catalog_mentioned,
    customer_link,
    customers_by,
    named_link,
    related,
    user_link,
    users_by_pk,
)


def changelist_url(model_name: str, **params: str) -> str | None:
    """The admin changelist of a polar_sync model, filtered; None when it is not registered."""
    try:
        url = reverse(f"admin:polar_sync_{model_name}_changelist")
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(params)}" if params else url


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "kind",
        "status",
        "duration_display",
        "pages",
        "created",
        "updated",
        "unchanged",
        "deleted",
        "failed",
        "requests",
        "api_version",
        "resumed_from_page",
        "dry_run",
        "short_error",
    )
    list_filter = ("kind", "status", "dry_run", "endpoint_missing")
    date_hierarchy = "started_at"
    readonly_fields = ("duration_display", "resumed_display", "error_pre")
    fields = (
        ("kind", "status", "dry_run"),
        ("started_at", "heartbeat_at", "finished_at", "duration_display"),
        ("pages", "total_count", "requests", "api_version"),
        "resumed_display",
        ("created", "updated", "unchanged", "deleted", "failed"),
        "endpoint_missing",
        "error_pre",
    )
    short_error = field_display("error", "error", first_line)
    error_pre = field_display("error", "error", text_pre)

    @admin.display(description="duration")
    def duration_display(self, obj: SyncRun) -> str:
        return "-" if obj.duration is None else f"{obj.duration:.1f}s"

    @admin.display(description="resumed")
    def resumed_display(self, obj: SyncRun) -> str:
        return obj.resumed_display or "no: a walk from page 1"

    def get_urls(self) -> list[URLPattern]:
        status = self.admin_site.admin_view(self.status_view)
        return [path("status/", status, name="polar_sync_syncrun_status"), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {"status_url": reverse("admin:polar_sync_syncrun_status"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def status_view(self, request: HttpRequest) -> HttpResponse:
        """How fresh the mirror is, and what is waiting or failing, each linked to its rows."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        status = status_selectors.sync_status()
        context = {
            **self.admin_site.each_context(request),
            "title": "Polar sync status",
            "opts": self.opts,
            "status": status,
            "api_version": polar_settings().API_VERSION,
            "balances_unavailable": balances_unavailable(),
            "last_runs": [
                (SyncRun.Kind(kind).label, run) for kind, run in status.last_runs.items()
            ],
            "links": {
                "pulls": changelist_url("syncrun", kind__exact=SyncRun.Kind.CUSTOMERS),
                "customers": changelist_url("customer", deleted="no"),
                "deleted": changelist_url("customer", deleted="yes"),
                "stale_states": changelist_url("customer", deleted="no", state="stale"),
                "stale_balances": changelist_url("customer", deleted="no", balance="stale"),
                "pushes_pending": changelist_url("pushoutbox", status__exact="pending"),
                "pushes_failed": changelist_url("pushoutbox", status__exact="failed"),
                "webhooks_failed": changelist_url("webhookevent", status__exact="failed"),
                "webhooks_received": changelist_url("webhookevent", status__exact="received"),
                "webhooks_retrying": changelist_url("webhookevent", status__exact="retrying"),
            },
        }
        return TemplateResponse(request, "admin/polar_sync/status.html", context)


@admin.register(PushOutbox)
class PushOutboxAdmin(ReadOnlyAdmin):
    list_display = (
        "external_id",
        "customer",
        "user",
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
    readonly_fields = ("customer", "user", "payload_pretty", "last_error_pre")
    fields = (
        ("external_id", "customer"),
        ("user_id", "user"),
        ("action", "status", "attempts"),
        ("next_attempt_at", "locked_until"),
        ("created_at", "updated_at"),
        "delete_first",
        "payload_pretty",
        "last_error_pre",
    )
    short_error = field_display("last_error", "last error", first_line)
    payload_pretty = field_display("payload", "payload", pretty_json)
    last_error_pre = field_display("last_error", "last error", text_pre)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RelatedChangeList

    def attach_related(self, rows: list[PushOutbox]) -> None:
        customers = customers_by("external_id", (row.external_id for row in rows))
        users = users_by_pk(row.user_id for row in rows)
        for row in rows:
            found = {
                "customer": customers.get(row.external_id),
                "user": users.get(str(row.user_id)),
            }
            setattr(row, ATTR, found)

    @admin.display(description="customer")
    def customer(self, obj: PushOutbox) -> str:
        return customer_link(related(self, obj)["customer"], known_as=obj.external_id)

    @admin.display(description="user")
    def user(self, obj: PushOutbox) -> str:
        return user_link(related(self, obj)["user"], obj.user_id)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return self._has_model_perm(request, "change")

    @admin.action(description="Retry now (push to Polar)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[PushOutbox]) -> None:
        rows = queryset.values_list("external_id", flat=True)
        external_ids = selected(request, rows, MAX_POLAR_CALLS, "rows")
        if external_ids:
            report_pushes(request, [_retry(external_id) for external_id in external_ids])


def _retry(external_id: str) -> Any:
    """Push one row now, failed or waiting for its backoff."""
    try:
        return outbox_drain(external_id=external_id, retry_failed=True, force=True)
    except PolarError as exc:  # a drain records Polar's errors; this is the unexpected
        return exc


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "event_type",
        "status",
        "attempts",
        "customer",
        "user",
        "subject",
        "short_error",
    )
    list_filter = ("status", "event_type")
    search_fields = ("=webhook_id", "=customer_id")
    date_hierarchy = "received_at"
    actions = ("replay",)
    readonly_fields = ("customer", "user", "subject", "payload_pretty", "error_pre")
    fields = (
        ("webhook_id", "event_type"),
        ("status", "attempts", "next_attempt_at"),
        ("occurred_at", "received_at", "processed_at"),
        ("customer_id", "customer", "user"),
        "subject",
        "error_pre",
        "payload_pretty",
    )
    short_error = field_display("error", "error", first_line)
    error_pre = field_display("error", "error", text_pre)
    payload_pretty = field_display("payload", "payload", pretty_json)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RelatedChangeList

    def attach_related(self, rows: list[WebhookEvent]) -> None:
        customers = customers_by("id", (row.customer_id for row in rows))
        mentioned = {row.pk: catalog_mentioned(row.payload) for row in rows}
        products = catalog_by_pk(Product, (pk for ps, _ in mentioned.values() for pk, _ in ps))
        benefits = catalog_by_pk(Benefit, (pk for _, bs in mentioned.values() for pk, _ in bs))
        for row in rows:
            customer = customers.get(str(row.customer_id))
            product_ids, benefit_ids = mentioned[row.pk]
            subject = [named_link(products.get(str(pk)), name, pk) for pk, name in product_ids]
            subject += [named_link(benefits.get(str(pk)), name, pk) for pk, name in benefit_ids]
            found = {
                "customer": customer,
                "user": customer.user if customer else None,
                "subject": subject,
            }
            setattr(row, ATTR, found)

    @admin.display(description="customer")
    def customer(self, obj: WebhookEvent) -> str:
        return customer_link(related(self, obj)["customer"], known_as=obj.customer_id)

    @admin.display(description="user")
    def user(self, obj: WebhookEvent) -> str:
        customer = related(self, obj)["customer"]
        return user_link(related(self, obj)["user"], customer.user_id if customer else None)

    @admin.display(description="products and benefits")
    def subject(self, obj: WebhookEvent) -> str:
        links = related(self, obj)["subject"]
        return format_html_join(", ", "{}", ((link,) for link in links)) if links else "-"

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return self._has_model_perm(request, "change")

    @admin.action(description="Replay (process again)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        rows = queryset.values_list("pk", flat=True)
        ids = selected(request, rows, MAX_ROWS_PER_ACTION, "deliveries")
        if not ids:
            return
        outcomes = webhook_events_replay(ids=ids)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items()))
        level = messages.WARNING if outcomes.get(WebhookEvent.Status.FAILED) else messages.SUCCESS
        messages.add_message(request, level, f"Replayed {len(ids)} deliveries: {summary}.")
