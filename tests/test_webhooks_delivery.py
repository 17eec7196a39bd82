"""From a stored delivery to the mirror: in-process without a broker, queued with one,
swept when the queueing was lost, retried with backoff after a transient failure."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from polar_sync import tasks
from polar_sync.exceptions import PolarNetworkError, PolarNotFoundError
from polar_sync.models import Customer, WebhookEvent
from polar_sync.services import webhooks as service
from tests.push_support import RecordingBroker, closed_port
from tests.webhook_helpers import customer_data, deliver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]
Status = WebhookEvent.Status


@pytest.fixture
def celery_conf(monkeypatch):
    """Celery as a project configures it: not eager; ``broker_url`` set per test.

    ``setitem``, not ``setattr``: ``conf.broker_write_url`` reads as ``broker_url`` when
    unset, and restoring that read value would leave it set for the tests that follow.
    """
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)

    def configure(broker_url: str | None) -> RecordingBroker | None:
        monkeypatch.setitem(current_app.conf, "broker_url", broker_url)
        monkeypatch.setitem(current_app.conf, "broker_write_url", None)
        if broker_url and broker_url.startswith("redis://127.0.0.1:"):
            return None  # a real send, to a broker that is down
        recorder = RecordingBroker()
        monkeypatch.setattr(current_app, "send_task", recorder)
        return recorder

    return configure


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    web = Client()

    def send(event_type: str, data: dict, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(web, event_type, data, **kwargs)
        assert response.status_code == 202, response.content
        return WebhookEvent.objects.get(pk=WebhookEvent.objects.latest("pk").pk)

    return send


def age(event: WebhookEvent, **delta) -> None:
    """Move an event's reception back in time (the sweep's grace is about age)."""
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(**delta))


def make_due(event: WebhookEvent) -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


# -- where processing runs ------------------------------------------------------------------


def test_with_no_broker_configured_a_delivery_is_applied_in_process(celery_conf, send):
    sent = celery_conf(None)
    cid = str(uuid.uuid4())
    event = send("customer.created", customer_data(cid, name="Ada"))
    assert sent.sent == []  # no amqp://localhost attempt
    event.refresh_from_db()
    assert event.status == Status.PROCESSED and event.attempts == 1
    assert Customer.objects.get(pk=cid).name == "Ada"


def test_with_a_broker_the_task_is_queued_by_name_and_applies_it(celery_conf, send):
    sent = celery_conf("memory://")
    cid = str(uuid.uuid4())
    event = send("customer.created", customer_data(cid))
    assert [(m["name"], m["args"]) for m in sent.sent] == [
        ("polar_sync.process_webhook", [event.pk])
    ]
    assert sent.sent[0]["retry"] is False  # a broker that is down costs one short try
    event.refresh_from_db()
    assert event.status == Status.RECEIVED and not Customer.objects.filter(pk=cid).exists()
    assert tasks.process_webhook(event.pk) == Status.PROCESSED
    assert Customer.objects.filter(pk=cid).exists()


def test_a_broker_that_is_down_leaves_the_event_received_for_the_sweep(celery_conf, send, caplog):
    celery_conf(f"redis://127.0.0.1:{closed_port()}/0")
    cid = str(uuid.uuid4())
    with caplog.at_level(logging.WARNING, logger="polar_sync.webhooks"):
        event = send("customer.created", customer_data(cid))
    assert "could not be queued" in caplog.text and "sweep" in caplog.text
    event.refresh_from_db()
    assert event.status == Status.RECEIVED
    # Within the grace the task may still come: the sweep leaves it.
    assert tasks.sweep_webhooks() == {}
    age(event, minutes=1)
    out = StringIO()
    call_command("polar_webhooks", "--sweep", stdout=out)
    assert out.getvalue().strip() == "swept 1 event(s): 1 processed"
    event.refresh_from_db()
    assert event.status == Status.PROCESSED and Customer.objects.filter(pk=cid).exists()
    with pytest.raises(CommandError, match="--sweep selects its own events"):
        call_command("polar_webhooks", "--sweep", "--failed", stdout=StringIO())


def test_the_periodic_sweep_is_a_task_on_the_demo_projects_beat():
    tasks_scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert "polar_sync.sweep_webhooks" in tasks_scheduled
    assert current_app.tasks["polar_sync.sweep_webhooks"].name == tasks.sweep_webhooks.name


# -- transient failures -------------------------------------------------------------------


@pytest.fixture
def flaky(monkeypatch):
    """Make the state handler raise ``error`` while ``flaky.error`` is set."""

    class Flaky:
        error: Exception | None = None

    real = service.HANDLERS["customer.created"]

    def handler(event):
        if Flaky.error is not None:
            raise Flaky.error
        return real(event)

    monkeypatch.setitem(service.HANDLERS, "customer.created", handler)
    return Flaky


@pytest.mark.parametrize(
    "error",
    [OperationalError("database is locked"), PolarNetworkError("connection reset")],
    ids=["database", "network"],
)
def test_a_transient_failure_is_retried_with_backoff_then_succeeds(flaky, send, error):
    flaky.error = error
    cid = str(uuid.uuid4())
    before = timezone.now()
    event = send("customer.created", customer_data(cid))
    event.refresh_from_db()
    assert event.status == Status.RETRYING and event.attempts == 1
    assert str(error) in event.error
    assert timedelta(seconds=29) < event.next_attempt_at - before < timedelta(seconds=40)
    # Not due yet: neither the sweep nor a redelivered task touches it.
    assert service.webhook_events_sweep() == {}
    assert tasks.process_webhook(event.pk) == Status.RETRYING
    flaky.error = None
    make_due(event)
    assert service.webhook_events_sweep() == {Status.PROCESSED: 1}
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error, event.next_attempt_at) == (
        Status.PROCESSED,
        2,
        "",
        None,
    )
    assert Customer.objects.filter(pk=cid).exists()


def test_transient_failures_back_off_and_count_as_failed_after_the_last_attempt(flaky, send):
    flaky.error = OperationalError("server closed the connection unexpectedly")
    event = send("customer.created", customer_data(str(uuid.uuid4())))
    delays = []
    for _ in range(service.MAX_ATTEMPTS - 1):
        event.refresh_from_db()
        assert event.status == Status.RETRYING
        delays.append(round((event.next_attempt_at - timezone.now()).total_seconds() / 30))
        make_due(event)
        service.webhook_events_sweep()
    event.refresh_from_db()
    assert event.status == Status.FAILED and event.attempts == service.MAX_ATTEMPTS
    assert event.next_attempt_at is None and "server closed" in event.error
    assert delays == [1, 2, 4, 8, 16, 32, 64]  # x 30 s: 30 s ... 32 min


def test_a_permanent_failure_fails_at_once(flaky, send):
    flaky.error = OperationalError("database is locked")
    transient = send("customer.created", customer_data(str(uuid.uuid4())))
    flaky.error = PolarNotFoundError("no such customer")
    permanent = send("customer.created", customer_data(str(uuid.uuid4())))
    transient.refresh_from_db()
    permanent.refresh_from_db()
    assert transient.status == Status.RETRYING
    assert permanent.status == Status.FAILED and permanent.next_attempt_at is None


def test_without_a_broker_the_next_delivery_carries_due_retries_along(flaky, send):
    flaky.error = OperationalError("database is locked")
    first = send("customer.created", customer_data(str(uuid.uuid4())))
    flaky.error = None
    make_due(first)
    send("customer.created", customer_data(str(uuid.uuid4())))
    first.refresh_from_db()
    assert first.status == Status.PROCESSED and first.attempts == 2


# -- the status page ----------------------------------------------------------------------


def test_the_status_page_shows_events_waiting_longer_than_a_minute(admin_client, flaky, send):
    flaky.error = OperationalError("database is locked")
    retrying = send("customer.created", customer_data(str(uuid.uuid4())))
    age(retrying, minutes=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "webhook_event_dispatch", lambda **kwargs: None)  # task lost
        stuck = send("customer.created", customer_data(str(uuid.uuid4())))
        fresh = send("customer.created", customer_data(str(uuid.uuid4())))
    age(stuck, seconds=90)
    assert fresh.status == Status.RECEIVED  # received seconds ago: not waiting yet
    page = admin_client.get(reverse("admin:polar_sync_syncrun_status")).text
    row = re.search(r'<tr id="status-webhooks-waiting">(.*?)</tr>', page, re.S).group(1)
    assert "<td>2 (received or retrying" in row
    assert "status__exact=received" in row and "status__exact=retrying" in row
