"""Draining the outbox against the local Polar server (real HTTP): outcomes, errors, backoff,
locking, the enqueue through a broker that is down or hung, and the polar_push command."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from io import StringIO

import pytest
from celery import current_app
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from polar_sync import tasks
from polar_sync.models import Customer, PushOutbox
from polar_sync.services import push
from tests.push_support import (
    RecordingBroker,
    closed_port,
    hung_tcp_server,
    make_user,
    polar_customer,
    push_requests,
)


def long_metadata_key(user) -> dict:
    """A USER_PAYLOAD Polar refuses: metadata keys are at most 40 characters."""
    return {"email": user.email, "name": user.get_full_name(), "metadata": {"k" * 41: "v"}}


@pytest.fixture
def polar(live_polar, transactional_db, settings):
    """The local Polar server; commits are real, so the after-commit drain runs in-process."""
    return live_polar


@pytest.fixture
def broker(monkeypatch):
    """Celery with a broker (not eager); ``broker.url(...)`` sets its URL, sends are real."""

    class Broker:
        def url(self, url: str) -> None:
            monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
            monkeypatch.setitem(current_app.conf, "broker_url", url)

        def record(self) -> RecordingBroker:
            recorder = RecordingBroker()
            monkeypatch.setattr(current_app, "send_task", recorder)
            return recorder

    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    return Broker()


def pending_rows(user) -> PushOutbox:
    return PushOutbox.objects.get(external_id=str(user.pk))


# --------------------------------------------------------------------- outcomes


def test_a_refused_payload_fails_with_polars_message_and_is_not_retried(polar, polar_conf):
    polar_conf(USER_PAYLOAD="tests.test_push_drain.long_metadata_key")
    user = make_user()
    outbox = pending_rows(user)
    assert outbox.status == PushOutbox.Status.FAILED
    assert "metadata" in outbox.last_error and "HTTP 422" in outbox.last_error
    spent = push_requests(polar)
    assert push.outbox_drain(force=True).requests == 0  # a failed row waits
    user.save()  # the same payload would fail the same way: nothing changes
    assert pending_rows(user).status == PushOutbox.Status.FAILED
    assert push_requests(polar) == spent
    result = push.outbox_drain(retry_failed=True)
    assert len(result.failed) == 1 and result.requests >= 1


def test_an_email_owned_by_another_user_fails_with_a_clear_message(polar):
    polar.store.add_customer(email="taken@example.com", external_id="someone-else")
    user = make_user(email="taken@example.com")
    outbox = pending_rows(user)
    assert outbox.status == PushOutbox.Status.FAILED
    assert "someone-else" in outbox.last_error and "taken@example.com" in outbox.last_error
    assert polar_customer(polar, user.pk) is None


def test_transient_errors_back_off_and_the_periodic_drain_retries_when_due(polar):
    polar.faults.fail_rate = 1.0
    user = make_user()
    outbox = pending_rows(user)
    assert outbox.status == PushOutbox.Status.PENDING
    assert outbox.attempts == 1 and "HTTP 5" in outbox.last_error
    assert outbox.next_attempt_at > timezone.now()
    assert outbox.locked_until is None
    polar.faults.clear()
    assert tasks.drain_outbox()["requests"] == 0  # not due yet
    PushOutbox.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.drain_outbox()["created"] == 1
    assert polar_customer(polar, user.pk)["email"] == user.email
    assert not PushOutbox.objects.exists()


def test_an_in_process_push_to_a_hung_polar_costs_at_most_the_enqueue_timeout(polar, polar_conf):
    """No broker: the request that saved the user waits for Polar once, briefly,
    whatever TIMEOUT the workers use; the row waits for the next drain."""
    polar_conf(ENQUEUE_TIMEOUT=0.3, TIMEOUT=30.0)
    with hung_tcp_server() as port:
        polar_conf(SERVER=f"http://127.0.0.1:{port}")
        started = time.monotonic()
        user = make_user()
        elapsed = time.monotonic() - started
    assert elapsed < 5.0  # 0.3 s of timeout and no retry, not 30 s times MAX_RETRIES
    outbox = pending_rows(user)
    assert (outbox.status, outbox.attempts) == ("pending", 1)


def test_every_in_process_push_tries_polar_and_stops_at_the_first_failure(polar):
    """No pause shared by the process: a change right after a failure tries Polar
    again; in one commit, the first transient failure leaves the rest waiting."""
    polar.faults.fail_rate = 1.0
    make_user()
    tried = polar.store.log.request_total
    assert tried == 1
    polar.faults.clear()
    user = make_user()
    assert polar_customer(polar, user.pk)
    polar.faults.fail_rate = 1.0
    before = polar.store.log.request_total
    with transaction.atomic():
        waiting = [make_user() for _ in range(3)]
    assert polar.store.log.request_total == before + 1
    assert sorted(
        row.attempts
        for row in PushOutbox.objects.filter(external_id__in=[str(u.pk) for u in waiting])
    ) == [0, 0, 1]


def test_backoff_grows_with_attempts_and_is_capped():
    delays = [push.backoff(n) for n in range(1, 30)]
    assert push.BACKOFF_BASE / 2 <= delays[0] <= push.BACKOFF_BASE
    assert delays[5] > push.BACKOFF_BASE * 8
    assert max(delays) <= push.BACKOFF_MAX


def test_a_rate_limit_postpones_by_retry_after(polar):
    polar.faults.rate_limit = 0  # every request: 429 with Retry-After
    polar.faults.rate_limit_window = 30
    user = make_user()
    wait = (pending_rows(user).next_attempt_at - timezone.now()).total_seconds()
    assert 25 <= wait <= 31


def test_a_refused_token_stops_the_drain_and_keeps_the_rows(polar, polar_conf, broker):
    broker.record()  # rows are written, nothing is drained yet
    users = [make_user() for _ in range(3)]
    polar_conf(ACCESS_TOKEN="polar_oat_wrong")
    result = push.outbox_drain(force=True)
    assert "access token" in result.stopped
    assert result.requests == 1
    assert PushOutbox.objects.filter(status="pending").count() == len(users)


def test_a_drain_stops_after_consecutive_transient_failures(polar, broker):
    broker.record()
    for _ in range(6):
        make_user()
    polar.faults.fail_rate = 1.0
    result = push.outbox_drain(force=True)
    assert result.postponed == push.MAX_CONSECUTIVE_TRANSIENT
    assert "unavailable" in result.stopped


def test_a_row_held_by_another_worker_is_skipped(polar, broker):
    broker.record()
    user = make_user()
    PushOutbox.objects.update(locked_until=timezone.now() + timedelta(minutes=5))
    result = push.outbox_drain(force=True)
    assert (result.busy, result.requests) == (1, 0)
    PushOutbox.objects.update(locked_until=timezone.now() - timedelta(seconds=1))  # lease over
    assert push.outbox_drain(force=True).created == 1
    assert polar_customer(polar, user.pk)


def test_a_change_during_the_push_is_pushed_right_after(polar, broker, monkeypatch):
    """The row changes while its push is in flight: it stays, and the newer version follows."""
    broker.record()
    user = make_user(first_name="First")
    client = push.push_client()
    real_create = client.create

    def create_then_user_saves(body):
        answer = real_create(body)
        user.first_name = "Second"
        with transaction.atomic():
            user.save()
        return answer

    monkeypatch.setattr(client, "create", create_then_user_saves)
    result = push.outbox_drain(client=client)
    assert (result.created, result.updated) == (1, 1)
    assert polar_customer(polar, user.pk)["name"].startswith("Second")
    assert Customer.objects.get(external_id=str(user.pk)).name.startswith("Second")
    assert not PushOutbox.objects.exists()


def test_a_push_that_crashes_releases_the_row(polar, broker, monkeypatch):
    broker.record()
    make_user()
    client = push.push_client()

    def boom(*args, **kwargs):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(client, "update_external", boom)
    with pytest.raises(ZeroDivisionError):
        push.outbox_drain(client=client)
    outbox = PushOutbox.objects.get()
    assert outbox.locked_until is None and outbox.status == "pending"
    assert "bug" in outbox.last_error


def test_a_taken_over_external_id_gets_a_new_customer(polar, polar_conf):
    polar_conf(USER_EXTERNAL_ID_FIELD="username")
    make_user(username="bob", email="old-bob@example.com")
    old = polar_customer(polar, "bob")
    with transaction.atomic():
        get_user_model().objects.get(username="bob").delete()
        make_user(username="bob", email="new-bob@example.com")
    new = polar_customer(polar, "bob")
    assert new["id"] != old["id"] and new["email"] == "new-bob@example.com"
    assert polar.store.get_customer(old["id"])["deleted_at"] is not None
    assert Customer.objects.get(pk=old["id"]).is_deleted
    assert Customer.objects.get(pk=new["id"]).external_id == "bob"


def test_an_id_taken_over_again_during_the_push_gets_yet_another_customer(
    polar, polar_conf, broker, monkeypatch
):
    """While the drain deletes bob's old customer for the new bob, the new bob is
    deleted and a third user takes "bob": the customer the push creates for the
    second bob must not be handed to the third."""
    broker.record()
    polar_conf(USER_EXTERNAL_ID_FIELD="username")
    make_user(username="bob", email="first@example.com")
    push.outbox_drain()
    first = polar_customer(polar, "bob")
    with transaction.atomic():
        get_user_model().objects.get(username="bob").delete()
        make_user(username="bob", email="second@example.com")
    client = push.push_client()
    real_delete = client.delete_external

    def delete_while_bob_changes_hands(external_id):
        answer = real_delete(external_id)
        if polar_customer(polar, "bob") is None and not calls:
            calls.append(external_id)
            with transaction.atomic():
                get_user_model().objects.get(username="bob").delete()
                make_user(username="bob", email="third@example.com")
        return answer

    real_create, created = client.create, {}

    def recording_create(body):
        answer = real_create(body)
        created[body["email"]] = answer["id"]
        return answer

    calls: list[str] = []
    monkeypatch.setattr(client, "delete_external", delete_while_bob_changes_hands)
    monkeypatch.setattr(client, "create", recording_create)
    push.outbox_drain(client=client)
    third = polar_customer(polar, "bob")
    assert third["email"] == "third@example.com"
    assert third["id"] not in (first["id"], created["second@example.com"])
    assert polar.store.get_customer(created["second@example.com"])["deleted_at"] is not None
    assert not PushOutbox.objects.exists()


def test_an_id_taken_over_by_a_user_the_filter_excludes_still_deletes_the_old_customer(
    polar, polar_conf
):
    polar_conf(USER_EXTERNAL_ID_FIELD="username", USER_FILTER="tests.test_push.active_only")
    make_user(username="bob", email="old-bob@example.com")
    old = polar_customer(polar, "bob")
    with transaction.atomic():
        get_user_model().objects.get(username="bob").delete()
        new = make_user(username="bob", email="new-bob@example.com")  # "delete first"
        new.is_active = False  # and now excluded, before anything was pushed
        new.save()
    assert polar_customer(polar, "bob") is None
    assert polar.store.get_customer(old["id"])["deleted_at"] is not None
    assert not PushOutbox.objects.exists()


# ---------------------------------------------------------------------- enqueue


def test_with_a_broker_each_commit_enqueues_a_delayed_task_per_user(polar, broker):
    sent = broker.record()
    with transaction.atomic():
        users = [make_user() for _ in range(3)]
        users[0].first_name = "Again"
        users[0].save()
        assert sent.sent == []  # nothing before commit
    assert sorted(m["args"][0] for m in sent.sent) == sorted(str(u.pk) for u in users)
    assert {m["name"] for m in sent.sent} == {"polar_sync.push_user"}
    assert all(m["countdown"] == push.PUSH_DELAY and m["retry"] is False for m in sent.sent)
    assert push_requests(polar) == 0
    sent.run_all()
    assert all(polar_customer(polar, u.pk) for u in users)


def test_a_bulk_change_enqueues_one_drain(polar, broker):
    sent = broker.record()
    with transaction.atomic():
        for _ in range(push.BULK_ENQUEUE + 1):
            make_user()
    assert [m["name"] for m in sent.sent] == ["polar_sync.drain_outbox"]
    sent.run_all()
    assert len(polar.store.customers()) == push.BULK_ENQUEUE + 1


def test_the_periodic_drain_reaches_every_external_id_whatever_it_sorts_like(
    polar, polar_conf, broker
):
    """External IDs are strings: "0", "-7" or "+1" sort before "1"."""
    broker.record()  # the tasks are not run: the rows wait for the periodic drain
    polar_conf(USER_EXTERNAL_ID_FIELD="username")
    names = ["0", "-7", "+1", "~9", "10", "2"]
    for name in names:
        make_user(username=name)
    assert PushOutbox.objects.count() == len(names)
    tasks.drain_outbox()
    assert not PushOutbox.objects.exists()
    assert sorted(c["external_id"] for c in polar.store.customers()) == sorted(names)


def test_with_no_broker_configured_the_push_runs_in_process(polar, broker, monkeypatch):
    """A project that never configured Celery: no amqp://localhost after every commit."""
    sent = broker.record()
    monkeypatch.setitem(current_app.conf, "broker_url", None)
    monkeypatch.setitem(current_app.conf, "broker_write_url", None)
    user = make_user()
    assert sent.sent == []
    assert polar_customer(polar, user.pk)["email"] == user.email
    assert not PushOutbox.objects.exists()


