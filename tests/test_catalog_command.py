"""The catalogue's doors: ``polar_sync --catalog`` / ``--all``, the task, the beat entry,
and ``manage.py check``'s token hint."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import override_settings

from polar_sync import tasks
from polar_sync.models import Benefit, Customer, Product, SyncRun
from polar_sync.testing.members import NotPermitted

pytestmark = pytest.mark.django_db


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("polar_sync", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_catalog_option_pulls_and_prints_the_counts(dated_polar):
    dated_polar("2026-04", customers=5)
    out = run_command("--catalog")
    row = next(line.split() for line in out.splitlines() if line.startswith("catalog "))
    assert row[:4] == ["catalog", "succeeded", "6", "12"]  # status, pages, created
    assert "catalog: 6 products, 6 benefits in the mirror" in out
    assert Product.objects.count() == 6 and not Customer.objects.exists()


def test_all_includes_the_catalogue_when_the_api_version_has_it(dated_polar):
    dated_polar("2026-10", customers=5)
    out = run_command("--all")
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines() if line.strip()}
    assert rows["customers"][0] == "succeeded"
    assert rows["catalog"] == ["succeeded", "6", "12"]  # status, pages, created
    assert Benefit.objects.count() == 6 and Customer.objects.count() == 5


def test_all_leaves_the_catalogue_out_on_the_2025_10_api(dated_polar):
    polar = dated_polar("2025-10", api_version=None, customers=5)
    out = run_command("--all")
    assert "catalog" not in out
    assert not polar.store.request_counts["products:list"]
    out = run_command("--catalog")
    assert "catalog: skipped: API_VERSION is None" in out
    assert not SyncRun.objects.filter(kind=SyncRun.Kind.CATALOG).exists()


def test_a_403_does_not_fail_the_command_and_says_why(dated_polar):
    polar = dated_polar("2026-04", customers=5)

    def forbidden(query):
        raise NotPermitted("You don't have the permission to do this.")

    polar.store.api_benefits = forbidden
    out = run_command("--all")  # no CommandError
    assert "benefits names unavailable: the access token lacks benefits:read" in out
    assert Customer.objects.count() == 5 and Product.objects.count() == 6


def test_the_task_runs_the_pull(dated_polar):
    dated_polar("2026-04", customers=5)
    assert tasks.pull_catalog.delay().get()["status"] == "succeeded"
    assert Product.objects.count() == 6


def test_the_demo_beat_schedule_pulls_the_catalogue():
    entry = django_settings.CELERY_BEAT_SCHEDULE["polar-pull-catalog"]
    assert entry["task"] == tasks.pull_catalog.name


def test_the_token_hint_names_the_catalogue_scopes():
    out = StringIO()
    with override_settings(POLAR_SYNC={"SERVER": "sandbox"}):
        call_command("check", stdout=out, stderr=out)
    assert all(
        scope in out.getvalue() for scope in ("products:read", "benefits:read", "members:read")
    )


def test_the_status_page_says_why_the_names_are_missing(dated_polar, admin_client):
    from django.urls import reverse

    polar = dated_polar("2026-04")

    def forbidden(query):
        raise NotPermitted("You don't have the permission to do this.")

    polar.store.api_products = forbidden
    run_command("--catalog")
    page = admin_client.get(reverse("admin:polar_sync_syncrun_status")).text
    assert "Products and benefits" in page
    assert "products names unavailable: the access token lacks products:read" in page
