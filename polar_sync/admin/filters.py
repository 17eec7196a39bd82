"""Changelist filters for the customer mirror; each costs at most one query for its choices."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest

from .. import selectors, status_selectors
from ..catalog_selectors import customer_benefit_choices, customer_product_choices, named
from ..models import Customer, StateBenefitGrant, StateSubscription


class DeletedFilter(admin.SimpleListFilter):
    """Live customers unless asked otherwise: ``?deleted=yes`` for the deleted, ``all`` for both."""

    title = "deleted in Polar"
    parameter_name = "deleted"
    LIVE, DELETED, ALL = "no", "yes", "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(self.LIVE, "No (live)"), (self.DELETED, "Yes"), (self.ALL, "All")]

    def choices(self, changelist: Any) -> Any:
        # Django's filters start with an "All" that drops the parameter: here that is "live".
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or self.LIVE) == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        if self.value() == self.ALL:
            return queryset
        return queryset.filter(deleted_at__isnull=self.value() != self.DELETED)


class ActiveSubscriptionFilter(admin.SimpleListFilter):
    title = "active subscription"
    parameter_name = "subscribed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        if self.value() == "yes":
            return queryset.filter(selectors.active_subscription_exists())
        if self.value() == "no":
            return queryset.filter(~selectors.active_subscription_exists())
        return queryset


class ProductFilter(admin.SimpleListFilter):
    """Customers subscribed to a product, shown as "Name (id)" when the mirror has it."""

    title = "product"
    parameter_name = "product"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), named(name, pk)) for pk, name in customer_product_choices()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        if not self.value():
            return queryset
        try:
            product = uuid.UUID(self.value())
        except ValueError:
            # The admin shows its "invalid filter" page rather than an unfiltered list.
            raise IncorrectLookupParameters(f"not a product ID: {self.value()!r}") from None
        subscriptions = StateSubscription.objects.filter(
            customer=OuterRef("pk"), product_id=product
        )
        return queryset.filter(Exists(subscriptions))


class BenefitFilter(admin.SimpleListFilter):
    """Customers granted a benefit, shown as "Name (id)" when the mirror has it."""

    title = "benefit"
    parameter_name = "benefit"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), named(name, pk)) for pk, name in customer_benefit_choices()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        if not self.value():
            return queryset
        try:
            benefit = uuid.UUID(self.value())
        except ValueError:
            raise IncorrectLookupParameters(f"not a benefit ID: {self.value()!r}") from None
        grants = StateBenefitGrant.objects.filter(customer=OuterRef("pk"), benefit_id=benefit)
        return queryset.filter(Exists(grants))


class BenefitTypeFilter(admin.SimpleListFilter):
    title = "benefit type"
    parameter_name = "benefit_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(t, t.replace("_", " ")) for t in selectors.customer_benefit_types()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        if not self.value():
            return queryset
        grants = StateBenefitGrant.objects.filter(
            customer=OuterRef("pk"), benefit_type=self.value()
        )
        return queryset.filter(Exists(grants))


class BillingCountryFilter(admin.SimpleListFilter):
    title = "billing country"
    parameter_name = "country"
    NONE = "none"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        countries = Customer.objects.order_by("billing_country").values_list("billing_country")
        return [(c, c) if c else (self.NONE, "None") for (c,) in countries.distinct()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(billing_country="" if value == self.NONE else value.upper())


class _FreshnessFilter(admin.SimpleListFilter):
    kind = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("fresh", "Fresh"),
            ("stale", "Stale or never fetched"),
            ("missing", "Never fetched"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        value = self.value()
        if value in ("fresh", "stale", "missing"):
            return status_selectors.customers_by_freshness(
                queryset, kind=self.kind, freshness=value
            )
        return queryset


class StateFreshnessFilter(_FreshnessFilter):
    title = "state freshness"
    parameter_name = "state"


class BalanceFreshnessFilter(_FreshnessFilter):
    title = "balance freshness"
    parameter_name = "balance"
    kind = "balance"
