"""The REST API: permissions, filters, ordering, cursor pages, detail, me/ and query counts."""

from __future__ import annotations

import base64
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from polar_sync.models import Customer, StateMeter
from tests.factories import make_balance, make_customer, make_state
from tests.mirror_helpers import (
    BENEFIT,
    OTHER,
    PRODUCT,
    bulk_customers,
    linked_customer,
    make_user,
)

pytestmark = pytest.mark.django_db

LIST = reverse("polar_sync:api:customer-list")
ME = reverse("polar_sync:api:me")


def detail(customer: Customer) -> str:
    return reverse("polar_sync:api:customer-detail", args=[customer.pk])


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_api(api) -> APIClient:
    api.force_authenticate(make_user(staff=True))
    return api


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()["results"]]


# -- permissions -----------------------------------------------------------------------------


def test_anonymous_users_get_nothing(api):
    customer = make_customer()
    for url in (LIST, detail(customer), ME, reverse("polar_sync:api:schema")):
        assert api.get(url).status_code in (401, 403), url


def test_plain_users_get_only_their_own_customer(api):
    user = make_user()
    customer = make_customer()
    api.force_authenticate(user)
    assert api.get(LIST).status_code == 403
    assert api.get(detail(customer)).status_code == 403
    response = api.get(ME)
    assert response.status_code == 404
    assert response.json() == {"detail": "You have no Polar customer."}


def test_staff_list_and_read_customers(staff_api):
    customer = make_customer()
    assert ids(staff_api.get(LIST)) == [str(customer.pk)]
    assert staff_api.get(detail(customer)).json()["id"] == str(customer.pk)


def test_the_permission_class_comes_from_settings(api, settings):
    settings.POLAR_SYNC = {
        **settings.POLAR_SYNC,
        "API_PERMISSION_CLASS": "rest_framework.permissions.AllowAny",
    }
    make_customer()
    assert api.get(LIST).status_code in (401, 403)  # anonymous: still nothing
    api.force_authenticate(make_user())
    assert api.get(LIST).status_code == 200


def test_a_bad_permission_class_setting_fails_loudly(staff_api, settings):
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "API_PERMISSION_CLASS": "nowhere.Nothing"}
    with pytest.raises(ImproperlyConfigured, match="API_PERMISSION_CLASS"):
        staff_api.get(LIST)


# -- the list ----------------------------------------------------------------------------------


def test_list_filters(staff_api):
    subscribed = make_customer(email="Ada@Example.com", external_id="ada")
    make_state(subscribed)
    other = make_customer()
    make_state(other, product_id=OTHER, benefit_id=OTHER)
    bare = make_customer()
    gone = make_customer()
    Customer.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())

    def get(**params):
        response = staff_api.get(LIST, params)
        assert response.status_code == 200, response.json()
        return set(ids(response))

    assert get() == {str(c.pk) for c in (subscribed, other, bare)}
    assert get(email="ada@example.com") == {str(subscribed.pk)}
    assert get(external_id="ada") == {str(subscribed.pk)}
    assert get(active_subscription="true") == {str(subscribed.pk), str(other.pk)}
    assert get(active_subscription="false") == {str(bare.pk)}
    assert get(product=PRODUCT) == {str(subscribed.pk)}
    assert get(benefit=BENEFIT) == {str(subscribed.pk)}
    assert get(deleted="true") == {str(gone.pk)}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"product": "nope"}, "product"),
        ({"benefit": "12"}, "benefit"),
        ({"active_subscription": "maybe"}, "active_subscription"),
        ({"ordering": "email"}, "ordering"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "99999999999999999999999"}, "page_size"),
        ({"page_size": "1e3"}, "page_size"),
        ({"deleted": "perhaps"}, "deleted"),
        ({"ordering": "created_at,email"}, "ordering"),
        ({"email": "a\x00b"}, "email"),
        ({"external_id": "\x00"}, "external_id"),
    ],
)
def test_bad_filters_are_a_400_naming_the_parameter(staff_api, params, field):
    response = staff_api.get(LIST, params)
    assert response.status_code == 400
    assert field in response.json()


def cursor(query: str) -> str:
    """A cursor as DRF encodes one: the base64 of a query string (o offset, r reverse,
    p position)."""
    return base64.b64encode(query.encode()).decode()


MALFORMED_CURSORS = [
    "p=notadate",  # the position is a created_at: this was a 500 inside the query
    "r=1&p=xxx",
    "p=",
    "p=2020-13-45T00:00:00%2B00:00",
    "p=2020-01-01T00:00:00",  # naive: not a position a page ever links to
    "p=2020-01-01",
    "p=9999-12-31T23:59:59-05:00",  # past year 9999 in UTC
    "p=0001-01-01T00:00:00%2B01:00",  # before year 1 in UTC
    "o=abc",
    "o=-5",
    "r=x",
]


