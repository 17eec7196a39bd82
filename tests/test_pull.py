"""The customer pull against the local Polar server (real HTTP); edge cases with ``responses``."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from polar_sync.client import PolarClient
from polar_sync.models import Customer, SyncRun
from polar_sync.services import customers_pull, customers_upsert
from tests.conftest import BASE_URL, load_fixture

pytestmark = pytest.mark.django_db


def before_page(monkeypatch: pytest.MonkeyPatch, page: int, action) -> None:
    """Run ``action`` once, just before the client asks for ``page`` (whatever thread asks)."""
    original = PolarClient.list
    done = []

    def list_with_action(self, **kwargs):
        if kwargs.get("page") == page and not done:
            done.append(True)
            action()
        return original(self, **kwargs)

    monkeypatch.setattr(PolarClient, "list", list_with_action)


def row_versions() -> dict:
    """Each customer row's synced_at (rewritten by any write of the row) and, on
    PostgreSQL, its tuple's xmin and xmax (changed by an update or a lock)."""
    if connection.vendor != "postgresql":
        return dict(Customer.objects.values_list("id", "synced_at"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, synced_at, xmin::text, xmax::text FROM polar_sync_customer")
        return {row[0]: row[1:] for row in cursor.fetchall()}


def test_full_pull_mirrors_every_customer_then_an_unchanged_pull_writes_nothing(live_polar_any):
    """End to end at each API_VERSION, against a server of that version (None: 2025-10)."""
    live_polar = live_polar_any
    live_polar.store.seed(250, seed=3)
    run = customers_pull()
    assert (run.status, run.created, run.updated, run.pages) == ("succeeded", 250, 0, 3)
    assert run.total_count == 250 and run.requests == 3
    assert run.api_version == live_polar.api_version
    for remote in live_polar.store.customers()[:40]:
        local = Customer.objects.get(pk=remote["id"])
        assert (local.email, local.external_id, local.name) == (
            remote["email"],
            remote["external_id"],
            remote["name"],
        )
        assert (local.type, local.billing_name, local.locale) == (
            remote.get("type"),
            remote.get("billing_name"),
            remote.get("locale"),
        )
        payment_method = remote.get("default_payment_method_id")
        assert str(local.default_payment_method_id or "") == (payment_method or "")
        assert (local.first_user_event_at is None) == (remote.get("first_user_event_at") is None)
        assert local.raw == remote
    types = set(Customer.objects.values_list("type", flat=True))
    assert types == ({None} if live_polar.api_version == "2025-10" else {"individual", "team"})
    if live_polar.api_version != "2025-10":
        assert Customer.objects.filter(type="team", email__isnull=True).exists()
    before = row_versions()
    again = customers_pull()
    assert (again.created, again.updated, again.unchanged) == (0, 0, 250)
    assert row_versions() == before


@pytest.mark.parametrize("api_version", ["2026-04", "2026-10", "2027-01"])
def test_a_changed_2026_field_updates_the_row(live_polar, polar_conf, api_version):
    polar_conf(API_VERSION=api_version)
    target = live_polar.store.add_customer(email="a@example.com", locale="en")
    customers_pull()
    live_polar.store.update_customer(target["id"], locale="fr", billing_name="A SARL")
    run = customers_pull()
    assert (run.created, run.updated, run.api_version) == (0, 1, api_version)
    row = Customer.objects.get(pk=target["id"])
    assert (row.locale, row.billing_name, row.type) == ("fr", "A SARL", "individual")


def _payloads(n: int) -> list[dict]:
    base = load_fixture("customer")
    return [
        dict(base, id=str(uuid.uuid4()), email=f"c{i}@example.com", external_id=f"x{i}")
        for i in range(n)
    ]


def test_a_page_is_upserted_in_a_constant_number_of_queries():
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"u{i}") for i in range(100)
    )
    counts = {}
    for n in (10, 40, 100):
        payloads = _payloads(n)
        for payload, user in zip(payloads, users, strict=False):
            payload["external_id"] = str(user.pk)
        with CaptureQueriesContext(connection) as created:
            assert customers_upsert(payloads=payloads).created == n
        for p in payloads:
            p["name"] = "changed"
        with CaptureQueriesContext(connection) as updated:
            assert customers_upsert(payloads=payloads).updated == n
        Customer.objects.all().delete()
        counts[n] = (len(created), len(updated))
    # Not one query per customer. (SQLite needs more statements for 100 rows: Django
    # caps a statement at 999 parameters there, so the 2026 columns cost a third UPDATE.)
    assert counts[10] == counts[40]
    limit = 5 if connection.vendor == "sqlite" else 4
    assert max(counts[100]) <= limit + 2  # + the test transaction's SAVEPOINT/RELEASE
    assert Customer.objects.count() == 0


