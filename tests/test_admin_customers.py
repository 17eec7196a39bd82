"""The customer mirror in the admin: list, search, filters, detail, read-only, permissions."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from polar_sync.models import Customer, CustomerState, StateBenefitGrant
from tests.factories import make_balance, make_customer, make_state
from tests.mirror_helpers import BENEFIT, OTHER, PRODUCT, bulk_customers, linked_customer, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:polar_sync_customer_changelist")


@pytest.fixture
def web() -> Client:
    """Django's test client (``client`` is the Polar API client in this suite)."""
    return Client()


def change_url(customer: Customer) -> str:
    return reverse("admin:polar_sync_customer_change", args=[customer.pk])


def listed(response) -> set[str]:
    """The customers' IDs on a changelist page (from their checkboxes)."""
    return set(re.findall(r'name="_selected_action" value="([0-9a-f-]{36})"', response.text))


def test_changelist_shows_counts_balance_and_linked_user(admin_client):
    user = make_user()
    customer = linked_customer(user, email="ada@example.com")
    make_state(customer)
    make_balance(customer, cents=-150)
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    row = re.search(r"<tr>.*?ada@example.com.*?</tr>", response.text, re.S).group(0)
    assert 'class="field-subscriptions">1<' in row  # the ended trial does not count
    assert 'class="field-benefits">2<' in row
    assert "-1.50 USD" in row
    assert reverse("admin:auth_user_change", args=[user.pk]) in row


def test_changelist_query_count_does_not_grow_with_the_number_of_customers(admin_client):
    bulk_customers(10)
    admin_client.get(CHANGELIST)  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(CHANGELIST).status_code == 200
    bulk_customers(990)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(CHANGELIST)
    assert len(listed(response)) == 100  # one page
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
    assert len(many) <= 15
    filtered = f"{CHANGELIST}?subscribed=yes&state=fresh&q=example.com"
    with CaptureQueriesContext(connection) as searched:
        admin_client.get(filtered)
    assert len(searched) <= len(many) + 1


@pytest.mark.parametrize("field", ["email", "name", "external_id", "pk"])
def test_search_by_email_name_external_id_and_polar_id(admin_client, field):
    target = make_customer(email="grace@hopper.dev", name="Grace Hopper", external_id="u-77")
    make_customer(email="alan@turing.dev", name="Alan Turing", external_id="u-78")
    term = {"email": "grace@hopper", "name": "Hopper", "external_id": "u-77", "pk": target.pk}
    response = admin_client.get(CHANGELIST, {"q": str(term[field])})
    assert listed(response) == {str(target.pk)}


def test_a_uuid_shaped_external_id_is_found_exactly(admin_client):
    external = str(uuid.uuid4())
    target = make_customer(external_id=external)
    make_customer()
    assert listed(admin_client.get(CHANGELIST, {"q": external})) == {str(target.pk)}
    assert listed(admin_client.get(CHANGELIST, {"q": external[:8]})) == {str(target.pk)}


def test_filters(admin_client, settings):
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "STATE_REFRESH_INTERVAL": 60}
    subscribed = make_customer(email_verified=True, billing_address={"country": "FR"})
    make_state(subscribed)
    other_product = make_customer(email_verified=False, billing_address={"country": "DE"})
    make_state(other_product, product_id=OTHER, benefit_id=OTHER)
    StateBenefitGrant.objects.filter(customer=other_product).update(benefit_type="discord")
    CustomerState.objects.filter(customer=other_product).update(
        synced_at=timezone.now() - timedelta(hours=2)
    )
    bare = make_customer(email_verified=False, billing_address=None)
    gone = make_customer(email_verified=False, billing_address={"country": "US"})
    Customer.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    ids = lambda *cs: {str(c.pk) for c in cs}  # noqa: E731

    def get(**params):
        response = admin_client.get(CHANGELIST, params)
        assert response.status_code == 200, response
        return listed(response)

    assert get() == ids(subscribed, other_product, bare)  # live customers by default
    assert get(deleted="yes") == ids(gone)
    assert get(deleted="no") == ids(subscribed, other_product, bare)
    assert get(deleted="all") == ids(subscribed, other_product, bare, gone)
    assert get(subscribed="yes") == ids(subscribed, other_product)
    assert get(subscribed="no") == ids(bare)
    assert get(subscribed="no", deleted="all") == ids(bare, gone)
    assert get(product=PRODUCT) == ids(subscribed)
    assert get(benefit_type="discord") == ids(other_product)
    assert get(benefit_type="license_keys") == ids(subscribed)
    assert get(country="FR") == ids(subscribed)
    assert get(country="none") == ids(bare)
    assert get(email_verified__exact="1") == ids(subscribed)
    assert get(state="fresh") == ids(subscribed)
    assert get(state="stale", deleted="all") == ids(other_product, bare, gone)
    assert get(state="missing", deleted="all") == ids(bare, gone)
    assert get(balance="missing", deleted="all") == ids(subscribed, other_product, bare, gone)
    # The filters offer what is in the mirror.
    page = admin_client.get(CHANGELIST).text
    assert f"?product={PRODUCT}" in page and f"?product={OTHER}" in page
    assert "?benefit_type=discord" in page and "?country=FR" in page
    # A malformed product ID is the admin's "invalid filter" redirect, not a crash.
    assert admin_client.get(CHANGELIST, {"product": "nope"}).status_code == 302


