"""Seats of team subscriptions (the 2026 versions' ``CustomerSeat``), for the test handle.

A seat is assigned to an email (``customer_seat.assigned``), claimed by the invitee, who
becomes a member (``member.created``, ``customer_seat.claimed``), and revoked (its member
removed, ``customer_seat.revoked``). The subscription's ``seats`` counts the seats not
revoked. Mixed into :class:`~polar_sync.testing.store.PolarStore`.
"""

from __future__ import annotations

import uuid
from typing import Any

from .internals import Event, StoreInternals
from .records import CustomerRecord, NotFound, iso, now_us


class SeatsMixin:
    """``assign_seat``, ``claim_seat`` and ``revoke_seat`` of the handle."""

    def assign_seat(
        self: StoreInternals,
        customer_id: str,
        subscription_id: str,
        *,
        email: str,
    ) -> dict[str, Any]:
        """Assign a seat of a team's subscription to ``email`` (``customer_seat.assigned``);
        the subscription's ``seats`` counts the seats not revoked."""
        now = now_us()
        with self.lock:
            record = self._live(customer_id)
            self._team(record)
            state = self._state_for_change(record)
            if subscription_id not in state.subscriptions:
                raise NotFound(subscription_id)
            seat_id = str(uuid.uuid4())
            seat: dict[str, Any] = {
                "created_at": iso(now),
                "modified_at": None,
                "id": seat_id,
                "subscription_id": subscription_id,
                "order_id": None,
                "status": "pending",
                "customer_id": customer_id,
                "member_id": None,
                "member": None,
                "email": email,
                "customer_email": record.email,
                "invitation_token_expires_at": iso(now + 7 * 86_400_000_000),
                "claimed_at": None,
                "revoked_at": None,
                "seat_metadata": None,
            }
            self._seats[seat_id] = seat
            events = self._seat_changed(record, seat, "customer_seat.assigned")
            result = dict(seat)
        self._dispatch(events)
        return result

    def claim_seat(
        self: StoreInternals,
        seat_id: str,
        *,
        name: str | None = None,
        external_id: str | None = None,
    ) -> dict[str, Any]:
        """The invitee claims the seat: a member is created (``member.created``, then
        ``customer_seat.claimed``)."""
        with self.lock:
            seat = self._seat(seat_id)
            record = self._live(seat["customer_id"])
            fields = {"email": seat["email"], "name": name, "external_id": external_id}
            member, events = self._add_member(record, fields)
            moment = iso(now_us())
            seat.update(
                status="claimed",
                claimed_at=moment,
                modified_at=moment,
                member_id=member["id"],
                member=dict(member),
            )
            events += self._seat_changed(record, seat, "customer_seat.claimed")
            result = dict(seat)
        self._dispatch(events)
        return result

    def revoke_seat(self: StoreInternals, seat_id: str) -> dict[str, Any]:
        """Revoke a seat (``customer_seat.revoked``); its member, if any, is removed."""
        with self.lock:
            seat = self._seat(seat_id)
            record = self._live(seat["customer_id"])
            events: list[Event] = []
            if seat["member_id"] in self._members:
                events += self._remove_member(self._members[seat["member_id"]])
            moment = iso(now_us())
            seat.update(status="revoked", revoked_at=moment, modified_at=moment)
            events += self._seat_changed(record, seat, "customer_seat.revoked")
            result = dict(seat)
        self._dispatch(events)
        return result

    def _seat(self: StoreInternals, seat_id: str) -> dict[str, Any]:
        seat = self._seats.get(seat_id)
        if seat is None:
            raise NotFound(seat_id)
        return seat

    def _seat_changed(
        self: StoreInternals, record: CustomerRecord, seat: dict[str, Any], event_type: str
    ) -> list[Event]:
        state = self._state_for_change(record)
        sub = state.subscriptions.get(seat["subscription_id"])
        if sub is not None:
            sub["seats"] = sum(
                s["subscription_id"] == sub["id"] and s["status"] != "revoked"
                for s in self._seats.values()
            )
        events = self._member_events(event_type, seat)
        return events + self._events(record, "customer.state_changed")
