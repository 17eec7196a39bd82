"""The logic of polar_sync: functions that own their transactions.

Doors (tasks, receivers, admin, views, commands) call these and decide nothing.
"""

from .customers import customer_upsert, customers_mark_deleted, customers_pull, customers_upsert
from .push import (
    customer_push,
    outbox_drain,
    user_change_record,
    user_deletion_record,
    users_reconcile,
)
from .states import (
    balance_endpoint_missing,
    balances_refresh,
    customer_balance_refresh,
    customer_refresh,
    customer_state_apply,
    customer_state_refresh,
    states_refresh,
)
from .webhook_body import WebhookRejected, webhook_body_read
from .webhooks import (
    webhook_event_counts,
    webhook_event_dispatch,
    webhook_event_process,
    webhook_events_replay,
    webhook_events_sweep,
    webhook_receive,
)

__all__ = [
    "WebhookRejected",
    "balance_endpoint_missing",
    "balances_refresh",
    "customer_balance_refresh",
    "customer_push",
    "customer_refresh",
    "customer_state_apply",
    "customer_state_refresh",
    "customer_upsert",
    "customers_mark_deleted",
    "customers_pull",
    "customers_upsert",
    "outbox_drain",
    "states_refresh",
    "user_change_record",
    "user_deletion_record",
    "users_reconcile",
    "webhook_body_read",
    "webhook_event_counts",
    "webhook_event_dispatch",
    "webhook_event_process",
    "webhook_events_replay",
    "webhook_events_sweep",
    "webhook_receive",
]