def test_detail_page_shows_state_balance_user_and_payload_read_only(admin_client):
    user = make_user()
    customer = linked_customer(user, name="<script>alert(1)</script>")
    make_state(customer)
    make_balance(customer, cents=2500)
    response = admin_client.get(change_url(customer))
    page = response.text
    assert response.status_code == 200
    assert "Active subscriptions" in page and PRODUCT in page
    assert "Granted benefits" in page and BENEFIT in page and "license_keys" in page
    assert "Active meters" in page and "d498a884-e2cd-4d3e-8002-f536468a8b22" in page
    assert "25.00 USD" in page
    assert reverse("admin:auth_user_change", args=[user.pk]) in page
    assert '<pre class="polar-json">' in page and "&quot;avatar_url&quot;" in page
    assert "<script>alert(1)</script>" not in page  # customer-entered text is escaped
    # Read-only: no inputs for the customer's fields, no save button.
    assert 'name="email"' not in page and 'name="_save"' not in page
    assert "Refresh from Polar" in page  # the superuser may refresh


def test_the_mirror_cannot_be_edited_added_or_deleted(admin_client):
    customer = make_customer(email="keep@example.com")
    post = admin_client.post(change_url(customer), {"email": "changed@example.com"})
    assert post.status_code == 403
    assert admin_client.get(reverse("admin:polar_sync_customer_add")).status_code == 403
    delete_url = reverse("admin:polar_sync_customer_delete", args=[customer.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    customer.refresh_from_db()
    assert customer.email == "keep@example.com" and customer.deleted_at is None
    actions = admin_client.get(CHANGELIST).text
    assert 'value="delete_selected"' not in actions  # Django's own delete is not offered


@pytest.mark.parametrize(
    ("perms", "offered"),
    [
        (("view_customer",), {"export_csv"}),
        (
            ("view_customer", "change_customer"),
            {"export_csv", "refresh_from_polar", "push_to_polar"},
        ),
        (("view_customer", "delete_customer"), {"export_csv", "delete_in_polar"}),
    ],
)
def test_actions_follow_django_permissions(web, perms, offered):
    make_customer()
    web.force_login(make_user(staff=True, perms=perms))
    page = web.get(CHANGELIST).text
    actions = set(re.findall(r'<option value="([a-z_]+)"', page))
    assert actions == offered
    assert ("Sync now" in page) is ("refresh_from_polar" in offered)


def test_staff_without_view_permission_sees_nothing(web):
    customer = make_customer()
    web.force_login(make_user(staff=True))
    assert web.get(CHANGELIST).status_code == 403
    assert web.get(change_url(customer)).status_code == 403


def test_a_plain_user_is_sent_to_the_login_page(web):
    web.force_login(make_user())
    response = web.get(CHANGELIST)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_user_admin_shows_the_users_polar_customer(admin_client):
    user = make_user()
    customer = linked_customer(user, email="linked@example.com")
    make_state(customer)
    page = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).text
    assert "Polar customer" in page
    assert change_url(customer) in page and "linked@example.com" in page


def test_user_page_shows_customers_only_to_those_who_may_view_them(web):
    user = make_user()
    customer = linked_customer(user, email="private@example.com")
    user_url = reverse("admin:auth_user_change", args=[user.pk])
    viewer = make_user(staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    web.force_login(viewer)
    assert "private@example.com" not in web.get(user_url).text
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    web.force_login(viewer)
    assert change_url(customer) in web.get(user_url).text


def test_secrets_never_reach_the_admin(admin_client, settings):
    secret, webhook_secret = "polar_oat_do_not_show_me", "whsec_do_not_show_me"
    settings.POLAR_SYNC = {
        **settings.POLAR_SYNC,
        "ACCESS_TOKEN": secret,
        "WEBHOOK_SECRET": webhook_secret,
    }
    customer = make_customer()
    make_state(customer)
    pages = [
        CHANGELIST,
        change_url(customer),
        reverse("admin:polar_sync_syncrun_changelist"),
        reverse("admin:polar_sync_syncrun_status"),
        reverse("admin:index"),
    ]
    for url in pages:
        text = admin_client.get(url).text
        assert secret not in text and webhook_secret not in text, url


def test_an_unknown_customer_id_redirects_with_a_message(admin_client):
    response = admin_client.get(change_url(Customer(pk=uuid.uuid4())), follow=True)
    assert "doesn\u2019t exist" in response.text
