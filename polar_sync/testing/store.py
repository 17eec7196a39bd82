"""The in-memory world of the stand-in: one organization's customers and their state.

:class:`PolarStore` serves the HTTP layer (the ``api_*`` methods, which validate like
Polar and return ready-to-send JSON bytes) and is the handle tests use to arrange and
inspect the world (the methods of :class:`~polar_sync.testing.arrange.ArrangeMixin`).
Everything goes through one re-entrant lock.

Customers are kept in creation order, so an unfiltered page sorted by ``created_at`` is a
slice; other filters and sortings are computed once and cached until the next change.
"""

from __future__ import annotations

import bisect
import random
import threading
import uuid
from collections.abc import Iterator
from operator import attrgetter
from typing import Any

from . import constants as c
from . import versions as v
from .arrange import ArrangeMixin
from .catalog import CatalogMixin
from .events import EventsMixin
from .internals import Event, Subscriber
from .listing import plain_window, render_page, select
from .members import MembersMixin
from .params import check_uuid
from .records import (
    CustomerRecord,
    NotFound,
    StateRecord,
    address_tuple,
    csv_chunks,
    now_us,
    uuid4_from,
)
from .requestlog import RequestLog
from .seats import SeatsMixin
from .seed import SEED_END_US
from .state import Catalog, seeded_state
from .validation import ListQuery, ValidationFailed, error

DEFAULT_ORGANIZATION_ID = uuid4_from(random.Random("polar_sync.testing organization"))
_CACHE_SIZE = 8


