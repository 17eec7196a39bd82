"""The sync log in the admin, and the operators' sync status page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse

from .. import selectors
from ..models import SyncRun
from .base import ReadOnlyAdmin, text_pre


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
        ("pages", "total_count", "requests"),
        "resumed_display",
        ("created", "updated", "unchanged", "deleted", "failed"),
        "endpoint_missing",
        "error_pre",
    )

    @admin.display(description="duration")
    def duration_display(self, obj: SyncRun) -> str:
        return "-" if obj.duration is None else f"{obj.duration:.1f}s"

    @admin.display(description="resumed")
    def resumed_display(self, obj: SyncRun) -> str:
        return obj.resumed_display or "no: a walk from page 1"

    @admin.display(description="error")
    def short_error(self, obj: SyncRun) -> str:
        first = obj.error.strip().splitlines()[0] if obj.error.strip() else ""
        return first[:80] + ("…" if len(first) > 80 else "")

    @admin.display(description="error")
    def error_pre(self, obj: SyncRun) -> str:
        return text_pre(obj.error)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "status/",
                self.admin_site.admin_view(self.status_view),
                name="polar_sync_syncrun_status",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {"status_url": reverse("admin:polar_sync_syncrun_status"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def status_view(self, request: HttpRequest) -> HttpResponse:
        """How fresh the mirror is, and what is waiting or failing, each linked to its rows."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        status = selectors.sync_status()
        context = {
            **self.admin_site.each_context(request),
            "title": "Polar sync status",
            "opts": self.opts,
            "status": status,
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