def test_a_broker_that_is_down_fails_nothing_and_the_periodic_drain_pushes(polar, broker, caplog):
    broker.url(f"redis://127.0.0.1:{closed_port()}/0")
    with caplog.at_level(logging.WARNING, logger="polar_sync.push"):
        user = make_user()
    assert "broker is unavailable" in caplog.text
    assert pending_rows(user).status == "pending"
    assert push_requests(polar) == 0
    tasks.drain_outbox()
    assert polar_customer(polar, user.pk)["email"] == user.email
    assert not PushOutbox.objects.exists()


def test_a_hung_broker_costs_at_most_the_enqueue_timeout(polar, broker, polar_conf):
    polar_conf(ENQUEUE_TIMEOUT=0.3)
    with hung_tcp_server() as port:
        broker.url(f"redis://127.0.0.1:{port}/0")
        started = time.monotonic()
        user = make_user()
        elapsed = time.monotonic() - started
    assert elapsed < 3.0  # 0.3 s of timeout, no retry loop (redis-py alone would retry)
    assert pending_rows(user).status == "pending"


def test_without_a_token_the_change_waits_in_the_outbox(polar, polar_conf, caplog):
    polar_conf(ACCESS_TOKEN="")
    with caplog.at_level(logging.WARNING, logger="polar_sync.push"):
        user = make_user()
    assert "ACCESS_TOKEN" in caplog.text
    assert pending_rows(user).status == "pending"


