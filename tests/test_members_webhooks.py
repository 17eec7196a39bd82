"""``member.*`` and ``customer_seat.*`` webhooks: unit (signed posts) and end to end
(the local 2026-04 server posting to the live app)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import responses
from django.test import Client
from django.urls import reverse

from polar_sync.models import Customer, Member, WebhookEvent
from polar_sync.testing import LocalPolarServer
from tests.conftest import BASE_URL, TOKEN
from tests.factories import make_customer
from tests.mirror_helpers import make_user
from tests.webhook_helpers import SECRET, customer_data, deliver

Status = WebhookEvent.Status


def member_json(customer_id: str, **overrides) -> dict:
    payload = {
        "id": str(uuid.uuid4()),
        "created_at": "2026-05-01T10:00:00Z",
        "modified_at": "2026-05-01T10:00:00Z",
        "customer_id": customer_id,
        "email": "ada@example.com",
        "name": "Ada",
        "external_id": None,
        "role": "member",
    }
    payload.update(overrides)
    return payload


def seat_json(member: dict | None, customer_id: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "created_at": "2026-05-01T10:00:00Z",
        "modified_at": None,
        "subscription_id": str(uuid.uuid4()),
        "order_id": None,
        "status": "claimed" if member else "pending",
        "customer_id": customer_id,
        "member_id": member["id"] if member else None,
        "member": member,
        "email": "ada@example.com",
        "customer_email": None,
        "invitation_token_expires_at": None,
        "claimed_at": None,
        "revoked_at": None,
        "seat_metadata": None,
    }


@pytest.fixture
def send(django_capture_on_commit_callbacks, webhook_secret, polar_conf):
    polar_conf(API_VERSION="2026-04", SERVER=BASE_URL, ACCESS_TOKEN=TOKEN)
    polar_conf(RATE_LIMIT=100_000, MAX_RETRIES=0)
    web = Client()

    def send(event_type: str, data: dict, **kwargs) -> WebhookEvent:
        webhook_id = f"msg_{uuid.uuid4().hex}"
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(web, event_type, data, webhook_id=webhook_id, **kwargs)
        assert response.status_code == 202, response.content
        return WebhookEvent.objects.get(webhook_id=webhook_id)

    return send


@pytest.mark.django_db
def test_member_created_updated_deleted(send):
    user = make_user()
    team = make_customer()
    data = member_json(str(team.pk), external_id=str(user.pk), role="owner")
    event = send("member.created", data)
    assert event.status == Status.PROCESSED and event.customer_id == team.pk
    member = Member.objects.get(pk=data["id"])
    assert (member.role, member.user, member.customer) == ("owner", user, team)

    send("member.updated", {**data, "role": "billing_manager", "modified_at": "2026-05-02T00:00Z"})
    assert Member.objects.get().role == "billing_manager"
    older = send("member.updated", {**data, "name": "Old", "role": "member"})
    assert older.status == Status.PROCESSED and Member.objects.get().role == "billing_manager"

    send("member.deleted", data)
    assert not Member.objects.exists()
    late = send("member.updated", {**data, "modified_at": "2026-05-03T00:00Z"})
    assert late.status == Status.IGNORED and "deleted" in late.error
    assert not Member.objects.exists()


@pytest.mark.django_db
def test_a_member_of_an_unknown_customer_reads_the_customer_once(send):
    cid = str(uuid.uuid4())
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE_URL}/v1/customers/{cid}", json=customer_data(cid, email=None))
        event = send("member.created", member_json(cid))
    assert event.status == Status.PROCESSED
    assert Customer.objects.filter(pk=cid).exists() and Member.objects.count() == 1


@pytest.mark.django_db
def test_a_404_without_polars_error_creates_nothing(send):
    cid = str(uuid.uuid4())
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE_URL}/v1/customers/{cid}", json={"detail": "Not Found"}, status=404)
        event = send("member.created", member_json(cid))
    assert event.status == Status.FAILED
    assert not Customer.objects.exists() and not Member.objects.exists()


@pytest.mark.django_db
def test_seat_events_upsert_the_seats_member_and_cost_no_request(send):
    team = make_customer()
    member = member_json(str(team.pk), email="bob@example.com")
    with responses.RequestsMock():  # no request to Polar
        assigned = send("customer_seat.assigned", seat_json(None, str(team.pk)))
        claimed = send("customer_seat.claimed", seat_json(member, str(team.pk)))
        revoked = send("customer_seat.revoked", seat_json(member, str(team.pk)))
    assert assigned.status == Status.IGNORED and "no member" in assigned.error
    assert claimed.status == Status.PROCESSED and claimed.customer_id == team.pk
    assert Member.objects.get().email == "bob@example.com"
    assert revoked.status == Status.IGNORED  # its member.deleted removes the member


# -- end to end -----------------------------------------------------------------------------


@pytest.fixture
def polar_sending(live_server, settings) -> Iterator[LocalPolarServer]:
    with LocalPolarServer(
        api_version="2026-04",
        webhook_url=live_server.url + reverse("polar_sync:webhooks"),
        webhook_secret=SECRET,
    ) as server:
        settings.POLAR_SYNC = {
            "ACCESS_TOKEN": server.token,
            "SERVER": server.url,
            "WEBHOOK_SECRET": SECRET,
            "API_VERSION": "2026-04",
        }
        yield server


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_e2e_members_follow_polar_through_webhooks(polar_sending):
    polar = polar_sending
    customer = polar.store.add_customer(email="team@example.com")
    member = polar.store.add_member(customer["id"], external_id="u1", role="owner")
    assert polar.webhooks.flush(timeout=20)
    assert Member.objects.get(pk=member["id"]).role == "owner"

    polar.store.update_member(member["id"], role="billing_manager")
    assert polar.webhooks.flush(timeout=20)
    assert Member.objects.get(pk=member["id"]).role == "billing_manager"

    polar.store.delete_member(member["id"])
    assert polar.webhooks.flush(timeout=20)
    assert not Member.objects.filter(pk=member["id"]).exists()
    statuses = set(WebhookEvent.objects.values_list("status", flat=True))
    assert Status.FAILED not in statuses and Status.RETRYING not in statuses
