"""polar_sync's models, one module per concern."""

from .catalog import Benefit, Product
from .customers import (
    Customer,
    CustomerBalance,
    CustomerQuerySet,
    CustomerState,
    StateBenefitGrant,
    StateMeter,
    StateSubscription,
)
from .members import Member
from .outbox import PushedPayload, PushOutbox
from .sync import RequestBudget, SyncCheckpoint, SyncCheckpointPage, SyncRun
from .webhooks import WebhookEvent

__all__ = [
    "Benefit",
    "Customer",
    "CustomerBalance",
    "CustomerQuerySet",
    "CustomerState",
    "Member",
    "Product",
    "PushOutbox",
    "PushedPayload",
    "RequestBudget",
    "StateBenefitGrant",
    "StateMeter",
    "StateSubscription",
    "SyncCheckpoint",
    "SyncCheckpointPage",
    "SyncRun",
    "WebhookEvent",
]
