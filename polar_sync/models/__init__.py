"""polar_sync's models, one module per concern."""

from .customers import (
    Customer,
    CustomerBalance,
    CustomerQuerySet,
    CustomerState,
    StateBenefitGrant,
    StateMeter,
    StateSubscription,
)
from .sync import RequestBudget, SyncRun

__all__ = [
    "Customer",
    "CustomerBalance",
    "CustomerQuerySet",
    "CustomerState",
    "RequestBudget",
    "StateBenefitGrant",
    "StateMeter",
    "StateSubscription",
    "SyncRun",
]