def test_users_are_linked_by_external_id(live_polar):
    user = get_user_model().objects.create_user("grace", "grace@example.com", "pw")
    live_polar.store.add_customer(email="grace@example.com", external_id=str(user.pk))
    live_polar.store.add_customer(email="guest@example.com")
    customers_pull()
    assert Customer.objects.get(email="grace@example.com").user == user
    assert Customer.objects.get(email="guest@example.com").user is None


def test_an_interrupted_pull_deletes_nothing_and_the_next_pull_completes(live_polar, monkeypatch):
    live_polar.store.seed(300, seed=5)
    local_only = Customer.objects.create(**{**_local_fields(), "email": "only-here@example.com"})

    before_page(monkeypatch, 2, lambda: setattr(live_polar.faults, "fail_rate", 1.0))
    run = customers_pull()
    assert run.status == "failed" and run.pages == 1 and run.deleted == 0
    assert "500" in run.error or "502" in run.error or "503" in run.error
    assert Customer.objects.count() == 101
    assert Customer.objects.get(pk=local_only.pk).deleted_at is None

    live_polar.faults.fail_rate = 0.0
    run = customers_pull()
    assert run.status == "succeeded"
    assert Customer.objects.count() == 301  # nothing duplicated
    assert Customer.objects.active().count() == 300
    assert Customer.objects.get(pk=local_only.pk).deleted_at is not None


def _local_fields() -> dict:
    from django.utils import timezone

    from polar_sync.mapping import customer_fields

    fields = customer_fields(dict(load_fixture("customer"), id=str(uuid.uuid4()), external_id=None))
    return {**fields, "synced_at": timezone.now()}


def test_a_customer_deleted_on_polar_is_marked_deleted_and_kept(live_polar):
    live_polar.store.seed(40, seed=2)
    customers_pull()
    victim = next(c for c in live_polar.store.customers() if c["external_id"])
    live_polar.store.delete_customer(victim["id"])
    run = customers_pull()
    assert run.deleted == 1
    row = Customer.objects.get(pk=victim["id"])
    assert row.deleted_at is not None
    assert row.external_id is None  # freed, as Polar does
    assert row.raw["external_id"] == victim["external_id"]  # but not forgotten


