"""Applying each type of webhook event to the mirror, order-safely.

Events can arrive twice and in any order, so no older event overwrites the mirror:
``customer.created`` / ``customer.updated`` are compared by ``modified_at``,
``customer.state_changed`` by its ``timestamp`` against the newest state event
applied for that customer (a state change leaves ``modified_at`` alone), and nothing
revives a customer the mirror holds as deleted, except a later change.

A handler returns why it ignored the event (``None`` when applied) or raises;
:func:`.webhooks.webhook_event_process` records the outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db import connection

from ..mapping import customer_fields
from ..models import Customer, WebhookEvent
from .catalog import catalog_item_apply
from .customers import customer_upsert, customers_mark_deleted
from .member_webhooks import MEMBER_HANDLERS
from .states import customer_state_apply, customer_state_clear

CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_DELETED = "customer.deleted"
CUSTOMER_STATE_CHANGED = "customer.state_changed"
# pg_advisory_xact_lock(classid, objid): a fixed class keeps these locks apart from others.
_LOCK_CLASS = 0x504F4C52  # "POLR"

Status = WebhookEvent.Status


def _data(event: WebhookEvent) -> dict[str, Any]:
    data = event.payload.get("data") if isinstance(event.payload, dict) else None
    if not isinstance(data, dict):
        raise ValueError("the event has no 'data' object")
    return data


def _older_than_mirror(fields: dict[str, Any], *, compare_modified: bool) -> str | None:
    """Why a Customer payload must not overwrite the mirror's row, or None."""
    row = (
        Customer.objects.filter(pk=fields["id"])
        .values("created_at", "modified_at", "deleted_at")
        .first()
    )
    if row is None:
        return None
    incoming = fields["modified_at"] or fields["created_at"]
    current = row["modified_at"] or row["created_at"]
    if compare_modified and incoming < current:
        return f"older than the mirror (modified_at {incoming.isoformat()} < {current.isoformat()})"
    if row["deleted_at"] and not fields["deleted_at"] and incoming <= row["deleted_at"]:
        return "the customer was deleted after this change"
    return None


def _customer_changed(event: WebhookEvent) -> str | None:
    data = _data(event)
    reason = _older_than_mirror(customer_fields(data), compare_modified=True)
    if reason:
        return reason
    customer_upsert(payload=data, skip_older=True)
    return None


def _customer_deleted(event: WebhookEvent) -> str | None:
    data = _data(event)
    fields = customer_fields(data)
    # Upsert first, so the mirror holds the deletion even for a customer it never saw,
    # and a late customer.updated cannot bring it back.
    customer_upsert(payload=data, skip_older=True)
    customers_mark_deleted(ids=[fields["id"]], when=fields["deleted_at"])
    customer_state_clear(customer_id=fields["id"])
    return None


def _state_changed(event: WebhookEvent) -> str | None:
    data = _data(event)
    reason = _older_than_mirror(customer_fields(data), compare_modified=False)
    if reason:
        return reason
    if event.occurred_at is not None:
        newer = (
            WebhookEvent.objects.filter(
                customer_id=event.customer_id,
                event_type=CUSTOMER_STATE_CHANGED,
                status=Status.PROCESSED,
                occurred_at__gt=event.occurred_at,
            )
            .exclude(pk=event.pk)
            .order_by("-occurred_at")
            .values_list("occurred_at", flat=True)
            .first()
        )
        if newer is not None:
            return f"a newer state (of {newer.isoformat()}) was already applied"
    customer_state_apply(payload=data, skip_older=True)
    return None


def _catalog_changed(event: WebhookEvent) -> str | None:
    return catalog_item_apply(event_type=event.event_type, payload=_data(event))


HANDLERS: dict[str, Callable[[WebhookEvent], str | None]] = {
    CUSTOMER_CREATED: _customer_changed,
    CUSTOMER_UPDATED: _customer_changed,
    CUSTOMER_DELETED: _customer_deleted,
    CUSTOMER_STATE_CHANGED: _state_changed,
    **MEMBER_HANDLERS,
    "product.created": _catalog_changed,
    "product.updated": _catalog_changed,
    "benefit.created": _catalog_changed,
    "benefit.updated": _catalog_changed,
}


def lock_customer(customer_id: uuid.UUID) -> None:
    """Serialize the processing of one customer's events across workers (PostgreSQL):
    else two could each find no newer event applied, and the older commit last. SQLite
    has no such lock: one worker at a time there (it is for development and tests)."""
    if connection.vendor != "postgresql":
        return
    objid = int.from_bytes(customer_id.bytes[:4], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, objid])
