"""Applying ``member.*`` and ``customer_seat.*`` webhook events to the mirror.

``member.created`` / ``member.updated`` upsert the member (an older ``modified_at``
than the mirror's is ignored); ``member.deleted`` removes it, and no later-arriving
older event brings it back (Polar never reuses a member ID). A ``customer_seat.*``
event carries the seat, with its member once claimed: that member is upserted; a
revoked seat's member goes with its own ``member.deleted``. A seat event costs no
request: the team's subscriptions arrive with ``customer.state_changed``.

A member of a customer the mirror does not hold yet costs one request: the customer
is read (``GET /v1/customers/{id}``) and written first.
"""

from __future__ import annotations

import logging
from typing import Any

from ..exceptions import PolarNotFoundError
from ..mapping_members import member_fields
from ..models import Customer, WebhookEvent
from .budget import budgeted_client
from .customers import customer_upsert
from .members import member_upsert, members_delete

logger = logging.getLogger("polar_sync.webhooks")

MEMBER_CREATED = "member.created"
MEMBER_UPDATED = "member.updated"
MEMBER_DELETED = "member.deleted"
SEAT_EVENTS = ("customer_seat.assigned", "customer_seat.claimed", "customer_seat.revoked")


def _data(event: WebhookEvent) -> dict[str, Any]:
    data = event.payload.get("data") if isinstance(event.payload, dict) else None
    if not isinstance(data, dict):
        raise ValueError("the event has no 'data' object")
    return data


def _member_write(payload: dict[str, Any]) -> str | None:
    fields = member_fields(payload)
    deleted = WebhookEvent.objects.filter(
        event_type=MEMBER_DELETED,
        status=WebhookEvent.Status.PROCESSED,
        payload__data__id=str(payload["id"]),
    )
    if deleted.exists():
        return "the member was deleted"
    if not Customer.objects.filter(pk=fields["customer_id"]).exists():
        try:
            customer_upsert(payload=budgeted_client().get(str(fields["customer_id"])))
        except PolarNotFoundError:
            return "its customer no longer exists in Polar"
    member_upsert(payload=payload, skip_older=True)
    return None


def member_changed(event: WebhookEvent) -> str | None:
    return _member_write(_data(event))


def member_deleted(event: WebhookEvent) -> str | None:
    fields = member_fields(_data(event))
    members_delete(ids=[fields["id"]])
    return None


def seat_changed(event: WebhookEvent) -> str | None:
    member = _data(event).get("member")
    if not isinstance(member, dict):
        return "the seat has no member"
    if event.event_type == "customer_seat.revoked":
        # Its member.deleted removes it; the seat's copy may be older than that event.
        return "a revoked seat's member goes with member.deleted"
    return _member_write(member)


MEMBER_HANDLERS = {
    MEMBER_CREATED: member_changed,
    MEMBER_UPDATED: member_changed,
    MEMBER_DELETED: member_deleted,
    **dict.fromkeys(SEAT_EVENTS, seat_changed),
}

__all__ = ["MEMBER_HANDLERS"]
