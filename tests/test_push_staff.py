"""Staff and superusers are not Polar customers by default (``PUSH_STAFF``), and
``polar_push --reconcile --dry-run`` says what reconciling would queue."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from polar_sync.models import PushOutbox
from polar_sync.services import push, users_reconcile
from tests.push_support import make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_staff_and_superusers_are_not_pushed_by_default(flag):
    make_user(**{flag: True})
    assert not PushOutbox.objects.exists()


def test_createsuperuser_makes_no_polar_customer():
    call_command("createsuperuser", "--noinput", username="root", email="root@example.com")
    assert not PushOutbox.objects.exists()


def test_push_staff_includes_them(polar_conf):
    polar_conf(PUSH_STAFF=True)
    user = make_user(is_staff=True, is_superuser=True)
    assert PushOutbox.objects.get().external_id == str(user.pk)


def test_a_user_made_staff_has_its_waiting_push_dropped_and_pushed_again_when_no_longer():
    user = make_user()
    assert PushOutbox.objects.exists()
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    assert not PushOutbox.objects.exists()
    user.is_staff = False
    user.save(update_fields=["is_staff"])
    assert PushOutbox.objects.get().external_id == str(user.pk)


def test_pushing_a_staff_user_by_hand_says_why_it_is_refused():
    user = make_user(is_superuser=True)
    result = push.customer_push(external_id=str(user.pk))
    assert result.stopped == (
        f"user {user.pk} is not pushed: staff and superusers are not pushed (PUSH_STAFF is False)"
    )
    assert result.requests == 0 and not PushOutbox.objects.exists()
    with pytest.raises(CommandError, match="PUSH_STAFF is False"):
        call_command("polar_push", "--user", str(user.pk), stdout=StringIO())


def bulk_users(n: int, **fields) -> list:
    model = get_user_model()
    start = model.objects.count()
    model.objects.bulk_create(  # no signal: nothing queued
        model(username=f"bulk{i}", email=f"bulk{i}@example.com", **fields)
        for i in range(start, start + n)
    )
    return list(model.objects.order_by("pk"))[start:]


def test_reconcile_skips_staff_and_counts_them():
    bulk_users(3)
    bulk_users(2, is_staff=True)
    result = users_reconcile(enqueue=False)
    assert (result.checked, result.queued, result.staff) == (3, 3, 2)


def test_reconcile_dry_run_says_what_it_would_queue_and_writes_nothing():
    users = bulk_users(3)
    bulk_users(1, is_superuser=True)
    out = StringIO()
    call_command("polar_push", "--reconcile", "--dry-run", stdout=out)
    text = out.getvalue()
    assert (
        "Dry run: compared 3 user(s); would queue 3; staff and superusers: 1 not pushed "
        "(PUSH_STAFF is False), 0 excluded by USER_FILTER." in text
    )
    for user in users:
        assert f"  would push external ID {user.pk}\n" in text
    assert "Nothing was written or pushed." in text
    assert not PushOutbox.objects.exists()


def test_dry_run_goes_with_reconcile():
    with pytest.raises(CommandError, match="--dry-run goes with --reconcile"):
        call_command("polar_push", "--dry-run", stdout=StringIO())
