"""Resumable pulls: a failed run's checkpoint, continued by the next run (local Polar server)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command

from polar_sync.checks import check_polar_settings
from polar_sync.client import PolarClient
from polar_sync.models import Customer, SyncCheckpoint, SyncCheckpointPage, SyncRun
from polar_sync.services import customers_pull, customers_upsert
from tests.test_pull import before_page

pytestmark = pytest.mark.django_db


def fail_from_page(monkeypatch: pytest.MonkeyPatch, polar, page: int) -> None:
    """Every request fails (500/502/503) from the moment the client asks for ``page``."""
    before_page(monkeypatch, page, lambda: setattr(polar.faults, "fail_rate", 1.0))


def heal(monkeypatch: pytest.MonkeyPatch, polar) -> None:
    monkeypatch.undo()
    polar.faults.fail_rate = 0.0
    polar.store.reset_requests()


def pages_served(polar) -> list[int]:
    return [
        int(r.query["page"][0])
        for r in polar.store.requests
        if r.operation == "customers:list" and r.status == 200
    ]


def gets_served(polar) -> list[str]:
    return [
        r.path.rsplit("/", 1)[-1]
        for r in polar.store.requests
        if r.operation == "customers:get" and r.status in (200, 404)
    ]


def ordered(polar) -> list[dict]:
    """The live customers in the walk's order."""
    return sorted(polar.store.customers(), key=lambda c: c["created_at"])


def test_a_failed_run_leaves_a_checkpoint_and_the_next_run_continues_a_page_back(
    live_polar, monkeypatch
):
    live_polar.store.seed(450, seed=7)
    fail_from_page(monkeypatch, live_polar, 4)
    first = customers_pull()
    assert (first.status, first.pages) == ("failed", 3)
    assert "continues the walk at page 3" in first.error
    checkpoint = SyncCheckpoint.objects.get(kind="customers")
    assert (checkpoint.phase, checkpoint.next_page) == ("walking", 4)
    assert checkpoint.walk_started_at == first.started_at
    assert SyncCheckpointPage.objects.count() == 3

    heal(monkeypatch, live_polar)
    second = customers_pull()
    assert second.status == "succeeded", second.error
    assert pages_served(live_polar) == [3, 4, 5]
    assert (second.resumed_from_page, second.pages) == (3, 3)
    assert (second.created, second.unchanged) == (150, 100)  # page 3 again, unchanged
    assert Customer.objects.active().count() == 450
    assert not SyncCheckpoint.objects.exists() and not SyncCheckpointPage.objects.exists()
    # Complete: the next pull walks from page 1 again.
    live_polar.store.reset_requests()
    third = customers_pull()
    assert third.resumed_from_page is None and pages_served(live_polar) == [1, 2, 3, 4, 5]


def test_what_earlier_runs_saw_counts_for_deletions(live_polar, monkeypatch):
    live_polar.store.seed(450, seed=8)
    customers_pull()
    gone = ordered(live_polar)[10]  # on page 1, which only the first run reads
    live_polar.store.delete_customer(gone["id"])
    fail_from_page(monkeypatch, live_polar, 4)
    assert customers_pull().status == "failed"

    heal(monkeypatch, live_polar)
    run = customers_pull()
    assert run.status == "succeeded" and pages_served(live_polar) == [3, 4, 5]
    # Customers of pages 1-2 were seen by the first run: no GET for them, none deleted;
    # the one missing from every page read is confirmed (one GET) and marked deleted.
    assert gets_served(live_polar) == [gone["id"]]
    assert run.deleted == 1
    assert list(Customer.objects.exclude(deleted_at=None).values_list("id", flat=True)) == [
        uuid.UUID(gone["id"])
    ]


