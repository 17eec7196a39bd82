"""The pull tasks: thin doors over the services."""

from __future__ import annotations

import pytest

from polar_sync import tasks
from polar_sync.models import Customer, CustomerBalance, CustomerState, SyncRun
from polar_sync.services.budget import Budget, BudgetReservoir, budget_try_take
from polar_sync.services.runs import sync_run_start

pytestmark = pytest.mark.django_db


def test_pull_refresh_tasks_run_the_services(live_polar_2025):
    live_polar_2025.store.seed(20, seed=2)
    assert tasks.pull_customers.delay().get()["status"] == "succeeded"
    assert tasks.refresh_states.delay().get()["status"] == "succeeded"
    assert tasks.refresh_balances.delay(max_requests=5).get()["status"] == "succeeded"
    assert Customer.objects.count() == 20 and CustomerState.objects.count() == 20
    assert CustomerBalance.objects.count() == 5


def test_a_task_run_while_another_pull_runs_exits_quietly(live_polar):
    live_polar.store.seed(3)
    sync_run_start(kind=SyncRun.Kind.CUSTOMERS)
    assert tasks.pull_customers.delay().get() is None
    assert live_polar.store.requests == []


def test_refresh_customer_takes_an_id(live_polar_2025):
    c = live_polar_2025.store.add_customer(email="one@example.com")
    live_polar_2025.store.start_subscription(c["id"], amount=500)
    tasks.refresh_customer.delay(c["id"])
    assert Customer.objects.get(pk=c["id"]).active_subscriptions.get().amount == 500
    assert CustomerBalance.objects.filter(customer_id=c["id"]).exists()


def test_tokens_are_taken_in_batches_from_the_shared_budget():
    budget = Budget(per_minute=60, capacity=10, name="batch")
    reservoir = BudgetReservoir(budget, batch=5)
    for _ in range(6):
        reservoir()
    # Two batches of 5 were taken for 6 requests: 0 tokens are left to others.
    assert budget_try_take(budget=budget, now=None, tokens=1) > 0
