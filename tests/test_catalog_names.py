"""Names next to IDs: the admin's filters and customer page, the CSV export, the API;
and the read-only Product and Benefit admin. Query counts stay constant."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from polar_sync.models import Benefit, Customer, Product, StateBenefitGrant, StateSubscription
from tests.factories import make_customer, make_state
from tests.mirror_helpers import BENEFIT, OTHER, PRODUCT, make_user

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:polar_sync_customer_changelist")


def product(pk: str, name: str) -> Product:
    return Product.objects.create(
        id=pk, name=name, created_at=timezone.now(), synced_at=timezone.now()
    )


def benefit(pk: str, name: str) -> Benefit:
    return Benefit.objects.create(
        id=pk, type="license_keys", description=name, created_at=timezone.now(),
        synced_at=timezone.now(),
    )  # fmt: skip


def more_subscriptions(customer: Customer, n: int) -> list[str]:
    """``n`` more running subscriptions (and grants), each of its own named product."""
    sub = StateSubscription.objects.filter(customer=customer, product_id=PRODUCT).first()
    grant = StateBenefitGrant.objects.filter(customer=customer).first()
    ids = []
    for i in range(n):
        pid = str(uuid.uuid4())
        product(pid, f"Plan {i}")
        benefit(pid, f"Perk {i}")
        sub.pk, sub.subscription_id, sub.product_id = None, uuid.uuid4(), pid
        sub.save()
        grant.pk, grant.grant_id, grant.benefit_id = None, uuid.uuid4(), pid
        grant.save()
        ids.append(pid)
    return ids


def test_filters_offer_names_next_to_ids_and_filter_by_benefit(admin_client):
    subscribed = make_customer()
    make_state(subscribed)
    other = make_customer()
    make_state(other, product_id=OTHER, benefit_id=OTHER)
    product(PRODUCT, "Pro")
    benefit(BENEFIT, "License key")
    page = admin_client.get(CHANGELIST).text
    assert f"Pro ({PRODUCT})" in page and f"License key ({BENEFIT})" in page
    assert f"?product={OTHER}" in page and f">{OTHER}</a>" in page  # unknown: the bare ID
    response = admin_client.get(CHANGELIST, {"benefit": BENEFIT})
    assert str(subscribed.pk) in response.text and str(other.pk) not in response.text
    assert admin_client.get(CHANGELIST, {"benefit": "nope"}).status_code == 302


def test_the_customer_page_shows_product_and_benefit_names(admin_client):
    customer = make_customer()
    make_state(customer)
    product(PRODUCT, "Pro")
    benefit(BENEFIT, "License key")
    page = admin_client.get(reverse("admin:polar_sync_customer_change", args=[customer.pk])).text
    assert f"Pro ({PRODUCT})" in page and f"License key ({BENEFIT})" in page


def test_changelist_queries_do_not_grow_with_the_catalogue(admin_client):
    customer = make_customer()
    make_state(customer)
    admin_client.get(CHANGELIST)  # warm the session and content types
    with CaptureQueriesContext(connection) as few:
        admin_client.get(CHANGELIST)
    more_subscriptions(customer, 20)
    for _ in range(5):
        make_state(make_customer(), product_id=str(uuid.uuid4()))
    with CaptureQueriesContext(connection) as many:
        page = admin_client.get(CHANGELIST).text
    assert "Plan 19 (" in page
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
    detail = reverse("admin:polar_sync_customer_change", args=[customer.pk])
    admin_client.get(detail)  # warm
    with CaptureQueriesContext(connection) as named:
        assert "Perk 19 (" in admin_client.get(detail).text
    plain = make_customer()
    make_state(plain)
    with CaptureQueriesContext(connection) as bare:
        admin_client.get(reverse("admin:polar_sync_customer_change", args=[plain.pk]))
    assert len(named) == len(bare)


def test_the_csv_export_has_name_columns(admin_client):
    customer = make_customer()
    make_state(customer)
    product(PRODUCT, "Pro")
    data = {"action": "export_csv", "_selected_action": [str(customer.pk)], "index": "0"}
    response = admin_client.post(CHANGELIST, data)
    header, row = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    record = dict(zip(header, row, strict=True))
    assert (record["Product IDs"], record["Product names"]) == (PRODUCT, "Pro")
    assert record["Benefit names"] == ""  # its benefits are not in the mirror


def test_the_api_names_products_and_benefits_null_when_unknown():
    api = APIClient()
    api.force_authenticate(make_user(staff=True))
    customer = make_customer()
    make_state(customer)
    benefit(BENEFIT, "License key")
    url = reverse("polar_sync:api:customer-detail", args=[customer.pk])
    state = api.get(url).json()["state"]
    assert {s["product_name"] for s in state["active_subscriptions"]} == {None}
    names = {g["benefit_id"]: g["benefit_name"] for g in state["granted_benefits"]}
    assert names[BENEFIT] == "License key" and None in names.values()
    product(PRODUCT, "Pro")
    subs = api.get(url).json()["state"]["active_subscriptions"]
    assert {s["product_id"]: s["product_name"] for s in subs}[PRODUCT] == "Pro"


def test_api_query_counts_do_not_grow_with_subscriptions():
    api = APIClient()
    api.force_authenticate(make_user(staff=True))
    one, many = make_customer(), make_customer()
    make_state(one)
    make_state(many)
    more_subscriptions(many, 10)

    def count(customer: Customer) -> int:
        url = reverse("polar_sync:api:customer-detail", args=[customer.pk])
        with CaptureQueriesContext(connection) as queries:
            body = api.get(url).json()
        assert body["state"]["active_subscriptions"]
        return len(queries)

    count(one)  # warm
    assert count(many) == count(one)
    names = {
        s["product_name"]
        for s in api.get(reverse("polar_sync:api:customer-detail", args=[many.pk])).json()["state"][
            "active_subscriptions"
        ]
    }
    assert "Plan 9" in names


def test_product_and_benefit_admin_are_read_only_and_searchable(admin_client):
    product(PRODUCT, "Pro")
    product(OTHER, "Starter")
    benefit(BENEFIT, "License key")
    products = reverse("admin:polar_sync_product_changelist")
    page = admin_client.get(products, {"q": "pro"}).text
    assert PRODUCT in page and OTHER not in page
    assert OTHER in admin_client.get(products, {"q": OTHER}).text
    benefits = reverse("admin:polar_sync_benefit_changelist")
    assert "License key" in admin_client.get(benefits, {"q": "licen"}).text
    assert admin_client.get(reverse("admin:polar_sync_product_add")).status_code == 403
    change = admin_client.get(reverse("admin:polar_sync_product_change", args=[PRODUCT])).text
    assert 'name="_save"' not in change and "Product payload" in change
