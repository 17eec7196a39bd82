"""The local Polar server sends webhooks like Polar: signed, per the contract, retried."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from standardwebhooks import Webhook

from polar_sync.management.commands.polar_server import Command
from polar_sync.testing import LocalPolarServer
from polar_sync.testing.webhooks import WebhookSender
from tests import contract
from tests.webhook_helpers import SECRET

pytestmark = pytest.mark.e2e


class Receiver:
    """A tiny HTTP endpoint recording every POST; the first ``fail_first`` answer 500."""

    def __init__(self, *, fail_first: int = 0, status: int = 202) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.received]

    def ids(self) -> list[str]:
        return [headers["webhook-id"] for headers, _body in self.received]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def polar(receiver: Receiver) -> Iterator[LocalPolarServer]:
    with LocalPolarServer(
        api_version="2025-10", webhook_url=receiver.url, webhook_secret=SECRET
    ) as server:
        server.webhooks.backoff = 0.01
        yield server


def schema_name(event_type: str) -> str:
    """customer.state_changed -> WebhookCustomerStateChangedPayload."""
    words = event_type.replace(".", "_").split("_")
    return "Webhook" + "".join(w.capitalize() for w in words) + "Payload"


def test_every_change_is_signed_like_polar_and_matches_the_contract(polar, receiver):
    # Through the API...
    created = polar.request("POST", "/v1/customers/", json={"email": "ada@example.com"}).json()
    polar.request("PATCH", f"/v1/customers/{created['id']}", json={"name": "Ada"})
    # ...and through the test handle.
    other = polar.store.add_customer(email="bob@example.com", external_id="7")
    sub = polar.store.start_subscription(other["id"], amount=2900, meters=[str(uuid.uuid4())])
    polar.store.grant_benefit(other["id"], "license_keys")
    polar.store.set_meter(other["id"], consumed_units=5, credited_units=10)
    polar.store.cancel_subscription(other["id"], sub["id"], at_period_end=True)
    polar.store.update_customer(other["id"], metadata={"plan": "pro"})
    polar.request("DELETE", f"/v1/customers/{created['id']}")
    assert polar.webhooks.flush()

    verifier = Webhook(base64.b64encode(SECRET.encode()).decode())
    types = []
    for headers, body in receiver.received:
        payload = verifier.verify(body, headers)  # raises unless signed like Polar
        contract.validate_schema(schema_name(payload["type"]), payload)
        types.append(payload["type"])
    assert set(types) == {
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.state_changed",
    }
    assert len(types) == len(polar.webhooks.deliveries) == 14
    assert len(set(receiver.ids())) == 14
    timestamps = [p["timestamp"] for p in receiver.payloads()]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(timestamps)


def test_a_subscription_start_sends_the_whole_state(polar, receiver):
    customer = polar.store.add_customer()
    assert polar.webhooks.flush()
    receiver.received.clear()
    sub = polar.store.start_subscription(customer["id"], amount=2900)
    assert polar.webhooks.flush()
    [payload] = receiver.payloads()
    assert payload["type"] == "customer.state_changed"
    assert payload["data"]["id"] == customer["id"]
    assert [s["id"] for s in payload["data"]["active_subscriptions"]] == [sub["id"]]
    contract.validate_schema("WebhookCustomerStateChangedPayload", payload)


def test_failed_deliveries_are_retried_with_backoff_and_the_same_id(receiver):
    receiver.fail_first = 2
    with LocalPolarServer(
        api_version="2025-10", webhook_url=receiver.url, webhook_secret=SECRET
    ) as polar:
        polar.webhooks.backoff = 0.01
        sleeps: list[float] = []
        real_wait = polar.webhooks._stopping.wait
        polar.webhooks._stopping.wait = lambda s: sleeps.append(s) or real_wait(s)  # type: ignore[method-assign]
        polar.store.add_customer()
        assert polar.webhooks.flush()
        first = polar.webhooks.deliveries[0]
    assert first.responses == [500, 500, 202] and first.delivered == 1
    assert receiver.ids()[:3] == [first.webhook_id] * 3
    assert sleeps[:2] == [0.01, 0.02]  # exponential


def test_a_delivery_is_given_up_after_max_attempts(receiver, caplog):
    receiver.fail_first = 1000
    with LocalPolarServer(
        api_version="2025-10", webhook_url=receiver.url, webhook_secret=SECRET
    ) as polar:
        polar.webhooks.backoff, polar.webhooks.max_attempts = 0.001, 3
        with caplog.at_level(logging.WARNING, logger="polar_sync.testing.webhooks"):
            polar.store.add_customer()
            assert polar.webhooks.flush()
    delivery = polar.webhooks.deliveries[0]
    assert delivery.gave_up and delivery.responses == [500, 500, 500]
    assert "not delivered after 3 attempts" in caplog.text


def test_an_unreachable_endpoint_counts_as_a_failed_attempt():
    sender = WebhookSender("http://127.0.0.1:9/hooks/", SECRET, max_attempts=2, backoff=0.001)
    sender.start()
    sender.send("customer.created", {"id": "x"})
    assert sender.flush()
    sender.stop()
    assert sender.deliveries[0].responses == [0, 0]


def test_duplicate_sends_every_event_twice_with_one_id(receiver):
    with LocalPolarServer(
        api_version="2025-10",
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_duplicate=True,
    ) as polar:
        polar.store.add_customer()
        assert polar.webhooks.flush()
    ids = receiver.ids()
    assert len(ids) == 4 and ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    assert receiver.received[0][1] == receiver.received[1][1]


def test_reorder_sends_a_batch_newest_first(receiver):
    with LocalPolarServer(
        api_version="2025-10", webhook_url=receiver.url, webhook_secret=SECRET, webhook_reorder=True
    ) as polar:
        customer = polar.store.add_customer()
        assert polar.webhooks.flush()
        receiver.received.clear()
        with polar.webhooks.held():
            for amount in (100, 200, 300):
                polar.store.start_subscription(customer["id"], amount=amount)
            assert polar.webhooks.flush(timeout=0.3) is False  # held back
            assert receiver.received == []
        assert polar.webhooks.flush()
    states = receiver.payloads()
    assert [len(p["data"]["active_subscriptions"]) for p in states] == [3, 2, 1]
    timestamps = [p["timestamp"] for p in states]
    assert timestamps == sorted(timestamps, reverse=True)


def test_events_made_during_an_outage_are_sent_after_restart(polar, receiver):
    polar.stop()
    polar.store.add_customer()
    assert not polar.webhooks.flush(timeout=0.2)
    assert receiver.received == []
    polar.start()
    assert polar.webhooks.flush()
    assert [p["type"] for p in receiver.payloads()] == [
        "customer.created",
        "customer.state_changed",
    ]


def test_the_secret_stays_out_of_reprs(polar):
    assert SECRET not in repr(polar.webhooks) and SECRET not in repr(polar)


def test_the_sender_refuses_a_bad_configuration():
    with pytest.raises(ValueError, match="secret"):
        LocalPolarServer(api_version="2025-10", webhook_url="http://127.0.0.1:1/hooks/")
    with pytest.raises(ValueError, match="http"):
        WebhookSender("file:///etc/passwd", SECRET)


def test_polar_server_command_sends_webhooks(monkeypatch, receiver):
    def wait(self: Command, server: LocalPolarServer) -> None:
        server.store.add_customer()
        assert server.webhooks.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(Command, "wait", wait)
    out = io.StringIO()
    call_command(
        "polar_server", "--port", "0", "--webhook-url", receiver.url,
        "--webhook-secret", SECRET, stdout=out,
    )  # fmt: skip
    assert f"Webhooks: sent to {receiver.url}" in out.getvalue()
    assert SECRET not in out.getvalue()
    assert len(receiver.received) == 2


def test_polar_server_command_needs_a_secret_with_a_webhook_url():
    with pytest.raises(CommandError, match="--webhook-secret"):
        call_command("polar_server", "--port", "0", "--webhook-url", "http://127.0.0.1:1/")
