"""From a user change to an outbox row: what is recorded, coalesced, skipped; the checks.

These tests run inside a test transaction, so the after-commit drain never runs:
they look at the outbox alone. The drain is tested in test_push_drain.py and the
whole flow in test_push_e2e.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import update_last_login
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction
from django.test import override_settings

from polar_sync.models import PushedPayload, PushOutbox
from polar_sync.services import push
from tests.factories import make_customer
from tests.push_support import make_user

pytestmark = pytest.mark.django_db


def active_only(user) -> bool:
    """A USER_FILTER for these tests."""
    return user.is_active


def with_company(user) -> dict:
    """A USER_PAYLOAD for these tests: the default plus metadata."""
    return {"email": user.email, "name": user.get_full_name(), "metadata": {"staff": user.is_staff}}


def not_a_dict(user) -> list:
    return [user.email]


NOT_CALLABLE = "just a string"


def row(user) -> PushOutbox:
    return PushOutbox.objects.get(external_id=str(user.pk))


def test_a_new_user_gets_an_upsert_row_with_the_default_payload():
    user = make_user(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    outbox = row(user)
    assert outbox.action == PushOutbox.Action.UPSERT
    assert outbox.status == PushOutbox.Status.PENDING
    assert outbox.payload == {"email": "ada@example.com", "name": "Ada Lovelace"}
    assert outbox.user_id == str(user.pk)
    assert outbox.attempts == 0


def test_saves_coalesce_into_one_row_holding_the_latest_payload():
    user = make_user()
    revisions = {row(user).revision}
    for name in ("B", "C", "D"):
        user.first_name = name
        user.save()
        revisions.add(row(user).revision)
    assert PushOutbox.objects.count() == 1
    outbox = row(user)
    assert outbox.payload["name"].startswith("D ")
    assert len(revisions) == 4  # each change is a new revision (a drain in flight sees it)


def test_a_save_that_changes_nothing_mapped_writes_nothing():
    user = make_user()
    PushOutbox.objects.all().delete()
    PushedPayload.objects.create(
        external_id=str(user.pk), payload=push.user_payload_build(user=user)
    )
    update_last_login(None, user)
    user.is_staff = True
    user.save()
    assert not PushOutbox.objects.exists()


def test_a_save_equal_to_the_waiting_payload_does_not_touch_the_row():
    user = make_user()
    revision = row(user).revision
    user.save()
    assert row(user).revision == revision


def test_a_user_the_mirror_already_matches_is_not_pushed_again():
    """First save after installing polar_sync: the pull already has the customer as is."""
    user = make_user()
    PushOutbox.objects.all().delete()
    make_customer(external_id=str(user.pk), email=user.email, name=user.get_full_name())
    update_last_login(None, user)
    assert not PushOutbox.objects.exists()
    user.first_name = "Changed"
    user.save()
    assert row(user).payload["name"].startswith("Changed")


def test_a_rolled_back_change_leaves_no_row():
    with pytest.raises(RuntimeError), transaction.atomic():
        make_user(username="ghost")
        raise RuntimeError("rollback")
    assert not PushOutbox.objects.exists()


def test_a_delete_supersedes_the_waiting_upsert():
    user = make_user()
    pk = str(user.pk)
    user.first_name = "Changed"
    user.save()
    user.delete()
    outbox = PushOutbox.objects.get(external_id=pk)
    assert (outbox.action, outbox.payload, outbox.user_id) == ("delete", {}, pk)


def test_an_external_id_taken_over_after_a_delete_deletes_the_old_customer_first(polar_conf):
    polar_conf(USER_EXTERNAL_ID_FIELD="username")
    make_user(username="bob").delete()
    assert PushOutbox.objects.get(external_id="bob").action == "delete"
    make_user(username="bob", first_name="New")
    outbox = PushOutbox.objects.get(external_id="bob")
    assert (outbox.action, outbox.delete_first) == ("upsert", True)
    user = get_user_model().objects.get(username="bob")
    user.last_name = "Bobson"
    user.save()
    assert PushOutbox.objects.get(external_id="bob").delete_first  # kept by later saves


def test_user_filter_skips_users_and_drops_their_waiting_upsert(polar_conf):
    polar_conf(USER_FILTER="tests.test_push.active_only")
    make_user(is_active=False)
    assert not PushOutbox.objects.exists()
    user = make_user()
    assert row(user)
    user.is_active = False
    user.save()
    assert not PushOutbox.objects.exists()


def test_deleting_a_filtered_user_deletes_a_customer_pushed_earlier(polar_conf):
    polar_conf(USER_FILTER="tests.test_push.active_only")
    never = make_user(is_active=False)
    pushed = make_user(is_active=False)
    PushedPayload.objects.create(external_id=str(pushed.pk), payload={"email": "x@example.com"})
    never_pk, pushed_pk = str(never.pk), str(pushed.pk)
    never.delete()
    pushed.delete()
    assert list(PushOutbox.objects.values_list("external_id", "action")) == [(pushed_pk, "delete")]
    assert not PushOutbox.objects.filter(external_id=never_pk).exists()


def test_push_disabled_records_nothing(polar_conf):
    polar_conf(PUSH_ENABLED=False)
    make_user().delete()
    assert not PushOutbox.objects.exists()
    result = push.outbox_drain()
    assert "PUSH_ENABLED" in result.stopped


def test_delete_cascade_can_be_switched_off(polar_conf):
    polar_conf(DELETE_CUSTOMER_ON_USER_DELETE=False)
    user = make_user()
    PushOutbox.objects.all().delete()
    user.delete()
    assert not PushOutbox.objects.exists()


def test_a_custom_payload_callable_is_used(polar_conf):
    polar_conf(USER_PAYLOAD="tests.test_push.with_company", PUSH_STAFF=True)
    user = make_user(is_staff=True)
    assert row(user).payload["metadata"] == {"staff": True}


def test_a_payload_callable_returning_no_dict_is_a_clear_error(polar_conf):
    polar_conf(USER_PAYLOAD="tests.test_push.not_a_dict")
    with pytest.raises(TypeError, match=r"USER_PAYLOAD.*must return a dict"):
        make_user()


def test_raw_saves_from_fixtures_are_not_changes():
    user = get_user_model()(username="loaded", email="l@example.com")
    from polar_sync.receivers import user_saved

    user.save_base(raw=True)
    assert not PushOutbox.objects.exists()
    user_saved(sender=type(user), instance=user, raw=False)
    assert PushOutbox.objects.filter(external_id=str(user.pk)).exists()


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("USER_PAYLOAD", "polar_sync.mapping.no_such_function", "cannot be imported"),
        ("USER_FILTER", "no_such_module.f", "cannot be imported"),
        ("USER_FILTER", "tests.test_push.NOT_CALLABLE", "not a callable"),
    ],
)
def test_a_bad_payload_or_filter_path_fails_the_checks(setting, value, problem):
    conf = {"ACCESS_TOKEN": "polar_oat_x", "SERVER": "sandbox", setting: value}
    with override_settings(POLAR_SYNC=conf), pytest.raises(SystemCheckError) as info:
        call_command("check")
    message = str(info.value)
    assert "polar_sync.E007" in message and setting in message and problem in message


def test_good_payload_and_filter_paths_pass_the_checks(capsys):
    conf = {
        "ACCESS_TOKEN": "polar_oat_x",
        "SERVER": "sandbox",
        "USER_PAYLOAD": "tests.test_push.with_company",
        "USER_FILTER": "tests.test_push.active_only",
    }
    with override_settings(POLAR_SYNC=conf):
        call_command("check")
    assert "E007" not in capsys.readouterr().out
