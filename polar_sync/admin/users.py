"""The user's Polar customer on the User admin page.

If the user model's admin is registered when polar_sync's admin loads (list
``polar_sync`` after the app that registers it, e.g. ``django.contrib.auth``),
it is re-registered with :class:`PolarCustomerInline` added. A project that
registers its user admin later can add the inline itself::

    from polar_sync.admin import PolarCustomerInline

    class UserAdmin(BaseUserAdmin):
        inlines = [*BaseUserAdmin.inlines, PolarCustomerInline]
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest

from .. import selectors
from ..models import Customer
from .base import ReadOnlyInline, admin_link


class PolarCustomerInline(ReadOnlyInline):
    model = Customer
    fk_name = "user"
    verbose_name = "Polar customer"
    verbose_name_plural = "Polar customers"
    fields = readonly_fields = (
        "customer_link",
        "external_id",
        "active_subscriptions",
        "benefit_grants",
        "deleted_at",
        "synced_at",
    )

    def permission_model(self) -> Any:
        return Customer  # the user's page shows customers to those who may view customers

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        return selectors.customers_for_list(super().get_queryset(request))

    @admin.display(description="customer")
    def customer_link(self, obj: Customer) -> str:
        return admin_link(obj)

    @admin.display(description="active subscriptions")
    def active_subscriptions(self, obj: Customer) -> int:
        return len(obj.running_subscriptions)  # type: ignore[attr-defined]

    @admin.display(description="benefit grants")
    def benefit_grants(self, obj: Customer) -> int:
        return len(obj.benefit_grants)  # type: ignore[attr-defined]


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