def test_customers_deleted_and_added_between_runs(live_polar, monkeypatch):
    """A deletion before the resumed page shifts the later pages back: stepping back a
    page still reads every live customer, and nothing alive is marked deleted."""
    live_polar.store.seed(450, seed=9)
    customers_pull()
    fail_from_page(monkeypatch, live_polar, 4)
    assert customers_pull().status == "failed"

    heal(monkeypatch, live_polar)
    walk = ordered(live_polar)
    early, late = walk[5:7], walk[420]  # early: seen by the first run; late: not yet
    shifted = walk[300:302]  # first of page 4, now the last two of page 3
    for customer in [*early, late]:
        live_polar.store.delete_customer(customer["id"])
    added = live_polar.store.add_customer(email="new@example.com")
    run = customers_pull()

    assert run.status == "succeeded" and run.resumed_from_page == 3
    assert Customer.objects.get(pk=added["id"]).deleted_at is None  # read at the end
    deleted = set(Customer.objects.exclude(deleted_at=None).values_list("id", flat=True))
    assert deleted == {uuid.UUID(late["id"])}
    # The shifted customers were read on page 3: no GET needed to keep them.
    assert gets_served(live_polar) == [late["id"]]
    assert all(Customer.objects.get(pk=c["id"]).deleted_at is None for c in shifted)
    # The early deletions, seen before they happened, are found by the next walk.
    assert customers_pull().deleted == 2
    assert Customer.objects.active().count() == 448


def test_a_customer_the_mirror_learnt_of_during_the_walk_is_never_a_candidate(
    live_polar, monkeypatch
):
    live_polar.store.seed(250, seed=10)
    fail_from_page(monkeypatch, live_polar, 2)
    assert customers_pull().status == "failed"
    heal(monkeypatch, live_polar)
    # Written by a webhook between the runs, of a customer no page of this walk lists.
    other = live_polar.store.add_customer(email="elsewhere@example.com")
    live_polar.store.delete_customer(other["id"])
    customers_upsert(payloads=[{**other, "deleted_at": None}])

    run = customers_pull()
    assert run.status == "succeeded" and run.deleted == 0
    assert gets_served(live_polar) == []
    assert Customer.objects.get(pk=other["id"]).deleted_at is None


def test_a_failure_while_confirming_keeps_the_walk(live_polar, monkeypatch):
    live_polar.store.seed(250, seed=11)
    customers_pull()
    victims = ordered(live_polar)[:3]
    for customer in victims:
        live_polar.store.delete_customer(customer["id"])
    original = PolarClient.get

    def get_then_fail(self, customer_id):
        if len(gets_served(live_polar)) == 1:
            live_polar.faults.fail_rate = 1.0
        return original(self, customer_id)

    monkeypatch.setattr(PolarClient, "get", get_then_fail)
    live_polar.store.reset_requests()
    first = customers_pull()
    assert first.status == "failed" and first.pages == 3
    assert first.deleted == 1  # confirmed before the failure, kept
    confirmed = str(Customer.objects.exclude(deleted_at=None).get().pk)
    assert "confirms the 2 deletions left" in first.error
    checkpoint = SyncCheckpoint.objects.get()
    assert checkpoint.phase == "confirming" and len(checkpoint.candidates) == 2 * 16

    heal(monkeypatch, live_polar)
    second = customers_pull()
    assert second.status == "succeeded", second.error
    assert (second.resumed_from_page, second.pages, second.deleted) == (0, 0, 2)
    assert pages_served(live_polar) == []  # no walk again: only the two GETs
    assert sorted(gets_served(live_polar)) == sorted(
        c["id"] for c in victims if c["id"] != confirmed
    )
    assert Customer.objects.exclude(deleted_at=None).count() == 3
    assert not SyncCheckpoint.objects.exists()


def test_a_stale_checkpoint_is_dropped_and_the_walk_starts_over(
    live_polar, monkeypatch, polar_conf
):
    live_polar.store.seed(250, seed=12)
    fail_from_page(monkeypatch, live_polar, 3)
    first = customers_pull()
    assert first.status == "failed"
    heal(monkeypatch, live_polar)
    polar_conf(PULL_CHECKPOINT_MAX_AGE=600)
    SyncCheckpoint.objects.update(walk_started_at=first.started_at - timedelta(seconds=601))

    run = customers_pull()
    assert run.status == "succeeded" and run.resumed_from_page is None
    assert pages_served(live_polar) == [1, 2, 3]
    assert not SyncCheckpoint.objects.exists() and not SyncCheckpointPage.objects.exists()


