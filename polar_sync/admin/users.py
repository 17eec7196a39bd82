"""The user's Polar customers on the User admin page (README, "Admin": "Users")."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest

from .. import selectors
from ..models import Customer
from .base import ReadOnlyInline, admin_link, field_display


class PolarCustomerInline(ReadOnlyInline):
    model = Customer
    fk_name = "user"
    verbose_name = "Polar customer"
    verbose_name_plural = "Polar customers"
    empty_text = "None: this user is not a Polar customer (yet)."
    fields = readonly_fields = (
        "customer_link",
        "external_id",
        "active_subscriptions",
        "benefit_grants",
        "deleted_at",
        "synced_at",
    )
    active_subscriptions = field_display("running_subscriptions", "active subscriptions", len)
    benefit_grants = field_display("benefit_grants", "benefit grants", len)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        return selectors.customers_for_list(super().get_queryset(request))

    @admin.display(description="customer")
    def customer_link(self, obj: Customer) -> str:
        return admin_link(obj)


def install_user_inline(site: admin.AdminSite = admin.site) -> bool:
    """Add :class:`PolarCustomerInline` to the registered user admin; False if there is none."""
    user_model = get_user_model()
    if not site.is_registered(user_model):
        return False
    base: Any = type(site.get_model_admin(user_model))
    if PolarCustomerInline in base.inlines:
        return True
    with_polar = type(
        base.__name__,
        (base,),
        {"inlines": [*base.inlines, PolarCustomerInline], "__module__": base.__module__},
    )
    site.unregister(user_model)
    site.register(user_model, with_polar)
    return True


install_user_inline()
