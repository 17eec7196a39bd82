"""The sync log in the admin and the operators' status page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from polar_sync.models import SyncCheckpoint, SyncRun
from tests.factories import make_customer, make_state
from tests.mirror_helpers import make_user

pytestmark = pytest.mark.django_db

STATUS = reverse("admin:polar_sync_syncrun_status")


def run(**fields) -> SyncRun:
    now = timezone.now()
    values = {"kind": "customers", "started_at": now, "heartbeat_at": now, **fields}
    return SyncRun.objects.create(**values)


def row(page: str, row_id: str) -> str:
    return re.search(rf'<tr id="{row_id}">(.*?)</tr>', page, re.S).group(1)


def test_status_page_shows_freshness_and_links_to_the_rows(admin_client):
    finished = timezone.now() - timedelta(minutes=5)
    pull = run(status="succeeded", finished_at=finished, started_at=finished)
    run(kind="states", status="failed", error="boom: Polar answered 503")
    fresh = make_customer()
    make_state(fresh)
    make_customer()  # state never fetched
    response = admin_client.get(STATUS)
    assert response.status_code == 200
    page = response.text
    last = row(page, "status-last-pull")
    assert reverse("admin:polar_sync_syncrun_change", args=[pull.pk]) in last
    assert "5\xa0minutes ago" in last
    assert "2 live, 0 deleted in Polar" in row(page, "status-customers")
    stale = row(page, "status-stale-states")
    assert "<td>1</td>" in stale and "?deleted=no&amp;state=stale" in stale
    assert "?deleted=no&amp;balance=stale" in row(page, "status-stale-balances")
    assert "boom: Polar answered 503" in page  # the latest states run failed


def test_status_page_without_any_pull_yet(admin_client):
    page = admin_client.get(STATUS).text
    assert "never" in row(page, "status-last-pull")


def test_status_page_needs_a_view_permission():
    web = Client()
    web.force_login(make_user(staff=True, perms=("view_customer",)))
    assert web.get(STATUS).status_code == 403
    web.force_login(make_user(staff=True, perms=("view_syncrun",)))
    assert web.get(STATUS).status_code == 200


def test_sync_runs_are_listed_read_only(admin_client):
    failed = run(status="failed", error="first line\nsecond line", finished_at=timezone.now())
    listing = admin_client.get(reverse("admin:polar_sync_syncrun_changelist")).text
    assert "first line" in listing and STATUS in listing
    detail_url = reverse("admin:polar_sync_syncrun_change", args=[failed.pk])
    detail = admin_client.get(detail_url).text
    assert "<pre>first line\nsecond line</pre>" in detail and 'name="_save"' not in detail
    assert admin_client.post(detail_url, {"status": "succeeded"}).status_code == 403
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_a_resumed_run_says_so_in_the_admin(admin_client):
    resumed = run(status="succeeded", resumed_from_page=57, finished_at=timezone.now())
    confirming = run(status="succeeded", resumed_from_page=0, finished_at=timezone.now())
    fresh = run(status="succeeded", finished_at=timezone.now())

    def detail(obj: SyncRun) -> str:
        return admin_client.get(reverse("admin:polar_sync_syncrun_change", args=[obj.pk])).text

    assert "resumed the walk at page 57" in detail(resumed)
    assert "confirmed the deletions a complete walk left" in detail(confirming)
    assert "no: a walk from page 1" in detail(fresh)
    listing = admin_client.get(reverse("admin:polar_sync_syncrun_changelist")).text
    assert "Resumed from page" in listing


def test_the_status_page_shows_a_pull_left_unfinished(admin_client):
    assert "none" in row(admin_client.get(STATUS).text, "status-checkpoint")
    now = timezone.now()
    checkpoint = SyncCheckpoint.objects.create(
        kind="customers",
        next_page=57,
        page_size=100,
        sorting="created_at",
        walk_started_at=now - timedelta(hours=2),
        updated_at=now - timedelta(minutes=5),
    )
    shown = row(admin_client.get(STATUS).text, "status-checkpoint")
    assert "continues at page 57" in shown and "5\xa0minutes ago" in shown

    checkpoint.phase = SyncCheckpoint.Phase.CONFIRMING
    checkpoint.save()
    assert "confirming deletions" in row(admin_client.get(STATUS).text, "status-checkpoint")