@pytest.mark.parametrize(
    "value",
    [
        *(pytest.param(cursor(query), id=query) for query in MALFORMED_CURSORS),
        pytest.param("not base64!", id="not-base64"),
        pytest.param("\u00e9", id="not-ascii"),
    ],
)
def test_a_malformed_cursor_is_a_400_naming_it(staff_api, value):
    make_customer()
    response = staff_api.get(LIST, {"cursor": value})
    assert response.status_code == 400
    assert response.json() == {
        "cursor": ["Invalid cursor: use the next or previous link of a page."]
    }


def test_ordering_and_cursor_pagination_walk_every_customer_once(staff_api):
    start = timezone.now() - timedelta(days=10)
    made = [make_customer(created_at=(start + timedelta(hours=i)).isoformat()) for i in range(7)]
    oldest_first = [str(c.pk) for c in made]

    def walk(**params) -> list[str]:
        seen, url, query = [], LIST, {"page_size": 3, **params}
        while url:
            body = staff_api.get(url, query).json()
            seen += [row["id"] for row in body["results"]]
            url, query = body["next"], None
        return seen

    assert walk() == oldest_first[::-1]
    assert walk(ordering="created_at") == oldest_first
    assert "count" not in staff_api.get(LIST).json()  # no COUNT(*) over the table


def test_list_rows_carry_subscription_flag_state_and_balance(staff_api):
    customer = make_customer()
    make_state(customer)
    make_balance(customer, cents=990)
    (row,) = staff_api.get(LIST).json()["results"]
    assert row["has_active_subscription"] is True
    assert row["balance"]["balance"] == 990 and row["balance"]["currency"] == "usd"
    assert row["state_synced_at"] is not None
    assert "raw" not in row and "state" not in row


def test_list_query_count_does_not_grow_with_the_number_of_customers(staff_api):
    bulk_customers(10)
    staff_api.get(LIST)
    with CaptureQueriesContext(connection) as few:
        assert staff_api.get(LIST).status_code == 200
    bulk_customers(990)
    with CaptureQueriesContext(connection) as many:
        response = staff_api.get(LIST, {"active_subscription": "true"})
    assert len(response.json()["results"]) == 100
    assert len(many) == len(few) <= 3


# -- detail and me/ ----------------------------------------------------------------------------


def test_detail_has_state_and_balance(staff_api, django_assert_max_num_queries):
    customer = make_customer()
    make_state(customer)
    make_balance(customer, cents=-25)
    with django_assert_max_num_queries(5):
        body = staff_api.get(detail(customer)).json()
    assert body["balance"]["balance"] == -25
    state = body["state"]
    assert {s["product_id"] for s in state["active_subscriptions"]} >= {PRODUCT}
    assert {g["benefit_id"] for g in state["granted_benefits"]} >= {BENEFIT}
    assert state["active_meters"][0]["credited_units"] == 100
    assert body["tax_id"] == ["FR61954506077", "eu_vat"]


def test_detail_of_a_customer_never_fetched_has_null_state_and_balance(staff_api):
    body = staff_api.get(detail(make_customer())).json()
    assert body["state"] is None and body["balance"] is None
    assert body["has_active_subscription"] is False


def test_detail_of_an_unknown_customer_is_404(staff_api):
    response = staff_api.get(detail(Customer(pk="00000000-0000-4000-8000-000000000000")))
    assert response.status_code == 404


def test_me_is_the_signed_in_users_customer(api):
    user = make_user()
    customer = linked_customer(user)
    make_state(customer)
    make_balance(customer, cents=300)
    make_customer()  # someone else's
    api.force_authenticate(user)
    body = api.get(ME).json()
    assert body["id"] == str(customer.pk) and body["user"] == user.pk
    assert body["has_active_subscription"] is True
    assert body["balance"]["balance"] == 300
    assert len(body["state"]["granted_benefits"]) == 2


def test_me_query_count_does_not_depend_on_the_mirror_size(api):
    user = make_user()
    linked = linked_customer(user)
    make_state(linked)
    api.force_authenticate(user)
    with CaptureQueriesContext(connection) as few:
        api.get(ME)
    bulk_customers(200)
    with CaptureQueriesContext(connection) as many:
        assert api.get(ME).status_code == 200
    assert len(many) == len(few)


def test_meter_units_are_served_as_polar_sent_them(staff_api):
    customer = make_customer()
    make_state(customer)
    StateMeter.objects.filter(customer=customer).update(consumed_units=25, balance=Decimal("2.5"))
    (meter,) = staff_api.get(detail(customer)).json()["state"]["active_meters"]
    assert meter["consumed_units"] == 25 and type(meter["consumed_units"]) is int
    assert meter["balance"] == 2.5