# ---------------------------------------------------------------------- command


def test_polar_push_drains_everything_now_and_reports(polar, broker, polar_conf):
    broker.record()
    keep, gone = make_user(), make_user()
    gone.delete()
    polar.store.add_customer(email="guest@example.com")
    make_user(email="guest@example.com")
    out = StringIO()
    call_command("polar_push", stdout=out)
    text = out.getvalue()
    assert "Pushed 3 change(s)" in text
    assert "1 created" in text and "1 adopted" in text and "1 already gone" in text
    assert "Outbox now: 0 pending, 0 failed." in text
    assert polar_customer(polar, keep.pk)


def test_polar_push_lists_refusals_and_retries_them_on_request(polar, polar_conf):
    polar_conf(USER_PAYLOAD="tests.test_push_drain.long_metadata_key")
    user = make_user()  # refused at once by the in-process drain
    first, retry, fixed = StringIO(), StringIO(), StringIO()
    call_command("polar_push", stdout=first)
    assert "Pushed 0" in first.getvalue()
    assert "0 pending, 1 failed (polar_push --retry-failed retries them)" in first.getvalue()
    assert f"  {user.pk}: customers:" in first.getvalue()  # the row and Polar's message
    call_command("polar_push", "--retry-failed", stdout=retry)
    assert f"Refused by Polar: 1\n  {user.pk}: " in retry.getvalue()
    assert "metadata" in retry.getvalue()
    polar_conf(USER_PAYLOAD="polar_sync.mapping.user_payload")
    call_command("polar_push", "--user", str(user.pk), stdout=fixed)
    assert "1 created" in fixed.getvalue()
    assert polar_customer(polar, user.pk)["email"] == user.email
    assert not PushOutbox.objects.exists()


