"""Who may call the API, and permission classes built on the entitlement helpers.

``customers/`` and ``customers/<id>/`` need a signed-in user who also passes
``POLAR_SYNC["API_PERMISSION_CLASS"]`` (default: ``IsAdminUser``, i.e. staff).
Anonymous users get nothing, whatever that setting says.

For your own views::

    from polar_sync.api.permissions import HasActiveSubscription, HasBenefit

    class DownloadView(APIView):
        permission_classes = [HasBenefit("397a17aa-15cf-4cb4-9333-18040203cf98")]

    class ProView(APIView):
        permission_classes = [HasActiveSubscription(product_id=PRO_PRODUCT_ID)]
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
    """A permission class granting access to users whose customer holds ``benefit_id``.

    The ID is checked now, so a typo fails at import rather than denying everyone.
    """
    benefit = selectors.polar_uuid(benefit_id, what="benefit_id")

    class HasBenefitPermission(BasePermission):
        message = "This requires a Polar benefit that your account does not have."

        def has_permission(self, request: Any, view: Any) -> bool:
            return selectors.user_has_benefit(request.user, benefit)

    HasBenefitPermission.__qualname__ = f"HasBenefit({benefit})"
    return HasBenefitPermission


def HasActiveSubscription(product_id: Any = None) -> type[BasePermission]:
    """A permission class granting access to users with an active subscription (to a product)."""
    product = None if product_id is None else selectors.polar_uuid(product_id, what="product_id")

    class HasActiveSubscriptionPermission(BasePermission):
        message = "This requires an active subscription."

        def has_permission(self, request: Any, view: Any) -> bool:
            return selectors.user_has_active_subscription(request.user, product)

    HasActiveSubscriptionPermission.__qualname__ = f"HasActiveSubscription({product or ''})"
    return HasActiveSubscriptionPermission
