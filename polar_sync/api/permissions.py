"""Who may call the API, and permission classes built on the entitlement helpers.

``customers/`` needs a signed-in user who also passes ``API_PERMISSION_CLASS``
(staff by default). ``HasBenefit(id)`` and ``HasActiveSubscription(product_id=None)``
are for your own views (README, "Entitlements").
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission

from .. import selectors
from ..conf import polar_settings
from ..exceptions import PolarConfigurationError


def api_permission_class() -> type[BasePermission]:
    """The class named by ``API_PERMISSION_CLASS``, read at call time."""
    path = polar_settings().API_PERMISSION_CLASS
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise PolarConfigurationError(
            f"POLAR_SYNC['API_PERMISSION_CLASS'] is {path!r}, which cannot be imported: {exc}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, BasePermission)):
        raise PolarConfigurationError(
            f"POLAR_SYNC['API_PERMISSION_CLASS'] is {path!r}, which is not a "
            "rest_framework.permissions.BasePermission subclass."
        )
    return cls


def HasBenefit(benefit_id: Any) -> type[BasePermission]:
    """Users whose customer holds ``benefit_id`` (checked now: a typo fails at import)."""
    benefit = selectors.polar_uuid(benefit_id, what="benefit_id")

    class HasBenefitPermission(BasePermission):
        message = "This requires a Polar benefit that your account does not have."

        def has_permission(self, request: Any, view: Any) -> bool:
            return selectors.user_has_benefit(request.user, benefit)

    HasBenefitPermission.__qualname__ = f"HasBenefit({benefit})"
    return HasBenefitPermission


def HasActiveSubscription(product_id: Any = None) -> type[BasePermission]:
    """Users with an active subscription (to ``product_id`` when given)."""
    product = None if product_id is None else selectors.polar_uuid(product_id, what="product_id")

    class HasActiveSubscriptionPermission(BasePermission):
        message = "This requires an active subscription."

        def has_permission(self, request: Any, view: Any) -> bool:
            return selectors.user_has_active_subscription(request.user, product)

    HasActiveSubscriptionPermission.__qualname__ = f"HasActiveSubscription({product or ''})"
    return HasActiveSubscriptionPermission