def test_a_checkpoint_of_another_page_size_is_dropped(live_polar, monkeypatch, polar_conf):
    live_polar.store.seed(250, seed=13)
    fail_from_page(monkeypatch, live_polar, 3)
    assert customers_pull().status == "failed"
    heal(monkeypatch, live_polar)
    polar_conf(PAGE_SIZE=50)
    run = customers_pull()
    assert run.status == "succeeded" and run.resumed_from_page is None
    assert pages_served(live_polar) == [1, 2, 3, 4, 5]


def test_a_dry_run_neither_continues_nor_changes_a_checkpoint(live_polar, monkeypatch):
    live_polar.store.seed(450, seed=14)
    fail_from_page(monkeypatch, live_polar, 4)
    assert customers_pull().status == "failed"
    heal(monkeypatch, live_polar)
    before = SyncCheckpoint.objects.values().get()
    pages_before = SyncCheckpointPage.objects.count()

    dry = customers_pull(dry_run=True)
    assert dry.status == "succeeded" and dry.resumed_from_page is None
    assert pages_served(live_polar) == [1, 2, 3, 4, 5]  # a preview of the whole walk
    assert SyncCheckpoint.objects.values().get() == before
    assert SyncCheckpointPage.objects.count() == pages_before
    assert Customer.objects.count() == 300

    live_polar.store.reset_requests()
    assert customers_pull().resumed_from_page == 3
    assert pages_served(live_polar) == [3, 4, 5]


def test_the_command_says_a_run_resumed(live_polar, monkeypatch, capsys):
    live_polar.store.seed(250, seed=15)
    fail_from_page(monkeypatch, live_polar, 3)
    assert customers_pull().status == "failed"
    heal(monkeypatch, live_polar)
    call_command("polar_sync")
    out = capsys.readouterr().out
    assert "customers: resumed the walk at page 2" in out
    assert SyncRun.objects.latest().resumed_display == "resumed the walk at page 2"


def test_a_checkpoint_age_of_zero_is_a_configuration_error(polar_conf):
    polar_conf(PULL_CHECKPOINT_MAX_AGE=0)
    assert [m.id for m in check_polar_settings()] == ["polar_sync.E011"]


def test_the_progress_of_a_resumed_run_counts_the_pages_read_before():
    from io import StringIO

    from django.core.management.base import OutputWrapper

    from polar_sync.management.commands.polar_sync import Progress

    progress = Progress(OutputWrapper(StringIO()), "customers")
    run = SyncRun(
        kind="customers", resumed_from_page=3, pages=3, created=150, unchanged=100, total_count=450
    )
    assert "450/450 customers" in progress.line(run)
    run.resumed_from_page = None
    assert "250/450 customers" in progress.line(run)


def test_a_run_that_crashes_keeps_the_pages_it_wrote(live_polar, monkeypatch):
    from polar_sync.services import customers as module

    live_polar.store.seed(450, seed=16)
    original = module.customer_page_write
    written = []

    def write_then_crash(**kwargs):
        if len(written) == 3:
            raise RuntimeError("the database went away")
        written.append(True)
        return original(**kwargs)

    monkeypatch.setattr(module, "customer_page_write", write_then_crash)
    with pytest.raises(RuntimeError):
        customers_pull()
    assert SyncRun.objects.get().status == "failed"
    assert SyncCheckpoint.objects.get().next_page == 4

    heal(monkeypatch, live_polar)
    run = customers_pull()
    assert run.status == "succeeded" and run.resumed_from_page == 3
    assert pages_served(live_polar) == [3, 4, 5]
