"""The logic of polar_sync: functions that own their transactions.

Doors (tasks, receivers, admin, views, commands) call these and decide nothing.
"""

from .catalog import benefits_upsert, catalog_pull, products_upsert
from .customers import customer_upsert, customers_pull, customers_upsert
from .members import member_upsert, members_pull, members_upsert
from .push import customer_push, outbox_drain, users_reconcile
from .states import balances_refresh, customer_refresh, customer_state_apply, states_refresh
from .webhook_body import WebhookRejected, webhook_body_read
from .webhooks import (
    webhook_event_counts,
    webhook_event_process,
    webhook_events_replay,
    webhook_events_sweep,
    webhook_receive,
)

__all__ = [
    "WebhookRejected",
    "balances_refresh",
    "benefits_upsert",
    "catalog_pull",
    "customer_push",
    "customer_refresh",
    "customer_state_apply",
    "customer_upsert",
    "customers_pull",
    "customers_upsert",
    "member_upsert",
    "members_pull",
    "members_upsert",
    "outbox_drain",
    "products_upsert",
    "states_refresh",
    "users_reconcile",
    "webhook_body_read",
    "webhook_event_counts",
    "webhook_event_process",
    "webhook_events_replay",
    "webhook_events_sweep",
    "webhook_receive",
]