def test_a_deletion_seen_by_a_pull_is_pushed_again_by_the_next_reconcile(
    live_polar, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import update_last_login

    from polar_sync.models import PushedPayload, PushOutbox
    from polar_sync.services import users_reconcile

    with django_capture_on_commit_callbacks(execute=True):
        user = get_user_model().objects.create_user("lin", "lin@example.com", "pw")
    assert live_polar.store.get_customer_by_external_id(str(user.pk))  # pushed on creation
    assert PushedPayload.objects.filter(external_id=str(user.pk)).exists()
    customers_pull()
    remote = live_polar.store.get_customer_by_external_id(str(user.pk))
    live_polar.store.delete_customer(remote["id"])  # deleted in Polar's dashboard
    customers_pull()
    assert not PushedPayload.objects.filter(external_id=str(user.pk)).exists()
    with django_capture_on_commit_callbacks(execute=True):
        update_last_login(None, get_user_model().objects.get(pk=user.pk))  # costs nothing
    assert live_polar.store.get_customer_by_external_id(str(user.pk)) is None
    with django_capture_on_commit_callbacks(execute=True):
        result = users_reconcile()
    assert (result.checked, result.queued) == (1, 1)
    assert not PushOutbox.objects.exists()  # drained in-process (no broker)
    assert live_polar.store.get_customer_by_external_id(str(user.pk))["email"] == "lin@example.com"


def test_a_row_skipped_by_pagination_is_confirmed_not_deleted(live_polar, monkeypatch):
    """Deleting an early customer mid-walk shifts the pages: the walk skips a live one."""
    live_polar.store.seed(250, seed=4)
    customers_pull()
    ordered = sorted(live_polar.store.customers(), key=lambda c: c["created_at"])
    first, skipped = ordered[0], ordered[100]

    before_page(monkeypatch, 2, lambda: live_polar.store.delete_customer(first["id"]))
    live_polar.store.reset_requests()
    run = customers_pull()
    # The walk missed ``skipped``; a GET showed it alive, so it is not marked deleted.
    assert run.status == "succeeded" and run.deleted == 0
    assert Customer.objects.get(pk=skipped["id"]).deleted_at is None
    confirmed = [r.path for r in live_polar.store.requests if r.method == "GET"]
    assert f"/v1/customers/{skipped['id']}" in confirmed
    # ``first`` was seen before it was deleted: the next complete walk catches it.
    assert customers_pull().deleted == 1
    assert Customer.objects.get(pk=first["id"]).deleted_at is not None


def test_an_external_id_freed_by_a_deletion_can_be_reused(live_polar):
    old = live_polar.store.add_customer(email="old@example.com", external_id="u-1")
    customers_pull()
    live_polar.store.delete_customer(old["id"])
    new = live_polar.store.add_customer(email="new@example.com", external_id="u-1")
    run = customers_pull()
    assert run.status == "succeeded", run.error
    assert Customer.objects.get(external_id="u-1").pk == uuid.UUID(new["id"])
    assert Customer.objects.get(pk=old["id"]).deleted_at is not None


def test_a_malformed_customer_is_reported_and_the_rest_of_the_page_kept(polar_http):
    good = _payloads(3)
    bad = dict(good[1], created_at="not a date")
    polar_http.get(
        f"{BASE_URL}/v1/customers/",
        json={"items": [good[0], bad, good[2]], "pagination": {"total_count": 3, "max_page": 1}},
    )
    from django.test import override_settings

    with override_settings(
        POLAR_SYNC={"ACCESS_TOKEN": "t", "SERVER": BASE_URL, "RATE_LIMIT": 10_000}
    ):
        run = customers_pull()
    assert run.status == "partial"
    assert (run.created, run.failed) == (2, 1)
    assert bad["id"] in run.error and "created_at" in run.error
    assert set(Customer.objects.values_list("email", flat=True)) == {
        good[0]["email"],
        good[2]["email"],
    }


def test_dry_run_writes_nothing(live_polar):
    live_polar.store.seed(120, seed=1)
    run = customers_pull(dry_run=True)
    assert run.status == "succeeded" and run.pages == 2
    assert Customer.objects.count() == 0


def in_threads(target, count: int) -> tuple[list, list[Exception]]:
    """Run ``target`` in ``count`` threads at once; returns (results, errors)."""
    results, errors = [], []

    def run() -> None:
        try:
            results.append(target())
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_pulls_make_no_duplicates_and_no_errors(live_polar):
    live_polar.store.seed(400, seed=6)
    results, errors = in_threads(customers_pull, 2)
    assert errors == []
    finished = [r for r in results if r is not None]
    assert finished and all(r.status == "succeeded" for r in finished)
    assert Customer.objects.count() == 400
    assert SyncRun.objects.filter(status="running").count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_the_same_page_do_not_clash():
    payloads = _payloads(100)
    _results, errors = in_threads(lambda: customers_upsert(payloads=payloads), 3)
    assert errors == []
    assert Customer.objects.count() == 100


def test_a_page_that_meets_a_concurrent_insert_is_written_again(monkeypatch):
    """What the race above can raise (the external ID's unique index, which ON CONFLICT
    does not cover) is retried; a conflict that persists is raised."""
    from django.db import IntegrityError

    from polar_sync.services import bulk
    from polar_sync.services import customers as customers_module

    write, failures = bulk.UpsertPlan.write, []

    def racing_write(self, *args, **kwargs):
        if len(failures) < failing:
            failures.append(1)
            raise IntegrityError('duplicate key value violates unique constraint "external_id"')
        return write(self, *args, **kwargs)

    monkeypatch.setattr(bulk.UpsertPlan, "write", racing_write)
    failing = customers_module.WRITE_ATTEMPTS - 1
    result = customers_upsert(payloads=_payloads(3))
    assert (result.created, len(failures)) == (3, failing)
    failures.clear()
    failing = customers_module.WRITE_ATTEMPTS
    with pytest.raises(IntegrityError):
        customers_upsert(payloads=_payloads(2))
    assert Customer.objects.count() == 3


def test_a_second_pull_while_one_runs_exits(live_polar):
    live_polar.store.seed(5)
    from polar_sync.services.runs import sync_run_start

    holder = sync_run_start(kind=SyncRun.Kind.CUSTOMERS)
    assert customers_pull() is None
    assert live_polar.store.requests == []
    holder.status = "succeeded"
    holder.save()
    assert customers_pull().status == "succeeded"


def test_a_stale_lock_is_taken_over(live_polar, settings):
    from datetime import timedelta

    from django.utils import timezone

    from polar_sync.services.runs import sync_run_start

    holder = sync_run_start(kind=SyncRun.Kind.CUSTOMERS)
    SyncRun.objects.filter(pk=holder.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    assert customers_pull().status == "succeeded"
    assert SyncRun.objects.get(pk=holder.pk).status == "abandoned"


def test_a_pull_that_crashes_is_recorded_failed_and_does_not_hold_the_lock(live_polar, monkeypatch):
    from polar_sync.services import customers as customers_module

    live_polar.store.seed(150, seed=8)

    def boom(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(customers_module, "customer_page_write", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        customers_pull()
    crashed = SyncRun.objects.get(kind=SyncRun.Kind.CUSTOMERS)
    assert crashed.status == SyncRun.Status.FAILED
    assert crashed.error == "RuntimeError: disk on fire"
    assert crashed.finished_at is not None

    monkeypatch.undo()
    run = customers_pull()  # not locked out until LOCK_TIMEOUT
    assert run is not None and run.status == "succeeded" and run.created == 150
