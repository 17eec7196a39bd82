"""Celery wiring for the host project: the periodic tasks and the queues they run on.

``CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE`` runs every periodic task polar_sync has
(intervals in seconds); ``CELERY_TASK_ROUTES = TASK_ROUTES`` sends pushes and the
outbox drain to ``polar_sync.push``, webhook processing to ``polar_sync.webhooks``
and pulls and refreshes to ``polar_sync.sync``, so a long refresh never delays a
push or a webhook (run a worker per queue, or one worker with ``-Q`` naming all).
"""

from __future__ import annotations

from typing import Any

PUSH_QUEUE = "polar_sync.push"
WEBHOOKS_QUEUE = "polar_sync.webhooks"
SYNC_QUEUE = "polar_sync.sync"

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "polar-pull-customers": {"task": "polar_sync.pull_customers", "schedule": 15 * 60.0},
    # Members of team customers (API versions 2026-04 and later; a no-op before).
    "polar-pull-members": {"task": "polar_sync.pull_members", "schedule": 15 * 60.0},
    "polar-refresh-states": {"task": "polar_sync.refresh_states", "schedule": 5 * 60.0},
    # Balances exist only with API_VERSION None; otherwise the task sends nothing.
    "polar-refresh-balances": {"task": "polar_sync.refresh_balances", "schedule": 15 * 60.0},
    # Product and benefit names (skipped on the 2025-10 API).
    "polar-pull-catalog": {"task": "polar_sync.pull_catalog", "schedule": 60 * 60.0},
    # Pushes whose enqueue was lost (broker down) or that wait for a retry.
    "polar-drain-outbox": {"task": "polar_sync.drain_outbox", "schedule": 60.0},
    # Webhook events whose task was lost (broker down) or that wait for a retry.
    "polar-sweep-webhooks": {"task": "polar_sync.sweep_webhooks", "schedule": 60.0},
    # Users changed without a signal (QuerySet.update...) or whose customer Polar lost.
    "polar-reconcile-users": {"task": "polar_sync.reconcile_users", "schedule": 24 * 3600.0},
}

TASK_ROUTES: dict[str, dict[str, str]] = {
    "polar_sync.push_user": {"queue": PUSH_QUEUE},
    "polar_sync.drain_outbox": {"queue": PUSH_QUEUE},
    "polar_sync.reconcile_users": {"queue": PUSH_QUEUE},
    "polar_sync.process_webhook": {"queue": WEBHOOKS_QUEUE},
    "polar_sync.sweep_webhooks": {"queue": WEBHOOKS_QUEUE},
    "polar_sync.pull_customers": {"queue": SYNC_QUEUE},
    "polar_sync.pull_members": {"queue": SYNC_QUEUE},
    "polar_sync.pull_catalog": {"queue": SYNC_QUEUE},
    "polar_sync.refresh_states": {"queue": SYNC_QUEUE},
    "polar_sync.refresh_balances": {"queue": SYNC_QUEUE},
    "polar_sync.refresh_customer": {"queue": SYNC_QUEUE},
}
