"""Celery tasks: thin doors that call a service and decide nothing else.

Tasks take primary keys, never model instances, and are safe to run twice. A pull,
refresh or drain that failed raises :class:`~polar_sync.exceptions.PolarTaskFailed`
once its failure is recorded, so that Celery (Flower, Sentry) sees the task FAILED;
each run logs one INFO line with its counts (the sync runs' line is
:func:`~polar_sync.services.runs.sync_run_finish`'s). Queues: :mod:`polar_sync.schedule`.
"""

from __future__ import annotations

import logging

from celery import shared_task

from . import services
from .exceptions import PolarTaskFailed
from .models import SyncRun
from .services.push import DrainResult
from .services.push.drain import DISABLED

logger = logging.getLogger("polar_sync.tasks")


def _report(name: str, run: SyncRun | None) -> dict | None:
    """The task's result; raises when the run failed (its row keeps the details)."""
    if run is None:
        logger.info("%s: another run is in progress (or nothing to do); exiting", name)
        return None
    if run.status == SyncRun.Status.FAILED:
        raise PolarTaskFailed(f"{name}: sync run {run.pk} failed: {run.error}")
    return {"run": run.pk, "status": run.status}


def _drained(name: str, result: DrainResult) -> dict:
    """Log the drain's counts in one line; raise when it stopped early (token refused,
    Polar unavailable, no configuration): its rows stay queued for the next drain."""
    if result.pushed or result.failed or result.postponed or result.stopped:
        logger.info(
            "%s: %d pushed (%d created, %d updated, %d adopted, %d deleted), %d unchanged, "
            "%d failed, %d postponed, %d busy, %d requests%s",
            name,
            result.pushed,
            result.created,
            result.updated,
            result.adopted,
            result.deleted + result.already_gone,
            result.unchanged,
            len(result.failed),
            result.postponed,
            result.busy,
            result.requests,
            f"; stopped: {result.stopped}" if result.stopped else "",
        )
    if result.stopped and result.stopped != DISABLED:
        raise PolarTaskFailed(f"{name}: {result.stopped}")
    return result.as_dict()


def _counts(values: dict) -> str:
    return ", ".join(f"{value} {key}" for key, value in values.items() if value != "")


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
    counts = dict(services.webhook_events_sweep())
    if counts:
        logger.info("sweep_webhooks: %s", _counts(counts))
    return counts


@shared_task(name="polar_sync.push_user", ignore_result=True)
def push_user(external_id: str) -> dict:
    """Push one user's outbox row (keyed by external ID) to Polar; a no-op when already done."""
    return _drained("push_user", services.outbox_drain(external_id=external_id))


@shared_task(name="polar_sync.drain_outbox", ignore_result=True)
def drain_outbox() -> dict:
    """Push every due outbox row, e.g. those whose enqueue was lost while the broker was down."""
    return _drained("drain_outbox", services.outbox_drain())


@shared_task(name="polar_sync.reconcile_users", ignore_result=True)
def reconcile_users() -> dict:
    """Queue a push for every user whose customer Polar may not hold as it is."""
    result = services.users_reconcile().as_dict()
    logger.info("reconcile_users: %s", _counts(result))
    return result
