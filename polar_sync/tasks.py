"""Celery tasks: thin doors that call a service and decide nothing else.

Tasks take primary keys, never model instances, and are safe to run twice.
"""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

logger = logging.getLogger("polar_sync.tasks")


def _report(name: str, run) -> dict | None:
    if run is None:
        logger.info("%s: another run is in progress (or nothing to do); exiting", name)
        return None
    return {"run": run.pk, "status": run.status}


@shared_task(name="polar_sync.pull_customers", ignore_result=True)
def pull_customers() -> dict | None:
    """Mirror every customer (a no-op when a pull is already running)."""
    return _report("pull_customers", services.customers_pull())


@shared_task(name="polar_sync.pull_members", ignore_result=True)
def pull_members() -> dict | None:
    """Mirror every member of the team customers (skipped with API_VERSION None)."""
    return _report("pull_members", services.members_pull())


@shared_task(name="polar_sync.refresh_states", ignore_result=True)
def refresh_states(max_requests: int | None = None) -> dict | None:
    """Refresh stale customer states within the shared request budget."""
    return _report("refresh_states", services.states_refresh(max_requests=max_requests))


@shared_task(name="polar_sync.refresh_balances", ignore_result=True)
def refresh_balances(max_requests: int | None = None) -> dict | None:
    """Refresh stale customer balances within the shared request budget."""
    return _report("refresh_balances", services.balances_refresh(max_requests=max_requests))


@shared_task(name="polar_sync.pull_catalog", ignore_result=True)
def pull_catalog() -> dict | None:
    """Mirror every product and benefit (a no-op on the 2025-10 API, or when running)."""
    return _report("pull_catalog", services.catalog_pull())


@shared_task(name="polar_sync.refresh_customer", ignore_result=True)
def refresh_customer(customer_id: str) -> None:
    """Refresh one customer's state (which carries the customer) and balance."""
    services.customer_refresh(customer_id=customer_id)


@shared_task(name="polar_sync.process_webhook", ignore_result=True)
def process_webhook(event_id: int) -> str:
    """Apply one stored webhook event to the mirror; the outcome is recorded on the event."""
    return services.webhook_event_process(event_id=event_id).status


@shared_task(name="polar_sync.sweep_webhooks", ignore_result=True)
def sweep_webhooks() -> dict:
    """Process webhook events left ``received`` (their task was lost) or due for a retry."""
    return dict(services.webhook_events_sweep())


@shared_task(name="polar_sync.push_user", ignore_result=True)
def push_user(external_id: str) -> dict:
    """Push one user's outbox row (keyed by external ID) to Polar; a no-op when already done."""
    return services.outbox_drain(external_id=external_id).as_dict()


@shared_task(name="polar_sync.drain_outbox", ignore_result=True)
def drain_outbox() -> dict:
    """Push every due outbox row, e.g. those whose enqueue was lost while the broker was down."""
    return services.outbox_drain().as_dict()


@shared_task(name="polar_sync.reconcile_users", ignore_result=True)
def reconcile_users() -> dict:
    """Queue a push for every user whose customer Polar may not hold as it is."""
    return services.users_reconcile().as_dict()
