"""Reconciling: users whose change sent no signal, or whose customer Polar lost, are queued
and pushed; users Polar holds as they are cost no write. Against the local Polar server."""

from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
from celery import current_app
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from polar_sync import tasks
from polar_sync.models import Customer, PushedPayload, PushOutbox
from polar_sync.services import push, users_reconcile
from tests.push_support import RecordingBroker, make_user, polar_customer, push_requests


def staff_only(user) -> bool:
    return user.is_staff


@pytest.fixture
def polar(live_polar, transactional_db):
    return live_polar


@pytest.fixture
def held(monkeypatch):
    """A broker that only records: queued rows stay in the outbox to be looked at."""
    recorder = RecordingBroker()
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    monkeypatch.setattr(current_app, "send_task", recorder)
    return recorder


def bulk_users(n: int) -> list:
    model = get_user_model()
    model.objects.bulk_create(  # no signal: nothing queued
        model(username=f"bulk{i}", email=f"bulk{i}@example.com", first_name=f"B{i}")
        for i in range(n)
    )
    return list(model.objects.filter(username__startswith="bulk").order_by("pk"))


def test_users_made_without_a_signal_are_pushed(polar):
    users = bulk_users(5)
    assert not PushOutbox.objects.exists()
    result = users_reconcile(batch_size=2)  # three batches
    assert (result.checked, result.queued, result.skipped) == (5, 5, 0)
    assert not PushOutbox.objects.exists()  # drained in-process after each batch
    for user in users:
        assert polar_customer(polar, user.pk)["email"] == user.email


def test_only_users_polar_does_not_hold_as_they_are_are_queued(polar, held):
    _synced, edited, mirrored = make_user(), make_user(), make_user()
    push.outbox_drain()  # pushed, and mirrored from Polar's answers
    # As if pushed before polar_sync was installed: only the mirror knows the customer.
    PushedPayload.objects.filter(external_id=str(mirrored.pk)).delete()
    assert Customer.objects.filter(external_id=str(mirrored.pk)).exists()
    get_user_model().objects.filter(pk=edited.pk).update(last_name="Updated")  # no signal
    before = push_requests(polar)
    held.sent.clear()
    result = users_reconcile()
    assert (result.checked, result.queued) == (3, 1)
    row = PushOutbox.objects.get()
    assert (row.external_id, row.payload["name"]) == (str(edited.pk), "Ada Updated")
    assert push_requests(polar) == before
    sent = [(message["name"], message["args"]) for message in held.sent]
    assert sent == [("polar_sync.push_user", [str(edited.pk)])]


def test_what_waits_is_what_counts(polar, held):
    same, other = make_user(), make_user()  # both waiting, unpushed
    get_user_model().objects.filter(pk=other.pk).update(first_name="Later")
    revision = PushOutbox.objects.get(external_id=str(same.pk)).revision
    assert users_reconcile().queued == 1
    assert PushOutbox.objects.get(external_id=str(same.pk)).revision == revision
    assert PushOutbox.objects.get(external_id=str(other.pk)).payload["name"].startswith("Later ")


def test_users_the_filter_excludes_are_skipped(polar, polar_conf, held):
    polar_conf(USER_FILTER=f"{__name__}.staff_only", PUSH_STAFF=True)
    bulk_users(2)
    get_user_model().objects.filter(username="bulk0").update(is_staff=True)
    result = users_reconcile()
    assert (result.checked, result.queued, result.skipped) == (1, 1, 1)


def test_nothing_happens_when_pushing_is_off(polar, polar_conf):
    bulk_users(1)
    polar_conf(PUSH_ENABLED=False)
    assert "PUSH_ENABLED" in users_reconcile().stopped
    assert not PushOutbox.objects.exists()


def test_the_command_reconciles_then_drains(polar):
    users = bulk_users(3)
    out = StringIO()
    call_command("polar_push", "--reconcile", stdout=out)
    text = out.getvalue()
    assert (
        "Reconciled 3 user(s): 3 queued, staff and superusers: 0 not pushed "
        "(PUSH_STAFF is False), 0 excluded by USER_FILTER." in text
    )
    assert "Pushed 3 change(s) to Polar: 3 created" in text
    assert all(polar_customer(polar, user.pk) for user in users)
    with pytest.raises(CommandError, match="cannot be combined"):
        call_command("polar_push", "--reconcile", "--user", "1", stdout=StringIO())


def test_the_task_reports_what_it_did(polar, held):
    bulk_users(2)
    assert tasks.reconcile_users() == {
        "checked": 2,
        "queued": 2,
        "skipped": 0,
        "staff": 0,
        "stopped": "",
    }


def test_an_upsert_queued_over_a_waiting_delete_deletes_the_old_customer_first(polar, held):
    waits = make_user()
    PushOutbox.objects.update(action=PushOutbox.Action.DELETE, payload={})
    bulk_users(2)
    assert users_reconcile().queued == 3
    rows = {row.external_id: row for row in PushOutbox.objects.all()}
    assert {row.action for row in rows.values()} == {"upsert"}
    assert rows[str(waits.pk)].delete_first  # it replaced a waiting delete


def test_a_user_deleted_while_its_batch_is_reconciled_stays_deleted_in_polar(
    polar, held, monkeypatch
):
    """The delete waits for the batch (its users are locked) and then supersedes
    the upsert; it never lands between the read and the write, which would queue
    an upsert that creates the deleted user's customer again."""
    from polar_sync.services.push import reconcile as push_reconcile

    bulk_users(1)  # no signal: reconcile will queue it
    user = get_user_model().objects.get(username="bulk0")
    external_id = str(user.pk)
    listed, compare = threading.Event(), push_reconcile._batch_reconcile

    def slow_compare(**kwargs):
        listed.set()
        time.sleep(0.5)  # the delete below runs now, or waits for this transaction
        return compare(**kwargs)

    monkeypatch.setattr(push_reconcile, "_batch_reconcile", slow_compare)
    worker = threading.Thread(target=lambda: (users_reconcile(), connection.close()))
    worker.start()
    assert listed.wait(10)
    user.delete()
    worker.join(10)
    assert PushOutbox.objects.get(external_id=external_id).action == PushOutbox.Action.DELETE
    push.outbox_drain()
    assert polar_customer(polar, external_id) is None
