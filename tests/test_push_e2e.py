"""The issue's push scenarios, end to end: user saves -> outbox -> local Polar server (real HTTP).

With no broker (Celery eager, the embedded default) the drain runs in-process after
commit; where a broker matters, ``RecordingBroker`` holds the tasks until the test
runs them like a worker would.
"""

from __future__ import annotations

import pytest
from celery import current_app
from django.contrib.auth import get_user_model
from django.contrib.auth.models import update_last_login
from django.db import transaction

from polar_sync.models import Customer, PushedPayload, PushOutbox
from tests.push_support import RecordingBroker, make_user, polar_customer, push_requests

pytestmark = pytest.mark.e2e


@pytest.fixture
def polar(live_polar, transactional_db):
    return live_polar


@pytest.fixture
def broker(monkeypatch) -> RecordingBroker:
    recorder = RecordingBroker()
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    monkeypatch.setattr(current_app, "send_task", recorder)
    return recorder


def test_a_new_user_is_created_once_and_mirrored_from_polars_answer(polar):
    user = make_user(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    customer = polar_customer(polar, user.pk)
    assert (customer["email"], customer["name"]) == ("ada@example.com", "Ada Lovelace")
    counts = polar.store.request_counts
    assert counts["customers:update_external"] == 1  # 404: not there yet
    assert counts["customers:create"] == 1
    assert counts["customers:get"] == counts["customers:get_external"] == 0  # no extra GET
    mirror = Customer.objects.get(pk=customer["id"])
    assert (mirror.external_id, mirror.user, mirror.email) == (str(user.pk), user, user.email)
    assert mirror.raw["modified_at"] == customer["modified_at"]
    assert not PushOutbox.objects.exists()


def test_an_update_patches_by_external_id(polar):
    user = make_user()
    polar.store.reset_requests()
    user.email = "renamed@example.com"
    user.last_name = "Byron"
    user.save()
    assert polar.store.request_counts == {"customers:update_external": 1}
    assert polar_customer(polar, user.pk)["email"] == "renamed@example.com"
    assert Customer.objects.get(external_id=str(user.pk)).email == "renamed@example.com"


def test_a_deleted_user_deletes_the_customer(polar):
    user = make_user()
    customer_id = polar_customer(polar, user.pk)["id"]
    user.delete()
    assert polar.store.get_customer(customer_id)["deleted_at"] is not None
    assert Customer.objects.get(pk=customer_id).is_deleted
    assert not PushedPayload.objects.exists()
    assert not PushOutbox.objects.exists()


def test_a_customer_already_gone_counts_as_deleted(polar):
    user = make_user()
    polar.store.delete_customer(polar_customer(polar, user.pk)["id"])
    user.delete()
    assert polar.store.status_counts[404] >= 2  # the first PATCH, then this DELETE
    assert not PushOutbox.objects.exists()


def test_update_then_delete_only_the_delete_reaches_polar(polar):
    user = make_user()
    customer_id = polar_customer(polar, user.pk)["id"]
    polar.store.reset_requests()
    with transaction.atomic():
        user.first_name = "Changed"
        user.save()
        user.delete()
    assert polar.store.request_counts == {"customers:delete_external": 1}
    assert polar.store.get_customer(customer_id)["deleted_at"] is not None


def test_update_then_delete_in_separate_commits_with_a_broker(polar, broker):
    user = make_user()
    broker.run_all()
    customer_id = polar_customer(polar, user.pk)["id"]
    polar.store.reset_requests()
    user.first_name = "Changed"
    user.save()
    user.delete()
    broker.run_all()  # two tasks: the first pushes the delete, the second finds nothing
    assert polar.store.request_counts == {"customers:delete_external": 1}
    assert polar.store.get_customer(customer_id)["deleted_at"] is not None


def test_ten_quick_saves_cost_at_most_two_calls_with_a_broker(polar, broker):
    user = make_user()
    broker.run_all()
    polar.store.reset_requests()
    for n in range(10):
        user.first_name = f"Name{n}"
        user.save()
    assert len(broker.sent) == 10  # one task per commit...
    broker.run_all()  # ...run once the PUSH_DELAY countdown is over
    assert push_requests(polar) <= 2
    assert polar_customer(polar, user.pk)["name"].startswith("Name9 ")


def test_ten_saves_in_one_transaction_cost_one_call_without_a_broker(polar):
    user = make_user()
    polar.store.reset_requests()
    with transaction.atomic():
        for n in range(10):
            user.first_name = f"Name{n}"
            user.save()
    assert push_requests(polar) == 1
    assert polar_customer(polar, user.pk)["name"].startswith("Name9 ")


def test_a_guest_customer_with_the_same_email_is_adopted(polar):
    guest = polar.store.add_customer(email="guest@example.com", name="Guest Checkout")
    user = make_user(email="guest@example.com", first_name="Grace", last_name="Hopper")
    adopted = polar.store.get_customer(guest["id"])
    assert adopted["external_id"] == str(user.pk)
    assert adopted["name"] == "Grace Hopper"
    assert len(polar.store.customers()) == 1  # no second customer
    assert Customer.objects.get(pk=guest["id"]).user == user
    # from now on the user's changes go straight to that customer
    polar.store.reset_requests()
    user.first_name = "Amazing Grace"
    user.save()
    assert polar.store.request_counts == {"customers:update_external": 1}


def test_a_rolled_back_transaction_pushes_nothing(polar):
    with pytest.raises(RuntimeError), transaction.atomic():
        user = make_user()
        user.first_name = "Changed"
        user.save()
        raise RuntimeError("the view failed")
    assert polar.store.log.request_total == 0
    assert not get_user_model().objects.exists()
    assert not PushOutbox.objects.exists()


def test_last_login_only_saves_push_nothing(polar):
    user = make_user()
    polar.store.reset_requests()
    for _ in range(3):
        update_last_login(None, user)  # what django.contrib.auth does on every login
    user.save()  # a full save that changes nothing mapped
    assert polar.store.log.request_total == 0
    assert not PushOutbox.objects.exists()


def test_a_user_excluded_by_the_filter_is_never_pushed(polar, settings):
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "USER_FILTER": "tests.test_push.active_only"}
    user = make_user(is_active=False)
    user.first_name = "Still inactive"
    user.save()
    assert polar.store.log.request_total == 0
    user.is_active = True
    user.save()
    assert polar_customer(polar, user.pk)["name"].startswith("Still inactive")
