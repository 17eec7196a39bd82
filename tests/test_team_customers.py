"""2026 customers in the doors: a team customer (no email) in the admin, the CSV export
and the API, with the new columns shown and ``type`` a list filter."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from polar_sync.models import Customer
from tests.conftest import load_fixture
from tests.factories import make_state
from tests.mirror_helpers import make_user
from tests.test_api import detail

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:polar_sync_customer_changelist")


@pytest.fixture
def team() -> Customer:
    from polar_sync.services import customers_upsert

    payload = load_fixture("customer_2026_team")
    payload["default_payment_method_id"] = "0b5e1c9a-6f43-4c1f-9a0e-2d8f7c3b4a51"
    customers_upsert(payloads=[payload])
    customer = Customer.objects.get(pk=payload["id"])
    make_state(customer)
    customer.active_subscriptions.update(seats=3)
    return customer


@pytest.fixture
def individual() -> Customer:
    from polar_sync.services import customers_upsert

    payload = dict(load_fixture("customer"), type="individual", locale="fr-FR")
    customers_upsert(payloads=[payload])
    return Customer.objects.get(pk=payload["id"])


def test_the_admin_lists_and_filters_customers_by_type(admin_client, team, individual):
    page = admin_client.get(CHANGELIST).content.decode()
    assert "Acme Team" in page and "ada@example.com" in page
    teams = admin_client.get(CHANGELIST, {"type__exact": "team"})
    assert list(teams.context["cl"].result_list) == [team]
    assert "By type" in page


def test_the_admin_customer_page_shows_the_2026_fields(admin_client, team):
    page = admin_client.get(
        reverse("admin:polar_sync_customer_change", args=[team.pk])
    ).content.decode()
    for value in ("Team", "Acme Corp.", "de-DE", "0b5e1c9a-6f43-4c1f-9a0e-2d8f7c3b4a51"):
        assert value in page
    assert "Seats" in page


def test_the_csv_export_has_the_2026_columns(admin_client, team):
    response = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [str(team.pk)], "index": "0"}
    )
    header, row = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    record = dict(zip(header, row, strict=True))
    assert (record["Email"], record["Type"], record["Billing name"]) == ("", "team", "Acme Corp.")
    assert (record["Locale"], record["First user event at"][:10]) == ("de-DE", "2026-10-01")


def test_the_api_serves_a_team_customer_without_email(team):
    api = APIClient()
    api.force_authenticate(make_user(staff=True))
    body = api.get(detail(team)).json()
    assert body["email"] is None
    assert (body["type"], body["billing_name"], body["locale"]) == ("team", "Acme Corp.", "de-DE")
    assert body["default_payment_method_id"] == "0b5e1c9a-6f43-4c1f-9a0e-2d8f7c3b4a51"
    assert body["first_user_event_at"].startswith("2026-10-01T09:00:00")
    assert body["state"]["active_subscriptions"][0]["seats"] == 3
    listed = api.get(reverse("polar_sync:api:customer-list")).json()["results"]
    assert [(c["type"], c["email"]) for c in listed] == [("team", None)]