def test_polar_push_user_pushes_even_when_nothing_changed(polar):
    user = make_user()
    polar.store.update_customer(polar_customer(polar, user.pk)["id"], name="Edited in Polar")
    out = StringIO()
    call_command("polar_push", "--user", str(user.pk), stdout=out)
    assert "1 updated" in out.getvalue()
    assert polar_customer(polar, user.pk)["name"] == user.get_full_name()


def test_polar_push_fails_loudly_when_pushing_is_disabled(polar, polar_conf):
    polar_conf(PUSH_ENABLED=False)
    with pytest.raises(CommandError, match="PUSH_ENABLED"):
        call_command("polar_push", stdout=StringIO())


def test_polar_push_user_refuses_a_user_the_filter_excludes(polar, polar_conf):
    polar_conf(USER_FILTER="tests.test_push.active_only")
    user = make_user(is_active=False)
    with pytest.raises(CommandError, match="USER_FILTER excludes"):
        call_command("polar_push", "--user", str(user.pk), stdout=StringIO())
    assert polar.store.log.request_total == 0


def test_an_upsert_of_the_payload_polar_has_is_removed_without_a_request(polar, broker):
    broker.record()  # the rows wait for the drain below
    user = make_user()
    push.outbox_drain()
    user = get_user_model().objects.get(pk=user.pk)
    name = user.first_name
    with transaction.atomic():
        user.first_name = "Grace"
        user.save()
        user.first_name = name  # back to what Polar has
        user.save()
    assert PushOutbox.objects.get().payload["name"].startswith(f"{name} ")
    result = push.outbox_drain()
    assert (result.unchanged, result.requests, result.pushed) == (1, 0, 0)
    assert not PushOutbox.objects.exists()
    out = StringIO()
    user.first_name = "Grace"
    user.save()
    call_command("polar_push", stdout=out)
    assert "1 updated" in out.getvalue()
    assert polar_customer(polar, user.pk)["name"].startswith("Grace ")
