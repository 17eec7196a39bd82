"""What a user save costs polar_sync, in queries, and that it pushes what the row holds.

The budget: loading a user, nothing (no receiver); a ``save(update_fields=...)``
naming no watched field, no query; any other save, at most two (one read, one
write). Counts below include the user's own INSERT or UPDATE.

Like test_push.py these run inside a test transaction, so rows stay in the outbox.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import update_last_login
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction
from django.db.models.signals import post_init, pre_save

from polar_sync.conf import polar_settings
from polar_sync.models import PushedPayload, PushOutbox
from polar_sync.services import push
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


@pytest.fixture
def no_drain(monkeypatch):
    """Commits without draining: the rows stay for the test to look at."""
    monkeypatch.setattr("polar_sync.services.push.enqueue.outbox_enqueue", lambda **kw: None)


def test_loading_users_runs_no_polar_sync_code():
    model = get_user_model()
    assert not post_init.has_listeners(model)
    assert not pre_save.has_listeners(model)


def test_the_default_payload_watches_email_and_names_and_the_external_id(polar_conf):
    # And the staff flags: becoming staff drops a waiting push (PUSH_STAFF False).
    watched = push.user_fields_watched(conf=polar_settings(), model=get_user_model())
    assert watched == ("email", "first_name", "last_name", "id", "is_staff", "is_superuser")
    polar_conf(PUSH_STAFF=True)
    watched = push.user_fields_watched(conf=polar_settings(), model=get_user_model())
    assert watched == ("email", "first_name", "last_name", "id")


def test_a_login_costs_no_query(django_assert_num_queries):
    user = make_user()
    with django_assert_num_queries(1):  # the user's UPDATE of last_login
        update_last_login(None, user)
    loaded = fresh(user)
    with django_assert_num_queries(1):
        loaded.save(update_fields=["last_login", "is_active"])


def test_a_new_user_costs_a_read_and_a_write(django_assert_num_queries):
    with django_assert_num_queries(3):  # the user's INSERT, the read, the outbox upsert
        user = make_user()
    assert PushOutbox.objects.get().payload["email"] == user.email


def test_a_full_save_changing_no_watched_field_reads_once_and_writes_nothing(
    django_assert_num_queries,
):
    user = pushed_user()
    user.is_active = False
    with django_assert_num_queries(2):  # the user's UPDATE, the comparison's read
        user.save()
    assert not PushOutbox.objects.exists()


def test_a_changed_watched_field_costs_a_read_and_a_write(django_assert_num_queries):
    user = pushed_user()
    user.first_name = "Grace"
    with django_assert_num_queries(3):  # the user's UPDATE, the read, the outbox upsert
        user.save()
    assert PushOutbox.objects.get().payload["name"].startswith("Grace ")


def test_update_fields_naming_a_watched_field_is_compared(django_assert_num_queries):
    user = pushed_user()
    user.email = "new@example.com"
    with django_assert_num_queries(3):  # the UPDATE, the read (with the names), the upsert
        user.save(update_fields=["email"])
    assert PushOutbox.objects.get().payload["email"] == "new@example.com"


def test_an_unsaved_change_outside_update_fields_is_not_pushed(django_assert_num_queries):
    user = pushed_user()
    user.email = "draft@example.com"  # not saved: the database keeps the old email
    with django_assert_num_queries(1):
        user.save(update_fields=["is_active"])
    assert not PushOutbox.objects.exists()


def test_an_update_fields_save_pushes_what_the_row_holds_not_unsaved_values(
    django_assert_num_queries,
):
    user = pushed_user()
    email = user.email
    user.email = "typed-but-not-saved@example.com"
    user.first_name = "Grace"
    # The UPDATE, one read of the row (the watched fields left out) and the outbox, the upsert.
    with django_assert_num_queries(3):
        user.save(update_fields=["first_name"])
    assert PushOutbox.objects.get().payload == {"email": email, "name": f"Grace {user.last_name}"}
    user.last_name = "Hopper"
    user.save(update_fields=["last_name"])
    assert PushOutbox.objects.get().payload == {"email": email, "name": "Grace Hopper"}
    user.save(update_fields=["email"])  # now it is saved: now it is pushed
    assert PushOutbox.objects.get().payload["email"] == "typed-but-not-saved@example.com"


def test_an_update_fields_save_with_unknown_watched_fields_reads_the_row(polar_conf):
    polar_conf(USER_FILTER=f"{__name__}.active_only")  # a filter: the watched fields are unknown
    user = pushed_user()
    user.is_active = False  # not saved below: the row still says active
    user.first_name = "Grace"
    user.save(update_fields=["first_name"])
    assert PushOutbox.objects.get().payload["name"].startswith("Grace ")


def test_a_deferred_watched_field_is_read_with_the_comparison(django_assert_num_queries):
    user = pushed_user()
    partial = get_user_model().objects.only("pk", "first_name").get(pk=user.pk)
    partial.first_name = user.first_name
    with django_assert_num_queries(2):  # the UPDATE, one read of the row and the outbox
        partial.save(update_fields=["first_name"])
    assert not PushOutbox.objects.exists()  # equal to what was pushed


def test_a_stale_instance_saved_over_a_newer_change_pushes_what_it_wrote(no_drain):
    """A full save writes every field: the older email is back in the row, so it must
    go back to Polar too, although this instance never changed it."""
    user = pushed_user()
    stale = fresh(user)
    user.email = "newer@example.com"
    user.save()
    PushedPayload.objects.filter(pk=str(user.pk)).update(payload=push.user_payload_build(user=user))
    PushOutbox.objects.all().delete()  # as if the drain had pushed it
    stale.is_active = False
    stale.save()
    assert PushOutbox.objects.get().payload["email"] == stale.email != user.email


def test_a_value_set_back_after_refresh_from_db_is_pushed():
    user = pushed_user()
    original = user.email
    other = fresh(user)
    other.email = "changed@example.com"
    other.save()
    user.refresh_from_db()
    user.email = original
    user.save()
    assert PushOutbox.objects.get().payload["email"] == original


def test_a_save_undone_by_a_rollback_pushes_nothing_and_counts_when_saved_again(
    django_capture_on_commit_callbacks,
):
    user = pushed_user()
    user.first_name = "Grace"
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            user.save()
            raise RuntimeError("rolled back")
    assert callbacks == [] and not PushOutbox.objects.exists()
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
        user.first_name = "Hopper"
        user.save()  # never stored since the savepoint rolled back
    assert PushOutbox.objects.get().payload["name"].startswith("Hopper ")


def test_a_user_built_in_code_is_compared_with_the_database():
    user = pushed_user()
    blind = get_user_model()(
        pk=user.pk,
        username=user.username,
        password=user.password,
        email="other@example.com",
        first_name=user.first_name,
        last_name=user.last_name,
    )
    blind.save()  # an UPDATE of an existing row, without having loaded it
    assert PushOutbox.objects.get().payload["email"] == "other@example.com"


def test_a_filter_excluding_the_user_drops_the_waiting_upsert_in_two_queries(
    polar_conf, django_assert_num_queries
):
    polar_conf(USER_FILTER=f"{__name__}.active_only")
    user = make_user()
    assert PushOutbox.objects.exists()
    user.is_active = False
    with django_assert_num_queries(3):  # the UPDATE; the read; the waiting upsert deleted
        user.save()
    assert not PushOutbox.objects.exists()


def test_declared_fields_cover_a_filter(polar_conf, django_assert_num_queries):
    polar_conf(
        USER_FILTER=f"{__name__}.active_only",
        USER_FIELDS=["email", "first_name", "last_name", "is_active"],
    )
    user = pushed_user()
    user.is_active = False  # a watched field: the filter is asked
    user.save(update_fields=["is_active"])
    user.is_active = True
    user.first_name = "Grace"
    user.save()
    assert PushOutbox.objects.exists()
    with django_assert_num_queries(1):  # not watched: nothing to do
        user.save(update_fields=["last_login"])


def test_an_empty_field_list_compares_every_save_with_the_database(
    polar_conf, django_assert_num_queries
):
    polar_conf(USER_FIELDS=[])
    user = pushed_user()
    with django_assert_num_queries(2):  # the UPDATE, the comparison's read
        user.save(update_fields=["last_login"])
    assert not PushOutbox.objects.exists()


def test_a_failed_row_keeps_failing_for_its_payload_and_restarts_for_a_new_one():
    user = make_user()
    PushOutbox.objects.update(status=PushOutbox.Status.FAILED, last_error="refused")
    user.save()
    assert PushOutbox.objects.get().status == PushOutbox.Status.FAILED
    user.first_name = "B"
    user.save()
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
