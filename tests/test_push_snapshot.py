"""What a user save costs: no query when no watched field changed, one when some did.

Like test_push.py these run inside a test transaction, so rows stay in the outbox.
A user is re-read (``fresh``) to get an instance whose loaded values are known.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import update_last_login
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection, transaction

from polar_sync.conf import polar_settings
from polar_sync.models import PushedPayload, PushOutbox
from polar_sync.services import push
from polar_sync.services.user_snapshot import SEEN, user_fields_watched
from tests.push_support import make_user

pytestmark = pytest.mark.django_db


def active_only(user) -> bool:
    return user.is_active


def fresh(user):
    return get_user_model().objects.get(pk=user.pk)


def pushed_user(**fields):
    """A user whose payload Polar holds (as last pushed), with no row waiting."""
    user = make_user(**fields)
    PushOutbox.objects.all().delete()
    PushedPayload.objects.create(
        external_id=str(user.pk), payload=push.user_payload_build(user=user)
    )
    return fresh(user)


def test_the_default_payload_watches_email_and_names_and_the_external_id():
    watched = user_fields_watched(conf=polar_settings(), model=get_user_model())
    assert watched == ("email", "first_name", "last_name", "id")


def test_a_full_save_changing_no_watched_field_reads_once_and_writes_nothing(
    django_assert_num_queries,
):
    user = pushed_user()
    user.is_staff = True
    user.last_name = user.last_name  # assigned, not changed
    with django_assert_num_queries(2):  # the user's UPDATE, the comparison's read
        user.save()
    assert not PushOutbox.objects.exists()


def test_a_stale_instance_saved_over_a_newer_change_pushes_what_it_wrote(monkeypatch):
    """A full save writes every field: the older email is back in the row, so it must
    go back to Polar too, although this instance never changed it."""
    monkeypatch.setattr(push, "outbox_enqueue", lambda **kwargs: None)
    user = pushed_user()
    stale = fresh(user)
    user.email = "newer@example.com"
    user.save()
    PushedPayload.objects.filter(pk=str(user.pk)).update(payload=push.user_payload_build(user=user))
    PushOutbox.objects.all().delete()  # as if the drain had pushed it
    stale.is_staff = True
    stale.save()
    assert PushOutbox.objects.get().payload["email"] == stale.email != user.email


def test_a_value_set_back_after_refresh_from_db_is_pushed():
    user = pushed_user()
    original = user.email
    other = fresh(user)
    other.email = "changed@example.com"
    other.save()
    user.refresh_from_db()  # holds the changed email; it was loaded with the original
    user.email = original
    user.save()
    assert PushOutbox.objects.get().payload["email"] == original


def test_a_new_user_costs_one_query(django_assert_num_queries):
    with django_assert_num_queries(2):  # the user's INSERT, the outbox upsert
        user = make_user()
    assert PushOutbox.objects.get().payload["email"] == user.email


def test_a_login_costs_no_query_even_without_a_loaded_snapshot(django_assert_num_queries):
    user = make_user()  # built in code: nothing known about it, yet update_fields tells
    with django_assert_num_queries(1):
        update_last_login(None, user)


def test_a_changed_watched_field_costs_one_query_and_writes_the_row(django_assert_num_queries):
    user = pushed_user()
    user.first_name = "Grace"
    with django_assert_num_queries(2):  # the user's UPDATE, the outbox upsert
        user.save()
    assert PushOutbox.objects.get().payload["name"].startswith("Grace ")


def test_update_fields_naming_a_watched_field_is_compared(django_assert_num_queries):
    user = pushed_user()
    user.email = "new@example.com"
    with django_assert_num_queries(2):
        user.save(update_fields=["email"])
    assert PushOutbox.objects.get().payload["email"] == "new@example.com"


def test_an_unsaved_change_outside_update_fields_is_not_pushed():
    user = pushed_user()
    user.email = "draft@example.com"  # not saved: the database keeps the old email
    user.save(update_fields=["is_staff"])
    assert not PushOutbox.objects.exists()


def test_a_save_undone_by_a_rollback_is_pushed_when_saved_again(
    django_capture_on_commit_callbacks,
):
    user = pushed_user()
    user.first_name = "Grace"
    with pytest.raises(RuntimeError), transaction.atomic():
        user.save()
        raise RuntimeError("rolled back")
    assert not PushOutbox.objects.exists()
    user.save()  # the database never held "Grace": this save is a change
    assert PushOutbox.objects.get().payload["name"].startswith("Grace ")


def test_a_change_undone_in_the_same_transaction_is_recorded_too():
    user = pushed_user()
    name = user.first_name
    with transaction.atomic():
        user.first_name = "Grace"
        user.save()
        user.first_name = name  # back to what Polar has, before the commit
        user.save()
    assert PushOutbox.objects.get().payload["name"].startswith(f"{name} ")


def test_a_rolled_back_savepoint_falls_back_to_the_save_before_it():
    user = pushed_user()
    with transaction.atomic():
        user.first_name = "Grace"
        user.save()  # stands
        with pytest.raises(RuntimeError), transaction.atomic():
            user.first_name = "Hopper"
            user.save()
            raise RuntimeError("rolled back to the savepoint")
        assert PushOutbox.objects.get().payload["name"].startswith("Grace ")
        user.first_name = "Grace"
        user.save()  # the database holds Grace: nothing to do
        assert PushOutbox.objects.get().payload["name"].startswith("Grace ")
        user.first_name = "Hopper"
        user.save()  # never stored since the savepoint rolled back
    assert PushOutbox.objects.get().payload["name"].startswith("Hopper ")


def test_a_committed_save_becomes_what_the_next_save_compares_with(
    django_capture_on_commit_callbacks, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(push, "outbox_enqueue", lambda **kwargs: None)  # no drain here
    user = pushed_user()
    loaded = user.first_name
    user.first_name = "Grace"
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    PushedPayload.objects.filter(pk=str(user.pk)).update(payload=push.user_payload_build(user=user))
    PushOutbox.objects.all().delete()  # as the drain would after pushing "Grace"
    user.first_name = loaded  # the value it was loaded with, not the one committed
    with django_assert_num_queries(2):  # known changed: the UPDATE and the upsert
        user.save()
    assert PushOutbox.objects.get().payload["name"].startswith(f"{loaded} ")


def test_a_user_built_in_code_is_compared_with_the_database(django_assert_num_queries):
    user = pushed_user()
    blind = get_user_model()(
        pk=user.pk,
        username=user.username,
        password=user.password,
        email="other@example.com",
        first_name=user.first_name,
        last_name=user.last_name,
    )
    assert blind._state.adding
    blind.save()  # an UPDATE of an existing row, without having loaded it
    assert PushOutbox.objects.get().payload["email"] == "other@example.com"


def test_a_deferred_watched_field_falls_back_to_the_database(django_assert_num_queries):
    user = pushed_user()
    partial = get_user_model().objects.only("pk", "first_name").get(pk=user.pk)
    partial.first_name = user.first_name
    # The UPDATE, one read of the fields it left out (email, last_name), the comparison.
    with django_assert_num_queries(3):
        partial.save(update_fields=["first_name"])
    assert not PushOutbox.objects.exists()  # equal to what was pushed


def test_a_filter_without_declared_fields_compares_every_save(
    polar_conf, django_assert_num_queries
):
    polar_conf(USER_FILTER=f"{__name__}.active_only")
    user = pushed_user()
    assert SEEN not in user.__dict__
    user.is_active = False
    with django_assert_num_queries(2):  # the UPDATE; the filter excludes: any upsert waiting?
        user.save()
    assert not PushOutbox.objects.exists()


def test_declared_fields_cover_a_filter(polar_conf, django_assert_num_queries):
    polar_conf(
        USER_FILTER=f"{__name__}.active_only",
        USER_FIELDS=["email", "first_name", "last_name", "is_active"],
    )
    user = pushed_user()
    user.first_name = "Grace"
    user.save()
    assert PushOutbox.objects.exists()
    user = fresh(user)
    user.is_active = False  # a watched field: the filter is asked, the upsert dropped
    user.save()
    assert not PushOutbox.objects.exists()
    user = fresh(user)
    user.is_staff = True  # not watched: compared with the database, nothing written
    with django_assert_num_queries(2):
        user.save()
    assert not PushOutbox.objects.exists()


def test_an_empty_field_list_always_compares_with_the_database(
    polar_conf, django_assert_num_queries
):
    polar_conf(USER_FIELDS=[])
    user = pushed_user()
    with django_assert_num_queries(2):  # the UPDATE, the comparison's SELECT
        user.save()
    assert not PushOutbox.objects.exists()


def test_no_snapshot_is_taken_when_pushing_is_off(polar_conf):
    user = make_user()
    polar_conf(PUSH_ENABLED=False)
    assert SEEN not in fresh(user).__dict__


def test_loading_users_never_fails_on_bad_settings(settings):
    user = make_user()
    settings.POLAR_SYNC = {"NOT_A_SETTING": 1}
    assert fresh(user).pk == user.pk


def test_the_outbox_upsert_keeps_a_waiting_identical_row_and_replaces_a_delete():
    user = make_user()
    external_id = str(user.pk)
    payload = push.user_payload_build(user=user)
    revision = PushOutbox.objects.get().revision
    assert PushOutbox.objects.change_record(
        external_id=external_id, user_id=external_id, payload=payload
    ) is (False if connection.vendor in {"sqlite", "postgresql"} else None)
    assert PushOutbox.objects.get().revision == revision
    PushOutbox.objects.update(action=PushOutbox.Action.DELETE, payload={})
    assert PushOutbox.objects.change_record(
        external_id=external_id, user_id=external_id, payload=payload
    )
    row = PushOutbox.objects.get()
    assert (row.action, row.payload, row.delete_first) == ("upsert", payload, True)
    assert row.revision != revision


def test_a_failed_row_keeps_failing_for_its_payload_and_restarts_for_a_new_one():
    if connection.vendor not in {"sqlite", "postgresql"}:
        pytest.skip("the one-query upsert is written for SQLite and PostgreSQL")
    user = make_user()
    external_id, payload = str(user.pk), push.user_payload_build(user=user)
    PushOutbox.objects.update(status=PushOutbox.Status.FAILED, last_error="refused")
    record = PushOutbox.objects.change_record
    assert not record(external_id=external_id, user_id=external_id, payload=payload)
    assert PushOutbox.objects.get().status == PushOutbox.Status.FAILED
    assert record(external_id=external_id, user_id=external_id, payload={**payload, "name": "B"})
    row = PushOutbox.objects.get()
    assert (row.status, row.last_error, row.attempts) == ("pending", "", 0)


@pytest.mark.parametrize(
    ("value", "problem"),
    [(["email", "no_such_field"], "no_such_field"), ("email", "expected a list of field names")],
)
def test_bad_user_fields_fail_the_checks(polar_conf, value, problem):
    polar_conf(USER_FIELDS=value)
    with pytest.raises(SystemCheckError, match=problem):
        call_command("check")


def test_without_on_conflict_a_change_is_compared_then_written(monkeypatch):
    from polar_sync.models import outbox

    monkeypatch.setattr(outbox, "ON_CONFLICT_VENDORS", frozenset())
    user = pushed_user()
    user.first_name = "Grace"
    user.save()
    assert PushOutbox.objects.get().payload["name"].startswith("Grace ")
    user.first_name = "Ada"
    user.save()
    assert PushOutbox.objects.get().payload["name"].startswith("Ada ")


class _CountingList(list):
    """A list that counts how many of its items are looked at."""

    looked_at = 0

    def __getitem__(self, index):
        _CountingList.looked_at += 1
        return super().__getitem__(index)

    def __iter__(self):
        for item in super().__iter__():
            _CountingList.looked_at += 1
            yield item

    def __reversed__(self):
        for item in super().__reversed__():
            _CountingList.looked_at += 1
            yield item


def test_saving_many_users_twice_in_one_transaction_stays_linear(monkeypatch):
    """The second save of each user finds its first save's callback directly, instead
    of searching every callback the transaction registered since (quadratic)."""
    monkeypatch.setattr(push, "outbox_enqueue", lambda **kwargs: None)
    users = [fresh(make_user()) for _ in range(60)]
    with transaction.atomic():
        for user in users:
            user.first_name = "First"
            user.save()
        connection.run_on_commit = _CountingList(connection.run_on_commit)
        _CountingList.looked_at = 0
        for user in users:
            user.first_name = "Second"
            user.save()
        looked_at = _CountingList.looked_at
    assert looked_at <= 2 * len(users)
    assert {row.payload["name"].split()[0] for row in PushOutbox.objects.all()} == {"Second"}


def test_an_update_fields_save_pushes_what_the_row_holds_not_unsaved_values(
    django_assert_num_queries,
):
    user = pushed_user()
    email = user.email
    user.email = "typed-but-not-saved@example.com"
    user.first_name = "Grace"
    # The UPDATE, one read of the watched fields left out that differ, the upsert.
    with django_assert_num_queries(3):
        user.save(update_fields=["first_name"])
    assert PushOutbox.objects.get().payload == {"email": email, "name": f"Grace {user.last_name}"}
    user.last_name = "Hopper"  # the write above recorded the row's email, not the typed one
    user.save(update_fields=["last_name"])
    assert PushOutbox.objects.get().payload == {"email": email, "name": "Grace Hopper"}
    user.save(update_fields=["email"])  # now it is saved: now it is pushed
    assert PushOutbox.objects.get().payload["email"] == "typed-but-not-saved@example.com"


def test_an_update_fields_save_with_unknown_watched_fields_reads_what_it_left_out(polar_conf):
    polar_conf(USER_FILTER=f"{__name__}.active_only")  # a filter: the watched fields are unknown
    user = pushed_user()
    user.is_active = False  # not saved below: the row still says active
    user.first_name = "Grace"
    user.save(update_fields=["first_name"])
    assert PushOutbox.objects.get().payload["name"].startswith("Grace ")
