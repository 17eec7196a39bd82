"""The store's change events and the JSON each API version renders a customer in.

Subscribers (the webhook sender, tests) get ``(event_type, payload)`` after every change;
payloads are shaped for the store's ``api_version``. Mixed into
:class:`~polar_sync.testing.store.PolarStore`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import constants as c
from . import versions as v
from .internals import Event, StoreInternals, Subscriber
from .records import CustomerRecord, customer_dict, customer_json, state_dict

logger = logging.getLogger("polar_sync.testing.store")


class EventsMixin:
    """Subscribers, the events of a change and the per-version renderings."""

    def subscribe(self: StoreInternals, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event_type, payload)`` after every change to a customer or its
        state (via the API or this handle; bulk seeding excepted). Event types are Polar's
        webhook ones: ``customer.created``/``updated``/``deleted`` (payload: Customer) and
        ``customer.state_changed`` (payload: CustomerState). Returns an unsubscribe function.
        """
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def _events(self: StoreInternals, record: CustomerRecord, *types: str) -> list[Event]:
        if not self.subscribers:
            return []
        events: list[Event] = []
        for event_type in types:
            if event_type == c.EVENT_CUSTOMER_STATE_CHANGED:
                payload = self._state_payload(record, self.api_version)
            else:
                payload = self._customer_payload(record, self.api_version)
            events.append((event_type, payload))
        return events

    def _customer_payload(
        self: StoreInternals, record: CustomerRecord, version: str | None = None
    ) -> dict[str, Any]:
        """The Customer JSON of ``version``."""
        if v.dated(version or self.api_version):
            return v.customer_dict(record, self.organization_id)
        return customer_dict(record, self.organization_id)

    def _state_payload(
        self: StoreInternals, record: CustomerRecord, version: str | None = None
    ) -> dict[str, Any]:
        if v.dated(version or self.api_version):
            return v.state_dict(record, self.organization_id, self._state(record))
        return state_dict(record, self.organization_id, self._state(record))

    def _customer_body(
        self: StoreInternals, record: CustomerRecord, version: str | None = None
    ) -> bytes:
        if v.dated(version or self.api_version):
            return v.dumps(v.customer_dict(record, self.organization_id))
        return customer_json(record, self.organization_id)

    def _dispatch(self: StoreInternals, events: list[Event]) -> None:
        # Outside the lock: a subscriber may call back into the store.
        for event_type, payload in events:
            for callback in list(self.subscribers):
                try:
                    callback(event_type, payload)
                except Exception:
                    logger.exception("polar_sync.testing subscriber failed on %s", event_type)
