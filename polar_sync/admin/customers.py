"""The customer mirror in the admin: searchable, filterable, read-only, with Polar actions."""

from __future__ import annotations

from itertools import chain
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from .. import selectors, status_selectors, tasks
from ..catalog_selectors import grants_named, named, subscriptions_named
from ..exceptions import PolarError
from ..models import Customer, StateBenefitGrant, StateMeter, StateSubscription
from ..models.customers import units_text
from ..services.broker import tasks_run_inline
from ..services.remote import customers_export_stream
from . import actions, filters, search
from .base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    admin_link,
    enqueue,
    field_display,
    logger,
    pretty_json,
)
from .display import key_values, when
from .export import csv_response, csv_safe_stream, export_csv
from .members import MemberInline

CHANGELIST = "admin:polar_sync_customer_changelist"


def sorted_key_values(value: object) -> str:
    return key_values(value, sort=True)


def money(cents: int | None, currency: str | None) -> str:
    if cents is None:
        return "-"
    return f"{cents / 100:,.2f} {(currency or '').upper()}".strip()


class SubscriptionInline(ReadOnlyInline):
    model = StateSubscription
    verbose_name_plural = "active subscriptions"
    empty_text = "None: no active subscription."
    fields = readonly_fields = (
        "subscription_id",
        "product",
        "status",
        "price",
        "recurring_interval",
        "seats",
        "units",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "ends_at",
    )

    @admin.display(description="amount")
    def price(self, obj: StateSubscription) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description="product")
    def product(self, obj: StateSubscription) -> str:
        return named(getattr(obj, "product_name", None), obj.product_id)

    def get_queryset(self, request: HttpRequest) -> QuerySet[StateSubscription]:
        return subscriptions_named(super().get_queryset(request))


class BenefitGrantInline(ReadOnlyInline):
    model = StateBenefitGrant
    verbose_name_plural = "granted benefits"
    empty_text = "None: no benefit granted."
    fields = readonly_fields = ("benefit", "benefit_type", "granted_at", "grant_id")

    @admin.display(description="benefit")
    def benefit(self, obj: StateBenefitGrant) -> str:
        return named(getattr(obj, "benefit_name", None), obj.benefit_id)

    def get_queryset(self, request: HttpRequest) -> QuerySet[StateBenefitGrant]:
        return grants_named(super().get_queryset(request))


class MeterInline(ReadOnlyInline):
    model = StateMeter
    verbose_name_plural = "active meters"
    empty_text = "None: no active meter."
    fields = readonly_fields = ("meter_id", "consumed", "credited_units", "meter_balance")
    consumed = field_display("consumed_units", "consumed units", units_text)
    meter_balance = field_display("balance", "balance", units_text)


