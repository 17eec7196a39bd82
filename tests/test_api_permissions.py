"""HasBenefit / HasActiveSubscription for your own views, and the API's OpenAPI schema."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from polar_sync.api.permissions import HasActiveSubscription, HasBenefit, api_permission_class
from tests.factories import make_state
from tests.mirror_helpers import BENEFIT, OTHER, PRODUCT, linked_customer, make_user

pytestmark = pytest.mark.django_db


def view_with(*permissions):
    class Protected(APIView):
        permission_classes = list(permissions)

        def get(self, request):
            return Response({"ok": True})

    return Protected.as_view()


def call(view, user) -> int:
    request = APIRequestFactory().get("/protected/")
    force_authenticate(request, user=None if isinstance(user, AnonymousUser) else user)
    return view(request).status_code


@pytest.fixture
def entitled():
    user = make_user()
    make_state(linked_customer(user))
    return user


def test_has_benefit(entitled):
    assert call(view_with(HasBenefit(BENEFIT)), entitled) == 200
    assert call(view_with(HasBenefit(OTHER)), entitled) == 403
    assert call(view_with(HasBenefit(BENEFIT)), make_user()) == 403
    assert call(view_with(HasBenefit(BENEFIT)), AnonymousUser()) in (401, 403)


def test_has_active_subscription(entitled):
    assert call(view_with(HasActiveSubscription()), entitled) == 200
    assert call(view_with(HasActiveSubscription(product_id=PRODUCT)), entitled) == 200
    assert call(view_with(HasActiveSubscription(product_id=OTHER)), entitled) == 403
    assert call(view_with(HasActiveSubscription()), make_user()) == 403


def test_permission_classes_compose(entitled):
    either = HasBenefit(OTHER) | HasActiveSubscription(product_id=PRODUCT)
    both = HasBenefit(OTHER) & HasActiveSubscription(product_id=PRODUCT)
    assert call(view_with(either), entitled) == 200
    assert call(view_with(both), entitled) == 403


def test_a_typo_in_an_id_fails_when_the_class_is_made():
    with pytest.raises(ValueError, match="benefit_id must be a Polar UUID"):
        HasBenefit("gold-tier")
    with pytest.raises(ValueError, match="product_id must be a Polar UUID"):
        HasActiveSubscription(product_id="pro")


def test_the_denial_message_names_no_internal_ids(entitled):
    view = view_with(HasBenefit(OTHER))
    request = APIRequestFactory().get("/protected/")
    force_authenticate(request, user=entitled)
    response = view(request)
    assert OTHER not in str(response.data)


def test_api_permission_class_default_is_staff_only():
    assert api_permission_class() is IsAdminUser


def test_openapi_schema_documents_the_endpoints_where_they_are_mounted():
    api = APIClient()
    api.force_authenticate(make_user())
    response = api.get(reverse("polar_sync:api:schema"), {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "polar_sync API"
    assert set(schema["paths"]) == {
        "/polar/api/customers/",
        "/polar/api/customers/{id}/",
        "/polar/api/customers/{id}/members/",
        "/polar/api/me/",
    }
    params = {p["name"] for p in schema["paths"]["/polar/api/customers/"]["get"]["parameters"]}
    assert {"email", "external_id", "active_subscription", "product", "benefit"} <= params
    assert {"ordering", "cursor", "page_size"} <= params
    components = schema["components"]["schemas"]
    assert "state" in components["CustomerDetail"]["properties"]
    assert "PaginatedCustomerList" in components
    assert "teams" in components["Me"]["properties"]
    assert "PaginatedMemberList" in components


@pytest.mark.parametrize(
    "path", ["nowhere.Nothing", "polar_sync.selectors.user_has_benefit", "rest_framework"]
)
def test_system_check_reports_a_bad_api_permission_class(settings, path):
    from polar_sync.checks import check_api_settings

    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "API_PERMISSION_CLASS": path}
    (error,) = check_api_settings()
    assert error.id == "polar_sync.E008" and path in error.msg


def test_system_check_accepts_a_permission_class(settings):
    from polar_sync.checks import check_api_settings

    assert check_api_settings() == []
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "API_PERMISSION_CLASS": "a.b", "NOPE": 1}
    assert check_api_settings() == []  # E001 already reports the unknown key
