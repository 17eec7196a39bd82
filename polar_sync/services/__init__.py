"""The logic of polar_sync: functions that own their transactions.

Doors (tasks, receivers, admin, views, commands) call these and decide nothing.
"""

from .customers import customer_upsert, customers_mark_deleted, customers_pull, customers_upsert
from .states import (
    balances_refresh,
    customer_balance_refresh,
    customer_refresh,
    customer_state_apply,
    customer_state_refresh,
    states_refresh,
)

__all__ = [
    "balances_refresh",
    "customer_balance_refresh",
    "customer_refresh",
    "customer_state_apply",
    "customer_state_refresh",
    "customer_upsert",
    "customers_mark_deleted",
    "customers_pull",
    "customers_upsert",
    "states_refresh",
]