class CustomerChangeList(ChangeList):
    """The list shows no payload: the large JSON columns stay in the database."""

    DEFERRED = ("raw", "billing_address", "metadata", "tax_id", "state__raw")

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        return super().get_queryset(request, exclude_parameters).defer(*self.DEFERRED)


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    # Fits 1280 px beside the sidebar and the filters: name and external ID sit under the
    # email; the type and the state's freshness are filters (the date is on the customer's
    # page); "deleted" is a mark on the deleted rows only.
    list_display = (
        "customer",
        "linked_user",
        "subscriptions",
        "benefits",
        "balance_display",
        "created_at",
    )
    list_display_links = ("customer",)
    # A team is also found by a member's exact email or external ID.
    search_fields = ("email", "name", "external_id", "=members__email", "=members__external_id")
    search_help_text = (
        "Email, name or external ID (contains); an ID (Polar's, or a UUID external ID): exact; "
        "a member's email or external ID: exact. Live customers only unless the "
        '"deleted in Polar" filter says otherwise.'
    )
    list_filter = (
        filters.DeletedFilter,
        filters.ActiveSubscriptionFilter,
        filters.ProductFilter,
        filters.BenefitFilter,
        filters.BenefitTypeFilter,
        filters.BillingCountryFilter,
        "type",
        "email_verified",
        filters.StateFreshnessFilter,
        filters.BalanceFreshnessFilter,
    )
    list_per_page = 100
    # One COUNT(*) per page, not two: the filtered count is the one that matters.
    show_full_result_count = False
    ordering = ("-created_at",)
    actions = (
        actions.refresh_from_polar,
        actions.push_to_polar,
        actions.delete_in_polar,
        export_csv,
    )
    inlines = (SubscriptionInline, BenefitGrantInline, MeterInline, MemberInline)
    readonly_fields = (
        "linked_user",
        "balance_display",
        "state_synced",
        "billing_address_pretty",
        "metadata_pretty",
        "raw_pretty",
        "state_raw_pretty",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "type",
                    ("email", "email_verified"),
                    "name",
                    "external_id",
                    "linked_user",
                    "organization_id",
                    "locale",
                    "first_user_event_at",
                    "created_at",
                    "modified_at",
                    "deleted_at",
                    "synced_at",
                )
            },
        ),
        ("State and balance", {"fields": ("state_synced", "balance_display")}),
        ("Metadata", {"fields": ("metadata_pretty",)}),
        (
            "Billing",
            {
                "fields": (
                    "billing_name",
                    "billing_country",
                    "billing_address_pretty",
                    "tax_id",
                    "default_payment_method_id",
                )
            },
        ),
        (
            "Polar's payloads",
            {
                "fields": ("raw_pretty", "state_raw_pretty"),
                "classes": ("collapse",),
            },
        ),
    )
    subscriptions = field_display("running_subscriptions", "subs.", len)
    benefits = field_display("benefit_grants", "benefits", len)
    billing_address_pretty = field_display("billing_address", "billing address", key_values)
    metadata_pretty = field_display("metadata", "metadata", sorted_key_values)
    raw_pretty = field_display("raw", "customer payload", pretty_json)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        return selectors.customers_for_list(super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CustomerChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        # Indexes serve it and nothing is duplicated: no DISTINCT over every customer.
        return search.customers_matching(queryset, search_term), False

    def has_refresh_permission(self, request: HttpRequest) -> bool:
        return self._has_model_perm(request, "change")

    def has_push_permission(self, request: HttpRequest) -> bool:
        return self._has_model_perm(request, "change")

    def has_delete_in_polar_permission(self, request: HttpRequest) -> bool:
        return self._has_model_perm(request, "delete")

    @admin.display(description="customer", ordering="email")
    def customer(self, obj: Customer) -> str:
        """The email; the name and external ID under it; a mark on deleted customers only."""
        deleted = (
            format_html(
                ' <span class="polar-deleted" title="{}">deleted</span>', when(obj.deleted_at)
            )
            if obj.is_deleted
            else ""
        )
        details = " · ".join(str(part) for part in (obj.name, obj.external_id) if part)
        sub = (
            format_html('<span class="polar-sub" title="{}">{}</span>', details, details)
            if details
            else ""
        )
        return format_html("{}{}{}", obj, deleted, sub)

    @admin.display(description="user", ordering="user")
    def linked_user(self, obj: Customer) -> str:
        return admin_link(obj.user)

    @admin.display(description="balance", ordering="balance__balance")
    def balance_display(self, obj: Customer) -> str:
        balance = selectors.related_or_none(obj, "balance")
        return money(balance.balance, balance.currency) if balance else "-"

    @admin.display(description="state fetched")
    def state_synced(self, obj: Customer) -> str:
        state = selectors.related_or_none(obj, "state")
        if state is None:
            return "never"
        stale = state.synced_at < status_selectors.stale_before(kind="state")
        return f"{when(state.synced_at)} ({'stale' if stale else 'fresh'})"

    @admin.display(description="state payload")
    def state_raw_pretty(self, obj: Customer) -> str:
        state = selectors.related_or_none(obj, "state")
        return pretty_json(state.raw) if state else "never fetched"

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "sync-now/",
                wrap(require_POST(self.sync_now_view)),
                name="polar_sync_customer_sync_now",
            ),
            path(
                "polar-export/",
                wrap(require_GET(self.polar_export_view)),
                name="polar_sync_customer_polar_export",
            ),
            path(
                "<path:object_id>/refresh/",
                wrap(require_POST(self.refresh_view)),
                name="polar_sync_customer_refresh",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {
            "can_sync": self.has_refresh_permission(request),
            "status_url": reverse("admin:polar_sync_syncrun_status"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra = {"can_refresh": self.has_refresh_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def sync_now_view(self, request: HttpRequest) -> HttpResponse:
        """The "Sync now" button: a pull of every customer."""
        if not self.has_refresh_permission(request):
            raise PermissionDenied
        if enqueue(request, tasks.pull_customers.delay, what="pull of every customer"):
            messages.success(
                request,
                "Pulled every customer from Polar; see the sync runs for the figures."
                if tasks_run_inline()
                else "Queued a pull of every customer from Polar; see the sync runs for progress.",
            )
        return redirect(CHANGELIST)

    def refresh_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The "Refresh" button on a customer's page."""
        if not self.has_refresh_permission(request):
            raise PermissionDenied
        customer = self.get_object(request, object_id)
        if customer is None:
            messages.warning(request, f"No customer with ID {object_id!r}: perhaps it was deleted.")
            return redirect(CHANGELIST)
        pk = str(customer.pk)
        if enqueue(request, lambda: tasks.refresh_customer.delay(pk), what="refresh"):
            verb = "Refreshed" if tasks_run_inline() else "Queued a refresh of"
            messages.success(request, f"{verb} {customer} from Polar.")
        return redirect("admin:polar_sync_customer_change", customer.pk)

    def polar_export_view(self, request: HttpRequest) -> HttpResponseBase:
        """Polar's own CSV export, streamed through with formulas neutralised."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        stream = customers_export_stream()
        try:
            # Ask Polar before answering, so that a failure is a message and not a broken file.
            first = next(stream, b"")
        except PolarError as exc:
            logger.warning("Polar's CSV export failed: %s", exc)
            messages.error(request, f"Polar's CSV export failed: {exc}")
            return redirect(CHANGELIST)
        return csv_response(csv_safe_stream(chain([first], stream)), stem="polar-customers")
