"""Celery wiring for a host project: the periodic work and the queues, as importable objects.

``BEAT_SCHEDULE`` is every periodic task polar_sync needs, for ``CELERY_BEAT_SCHEDULE``
(or, with django-celery-beat, for ``manage.py polar_beat_install``). ``TASK_ROUTES``
sends each task to one of three queues, for ``CELERY_TASK_ROUTES``, so that a worker
serving pushes and webhooks never waits behind a long pull or refresh::

    polar_sync.push      user saves pushed to Polar, and the outbox drain
    polar_sync.webhooks  webhook events applied to the mirror, their sweep, and the
                         refresh of one customer (the admin's "Refresh from Polar")
    polar_sync.sync      pulls, refreshes and the reconciliation of users

Copy an entry and change its ``schedule`` to change an interval; both are plain dicts.
"""

from __future__ import annotations

from typing import Any

PUSH_QUEUE = "polar_sync.push"
WEBHOOKS_QUEUE = "polar_sync.webhooks"
SYNC_QUEUE = "polar_sync.sync"
QUEUES = (PUSH_QUEUE, WEBHOOKS_QUEUE, SYNC_QUEUE)

MINUTE = 60.0
HOUR = 60 * MINUTE

# Intervals in seconds (Celery accepts a number, a timedelta or a crontab).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "polar-pull-customers": {"task": "polar_sync.pull_customers", "schedule": 15 * MINUTE},
    # Members of team customers (API versions 2026-04 and later; a no-op before).
    "polar-pull-members": {"task": "polar_sync.pull_members", "schedule": 15 * MINUTE},
    "polar-refresh-states": {"task": "polar_sync.refresh_states", "schedule": 5 * MINUTE},
    "polar-refresh-balances": {"task": "polar_sync.refresh_balances", "schedule": 15 * MINUTE},
    # Product and benefit names (skipped on the 2025-10 API).
    "polar-pull-catalog": {"task": "polar_sync.pull_catalog", "schedule": HOUR},
    # Pushes whose enqueue was lost (broker down) or that wait for a retry.
    "polar-drain-outbox": {"task": "polar_sync.drain_outbox", "schedule": MINUTE},
    # Webhook events whose task was lost (broker down) or that wait for a retry.
    "polar-sweep-webhooks": {"task": "polar_sync.sweep_webhooks", "schedule": MINUTE},
    # Users changed without a signal (QuerySet.update...) or whose customer Polar lost.
    "polar-reconcile-users": {"task": "polar_sync.reconcile_users", "schedule": 24 * HOUR},
}

TASK_ROUTES: dict[str, dict[str, str]] = {
    "polar_sync.push_user": {"queue": PUSH_QUEUE},
    "polar_sync.drain_outbox": {"queue": PUSH_QUEUE},
    "polar_sync.process_webhook": {"queue": WEBHOOKS_QUEUE},
    "polar_sync.sweep_webhooks": {"queue": WEBHOOKS_QUEUE},
    # One customer, a few requests, asked for by someone waiting in the admin.
    "polar_sync.refresh_customer": {"queue": WEBHOOKS_QUEUE},
    "polar_sync.pull_customers": {"queue": SYNC_QUEUE},
    "polar_sync.pull_members": {"queue": SYNC_QUEUE},
    "polar_sync.pull_catalog": {"queue": SYNC_QUEUE},
    "polar_sync.refresh_states": {"queue": SYNC_QUEUE},
    "polar_sync.refresh_balances": {"queue": SYNC_QUEUE},
    "polar_sync.reconcile_users": {"queue": SYNC_QUEUE},
}