class PolarStore(EventsMixin, ArrangeMixin, MembersMixin, SeatsMixin, CatalogMixin):
    """One Polar organization's customers (and, in the 2026 versions, their team members,
    products and benefits); thread-safe.

    ``api_version`` is the era the store plays (see :mod:`.versions`): it shapes the
    handle's answers and the change events, and a 2026 store seeds teams and a catalog.
    """

    #: Currency of ``/balance`` answers.
    balance_currency = "USD"  # as Polar's docs and the contract's example show it

    def __init__(
        self,
        organization_id: str | None = None,
        *,
        api_version: str = v.DEFAULT,
        log_size: int = 100_000,
    ) -> None:
        self.api_version = v.check_api_version(api_version)
        self.organization_id = (
            check_uuid("organization_id", organization_id)
            if organization_id is not None
            else DEFAULT_ORGANIZATION_ID
        )
        self.lock = threading.RLock()
        self.log = RequestLog(log_size)
        self.subscribers: list[Subscriber] = []
        self.reference_us = SEED_END_US
        self._catalog: Catalog | None = None
        self._by_id: dict[str, CustomerRecord] = {}
        self._by_email: dict[str, CustomerRecord] = {}
        self._by_external: dict[str, CustomerRecord] = {}
        self._active: list[CustomerRecord] = []
        self._seq = 0
        self._max_created_us = 0
        self._cache: dict[tuple[Any, ...], list[CustomerRecord]] = {}
        self._members: dict[str, dict[str, Any]] = {}  # id -> Member JSON, oldest first
        self._seats: dict[str, dict[str, Any]] = {}  # id -> CustomerSeat JSON
        self._products: dict[str, dict[str, Any]] = {}  # id -> Product JSON
        self._benefits: dict[str, dict[str, Any]] = {}  # id -> Benefit JSON

    # -- bookkeeping -------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """Products, benefits and meters of the seeded organization."""
        with self.lock:
            if self._catalog is None:
                self._catalog = Catalog.generate(0)
            return self._catalog

    def __len__(self) -> int:
        """Number of live (not deleted) customers."""
        return len(self._active)

    def __bool__(self) -> bool:  # an empty store is still a store
        return True

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _next_created_us(self) -> int:
        return max(now_us(), self._max_created_us + 1)

    def _changed(self, record: CustomerRecord | None = None) -> None:
        self._cache.clear()
        if record is not None:
            record.cached_json = None

    def _index(self, record: CustomerRecord) -> None:
        if record.id in self._by_id:
            raise ValueError(f"duplicate customer id {record.id}")
        self._by_id[record.id] = record
        self._max_created_us = max(self._max_created_us, record.created_us)
        if record.deleted_us is None:
            if record.email is not None:  # a team customer may have none
                self._by_email[record.email.lower()] = record
            if record.external_id is not None:
                self._by_external[record.external_id] = record
            active = self._active
            if not active or active[-1].order_key() < record.order_key():
                active.append(record)
            else:
                bisect.insort(active, record, key=CustomerRecord.order_key)
        self._changed(record)

    def _bulk_index(self, records: list[CustomerRecord]) -> None:
        """Index many new records at once (seeding); they must not clash with existing ones."""
        sorted_tail = not self._active or (
            not records or self._active[-1].order_key() < records[0].order_key()
        )
        # C-level loops: a million records index in a fraction of the time of a for loop.
        self._by_id.update(zip(map(attrgetter("id"), records), records, strict=True))
        self._by_email.update(zip(map(attrgetter("email"), records), records, strict=True))
        self._by_email.pop(None, None)  # type: ignore[call-overload]  # emailless teams
        self._by_external.update(
            (record.external_id, record) for record in records if record.external_id is not None
        )
        self._active.extend(records)
        if not sorted_tail:
            self._active.sort(key=CustomerRecord.order_key)
        if records:
            self._max_created_us = max(self._max_created_us, records[-1].created_us)
        self._changed()

    def _unindex_live(self, record: CustomerRecord) -> None:
        if record.email is not None:
            self._by_email.pop(record.email.lower(), None)
        if record.external_id is not None:
            self._by_external.pop(record.external_id, None)
        active = self._active
        i = bisect.bisect_left(active, record.order_key(), key=CustomerRecord.order_key)
        if i < len(active) and active[i] is record:
            del active[i]
        self._changed(record)

    def _live(self, customer_id: str) -> CustomerRecord:
        record = self._by_id.get(customer_id)
        if record is None or record.deleted_us is not None:
            raise NotFound(customer_id)
        return record

    def _live_external(self, external_id: str) -> CustomerRecord:
        record = self._by_external.get(external_id)
        if record is None:
            raise NotFound(external_id)
        return record

    def _state(self, record: CustomerRecord) -> StateRecord | None:
        if isinstance(record.state, int):
            record.state = seeded_state(
                record.state, record.created_us, self.reference_us, self.catalog
            )
            if v.fields_of(record)["type"] == "team":  # a team pays one seat per member
                seats = sum(m["customer_id"] == record.id for m in self._members.values())
                for sub in record.state.subscriptions.values():
                    sub["seats"] = seats
        return record.state

    def _state_for_change(self, record: CustomerRecord) -> StateRecord:
        state = self._state(record)
        if state is None:
            state = record.state = StateRecord()
        return state

    # -- API operations (used by the HTTP layer) ---------------------------------------

    def api_list(self, query: ListQuery, version: str | None = None) -> bytes:
        with self.lock:
            org = self.organization_id
            window = plain_window(self._active, query, org)
            if window is None:
                key = query.filter_key()
                rows = self._cache.get(key)
                if rows is None:
                    rows = select(self._active, self._by_email, query, org)
                    if len(self._cache) >= _CACHE_SIZE:
                        self._cache.pop(next(iter(self._cache)))
                    self._cache[key] = rows
                start = (query.page - 1) * query.limit
                window = rows[start : start + query.limit], len(rows)
            items, total = window
            rendered = [self._customer_body(r, version) for r in items]
        return render_page(rendered, total, query.limit)

    def api_export(self, organization_ids: tuple[str, ...]) -> Iterator[bytes]:
        with self.lock:
            if organization_ids and self.organization_id not in organization_ids:
                rows: list[CustomerRecord] = []
            else:
                rows = list(self._active)
        return csv_chunks(rows, c.EXPORT_HEADER)

    def api_create(self, fields: dict[str, Any], version: str | None = None) -> bytes:
        with self.lock:
            errors = []
            email: str | None = fields.get("email")
            if email is not None and email.lower() in self._by_email:
                msg = "A customer with this email address already exists."
                errors.append(error(["body", "email"], msg, "value_error", email))
            external_id = fields.get("external_id")
            if external_id is not None and external_id in self._by_external:
                msg = "A customer with this external ID already exists."
                errors.append(error(["body", "external_id"], msg, "value_error", external_id))
            org = fields.get("organization_id")
            if org is not None and org != self.organization_id:
                msg = "Organization not found."
                errors.append(error(["body", "organization_id"], msg, "value_error", org))
            if errors:
                raise ValidationFailed(errors)
            tax_id = fields.get("tax_id")
            record = CustomerRecord(
                str(uuid.uuid4()),
                self._next_seq(),
                self._next_created_us(),
                email,
                name=fields.get("name"),
                external_id=external_id,
                billing_address=address_tuple(fields.get("billing_address")),
                tax_id=(tax_id[0], tax_id[1]) if tax_id else None,
                metadata=dict(fields.get("metadata") or {}),
            )
            if v.dated(version or self.api_version):
                record.extra = {**v.EXTRA_DEFAULTS, "type": fields.get("type") or "individual",
                                "locale": fields.get("locale")}  # fmt: skip
            self._index(record)
            body = self._customer_body(record, version)
            events = self._events(record, c.EVENT_CUSTOMER_CREATED, c.EVENT_CUSTOMER_STATE_CHANGED)
            if v.fields_of(record)["type"] == "team":  # Polar makes the owner member with it
                owner = fields.get("owner") or {"email": email, "name": record.name}
                events += self._add_member(record, dict(owner, role="owner"))[1]
        self._dispatch(events)
        return body

    def api_get(
        self, *, id: str | None = None, external_id: str | None = None, version: str | None = None
    ) -> bytes:
        with self.lock:
            record = self._live(id) if id is not None else self._live_external(external_id or "")
            return self._customer_body(record, version)

    def _update(self, record: CustomerRecord, fields: dict[str, Any], *, external: bool) -> bool:
        """Validate then apply an update like Polar; True when something changed."""
        errors = []
        email = fields.get("email")
        if (
            email is not None
            and email.lower() != (record.email or "").lower()
            and email.lower() in self._by_email
        ):
            msg = "A customer with this email address already exists."
            errors.append(error(["body", "email"], msg, "value_error", email))
        if external and "external_id" in fields:
            new = fields["external_id"]
            if record.external_id is not None and new != record.external_id:
                msg = "Customer external ID cannot be updated."
                errors.append(error(["body", "external_id"], msg, "value_error", new))
            elif record.external_id is None and new is not None and new in self._by_external:
                msg = "A customer with this external ID already exists."
                errors.append(error(["body", "external_id"], msg, "value_error", new))
        if fields.get("type") == "individual" and v.fields_of(record)["type"] == "team":
            msg = "Customer type can only be upgraded from individual to team."
            errors.append(error(["body", "type"], msg, "value_error", "individual"))
        if errors:
            raise ValidationFailed(errors)
        values = dict(fields)
        if values.get("type") is None:
            values.pop("type", None)
        if values.get("email") is None:
            values.pop("email", None)
        if "billing_address" in values:
            values["billing_address"] = address_tuple(values["billing_address"])
        if "tax_id" in values:
            tax_id = values["tax_id"]
            values["tax_id"] = (tax_id[0], tax_id[1]) if tax_id else None
        if "metadata" in values:
            values["metadata"] = dict(values["metadata"] or {})
        return self._assign(record, values)

    def _assign(self, record: CustomerRecord, values: dict[str, Any]) -> bool:
        current = v.fields_of(record)
        extras = {k: values.pop(k) for k in list(values) if k in v.EXTRA_DEFAULTS}
        extras = {k: value for k, value in extras.items() if current[k] != value}
        changes = {k: value for k, value in values.items() if getattr(record, k) != value}
        if not changes and not extras:
            return False
        if extras:
            record.extra = {**current, **extras}
        self._unindex_live(record)
        if "email" in changes and "email_verified" not in values:
            changes["email_verified"] = False
        for name, value in changes.items():
            setattr(record, name, value)
        if "modified_us" not in values:
            record.modified_us = max(now_us(), record.created_us + 1)
        self._by_id.pop(record.id)
        self._index(record)
        return True

    def api_update(
        self,
        fields: dict[str, Any],
        *,
        id: str | None = None,
        external_id: str | None = None,
        version: str | None = None,
    ) -> bytes:
        with self.lock:
            record = self._live(id) if id is not None else self._live_external(external_id or "")
            self._update(record, fields, external=id is not None)
            body = self._customer_body(record, version)
            events = self._events(record, c.EVENT_CUSTOMER_UPDATED, c.EVENT_CUSTOMER_STATE_CHANGED)
        self._dispatch(events)
        return body

    def _soft_delete(self, record: CustomerRecord) -> list[Event]:
        """Polar's delete: cancel subscriptions, revoke benefits, clear the external id."""
        self._unindex_live(record)
        moment = max(now_us(), record.created_us + 1)
        record.deleted_us = moment
        record.modified_us = moment
        record.external_id = None
        record.state = None
        events = self._events(record, c.EVENT_CUSTOMER_DELETED, c.EVENT_CUSTOMER_STATE_CHANGED)
        return events + self._drop_members(record)

    def api_delete(self, *, id: str | None = None, external_id: str | None = None) -> None:
        with self.lock:
            record = self._live(id) if id is not None else self._live_external(external_id or "")
            events = self._soft_delete(record)
        self._dispatch(events)

    def api_state(
        self, *, id: str | None = None, external_id: str | None = None, version: str | None = None
    ) -> dict:
        with self.lock:
            record = self._live(id) if id is not None else self._live_external(external_id or "")
            return self._state_payload(record, version)

    def api_balance(self, id: str) -> dict[str, Any]:
        with self.lock:
            record = self._live(id)
            return {"balance": record.balance, "currency": self.balance_currency}
