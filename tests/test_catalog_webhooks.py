"""``product.*`` and ``benefit.*`` webhooks keep the catalogue fresh, through the pipeline."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from polar_sync.models import Benefit, Product, WebhookEvent
from polar_sync.testing import LocalPolarServer
from polar_sync.testing.catalog import benefit_dict, product_dict
from tests import contract
from tests.webhook_helpers import SECRET, deliver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]
ORG = "1dbfc517-0bbf-4301-9ba8-555ca42b9737"
US = 1_700_000_000_000_000  # a creation time, in microseconds


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    web = Client()

    def send(event_type: str, data: dict, **kwargs) -> WebhookEvent:
        webhook_id = f"msg_{uuid.uuid4().hex}"
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(web, event_type, data, webhook_id=webhook_id, **kwargs)
        assert response.status_code == 202, response.content
        return WebhookEvent.objects.get(webhook_id=webhook_id)

    return send


def product(**overrides) -> dict:
    data = product_dict(
        id=overrides.pop("id", str(uuid.uuid4())),
        name=overrides.pop("name", "Pro"),
        organization_id=ORG,
        created_us=US,
        amount=2900,
        currency="usd",
        recurring_interval="month",
        benefits=[],
    )
    return {**data, **overrides}


def benefit(**overrides) -> dict:
    data = benefit_dict(
        id=overrides.pop("id", str(uuid.uuid4())),
        type="custom",
        description=overrides.pop("description", "Priority support"),
        organization_id=ORG,
        created_us=US,
    )
    return {**data, **overrides}


@pytest.mark.parametrize("version", ["2026-04", "2026-10"])
def test_the_payloads_used_here_are_the_documents_webhooks(version):
    path = contract.spec_path(version)
    for event_type, data in (("product.created", product()), ("benefit.updated", benefit())):
        payload = {"type": event_type, "timestamp": "2026-01-01T00:00:00Z", "data": data}
        contract.validate_schema(contract.webhook_schema(event_type), payload, path=path)


def test_product_created_then_updated_upserts_the_row(send):
    data = product()
    event = send("product.created", data)
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.customer_id is None  # a product is no customer
    assert Product.objects.get(pk=data["id"]).name == "Pro"
    renamed = {**data, "name": "Pro (2026)", "modified_at": "2026-02-01T00:00:00Z"}
    send("product.updated", renamed)
    row = Product.objects.get(pk=data["id"])
    assert (row.name, row.raw["name"]) == ("Pro (2026)", "Pro (2026)")


def test_an_older_product_update_does_not_overwrite_a_newer_one(send):
    data = product(modified_at="2026-03-01T00:00:00Z", name="New name")
    send("product.updated", data)
    older = send("product.updated", {**data, "modified_at": "2026-02-01T00:00:00Z", "name": "Old"})
    assert older.status == WebhookEvent.Status.IGNORED
    assert Product.objects.get(pk=data["id"]).name == "New name"


def test_benefit_created_and_updated(send):
    data = benefit()
    send("benefit.created", data)
    send("benefit.updated", {**data, "description": "VIP", "modified_at": "2026-02-01T00:00:00Z"})
    row = Benefit.objects.get(pk=data["id"])
    assert (row.description, row.type, row.name) == ("VIP", "custom", "VIP")


def test_a_malformed_product_is_a_failed_event_not_a_row(send):
    event = send("product.created", {**product(), "name": None})
    assert event.status in (WebhookEvent.Status.FAILED, WebhookEvent.Status.RETRYING)
    assert "name" in event.error
    assert not Product.objects.exists()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_e2e_products_and_benefits_made_in_polar_arrive_by_webhook(live_server, settings):
    url = live_server.url + reverse("polar_sync:webhooks")
    with LocalPolarServer(api_version="2026-04", webhook_url=url, webhook_secret=SECRET) as polar:
        settings.POLAR_SYNC = {
            "ACCESS_TOKEN": polar.token,
            "SERVER": polar.url,
            "API_VERSION": "2026-04",
            "WEBHOOK_SECRET": SECRET,
        }
        perk = polar.store.add_benefit("custom", "Early access")
        item = polar.store.add_product("Team", benefit_ids=[perk["id"]])
        polar.store.update_product(item["id"], name="Team plan")
        assert polar.webhooks.flush(timeout=20)
        assert all(d.responses == [202] for d in polar.webhooks.deliveries)
        for delivery in polar.webhooks.deliveries:
            contract.validate_webhook(delivery.body, version="2026-04")
    assert Product.objects.get(pk=item["id"]).name == "Team plan"
    assert Benefit.objects.get(pk=perk["id"]).description == "Early access"
