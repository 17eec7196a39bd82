"""Honest budgets: a server on loopback gets none by default; the command says the pace."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from polar_sync import mapping
from polar_sync.conf import polar_settings
from polar_sync.models import Customer, RequestBudget
from polar_sync.services import customers_pull
from polar_sync.services.budget import Budget, budget_duration, budget_try_take, budgeted_client
from tests.factories import customer_payload, make_customer


@pytest.mark.parametrize(
    ("server", "limit"),
    [
        ("production", 400),
        ("sandbox", 80),
        ("https://polar.example.com", 400),  # a proxy in front of Polar: Polar's limit
        ("http://127.0.0.1:8111", None),
        ("http://localhost:8111/", None),
        ("http://[::1]:8111", None),
    ],
)
def test_the_default_budget_depends_on_the_server(settings, server, limit):
    settings.POLAR_SYNC = {"ACCESS_TOKEN": "t", "SERVER": server}
    assert polar_settings().rate_limit == limit


def test_rate_limit_set_explicitly_applies_on_loopback_too(settings):
    settings.POLAR_SYNC = {"ACCESS_TOKEN": "t", "SERVER": "http://127.0.0.1:1", "RATE_LIMIT": 60}
    assert Budget.from_settings().per_minute == 60
    assert polar_settings().rate_limit_display == "60 requests/min (RATE_LIMIT)"


@pytest.mark.django_db
def test_an_unlimited_budget_costs_no_query_and_no_wait(settings):
    settings.POLAR_SYNC = {"ACCESS_TOKEN": "t", "SERVER": "http://127.0.0.1:8111"}
    budget = Budget.from_settings()
    assert budget.unlimited
    with CaptureQueriesContext(connection) as queries:
        assert all(budget_try_take(budget=budget) == 0.0 for _ in range(10_000))
    assert len(queries) == 0
    assert budgeted_client().before_request is None
    assert budget_duration(requests=1_000_000) == "as fast as the server answers"


@pytest.mark.django_db
def test_a_pull_from_the_local_server_is_not_paced(live_polar, settings):
    """Without RATE_LIMIT, 3,000 customers (30 requests) against the local server touch
    no budget row: under the former default the 400/min bucket held 100 requests."""
    settings.POLAR_SYNC = {k: v for k, v in settings.POLAR_SYNC.items() if k != "RATE_LIMIT"}
    live_polar.store.seed(3_000, seed=1)
    run = customers_pull()
    assert run.status == "succeeded" and Customer.objects.count() == 3_000
    assert not RequestBudget.objects.exists()


def test_durations_within_the_default_production_budget(settings):
    settings.POLAR_SYNC = {"ACCESS_TOKEN": "t", "SERVER": "production"}
    # A burst of 100 goes at once, then 400 a minute.
    assert budget_duration(requests=100) == "under a minute"
    assert budget_duration(requests=3_300) == "about 8 min"
    assert budget_duration(requests=100_100) == "about 250 min"


@pytest.mark.django_db
def test_polar_sync_prints_the_budget_and_how_long_the_states_take(settings):
    settings.POLAR_SYNC = {"ACCESS_TOKEN": "t", "SERVER": "production"}
    now = timezone.now()
    Customer.objects.bulk_create(
        Customer(synced_at=now, **mapping.customer_fields(customer_payload())) for _ in range(3_300)
    )
    out = StringIO()
    call_command("polar_sync", "--states", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Budget: 400 requests/min (80% of production's 500)" in text
    assert "states: 3,300 due; 400 requests/min: about 8 min for the states" in text


@pytest.mark.django_db
def test_polar_sync_says_there_is_no_budget_against_the_local_server(live_polar, settings):
    settings.POLAR_SYNC = {k: v for k, v in settings.POLAR_SYNC.items() if k != "RATE_LIMIT"}
    make_customer()
    out = StringIO()
    call_command("polar_sync", "--states", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "Budget: no request budget (a server on loopback" in text
    assert "states: 1 to refresh; no budget: as fast as the server answers for the states" in text
