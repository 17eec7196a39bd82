"""The test handle: arrange and inspect the stand-in's world without going through HTTP.

Mixed into :class:`~polar_sync.testing.store.PolarStore`; every method takes the store's
lock, returns plain JSON-shaped dicts (copies) and announces its change to subscribers.
Unlike the API, the handle does not validate values: it can build states Polar's API
would refuse to create, which is what tests of odd data need. It only keeps the store
consistent (unique ids, emails and external ids among live customers).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from . import constants as c
from . import state as st
from .internals import StoreInternals
from .members import seed_teams
from .records import (
    CustomerRecord,
    NotFound,
    address_tuple,
    iso,
    now_us,
    to_us,
)
from .requestlog import RequestRecord
from .seed import seed_records
from .versions import FIELDS_2026, dated, handle_fields

_UNSET: Any = object()
Timestamp = str | datetime | int


class ArrangeMixin:
    """Methods of the handle (``server.store``)."""

    _catalog: st.Catalog | None = None

    # -- customers -----------------------------------------------------------------------

    def add_customer(
        self: StoreInternals,
        *,
        email: str | None = None,
        name: str | None = None,
        external_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        billing_address: dict[str, Any] | None = None,
        tax_id: list[str] | tuple[str, str] | None = None,
        email_verified: bool = False,
        id: str | None = None,
        created_at: Timestamp | None = None,
        modified_at: Timestamp | None = None,
        balance: int = 0,
        deleted: bool = False,
        **fields_2026: Any,
    ) -> dict[str, Any]:
        """Add a customer with any field values; returns it as Polar's Customer JSON (of
        the store's version).

        ``email`` defaults to a unique ``customer-<n>@example.com`` (a team keeps none);
        ``created_at`` to now (after every existing customer); ``deleted=True`` adds it
        already soft-deleted. The 2026 fields are keywords too: ``type`` ("individual" or
        "team"), ``billing_name``, ``locale``, ``default_payment_method_id``,
        ``first_user_event_at``.
        """
        extra = handle_fields(fields_2026)
        with self.lock:
            seq = self._next_seq()
            if email is None and (extra or {}).get("type") != "team":
                email = f"customer-{seq}@example.com"
            if not deleted:
                if email is not None and email.lower() in self._by_email:
                    raise ValueError(f"a live customer already has the email {email!r}")
                if external_id is not None and external_id in self._by_external:
                    raise ValueError(f"a live customer already has external_id {external_id!r}")
            created = to_us(created_at) if created_at is not None else self._next_created_us()
            record = CustomerRecord(
                id or str(uuid.uuid4()),
                seq,
                created,
                email,
                modified_us=to_us(modified_at) if modified_at is not None else None,
                email_verified=email_verified,
                name=name,
                external_id=None if deleted else external_id,
                billing_address=address_tuple(billing_address),
                tax_id=(tax_id[0], tax_id[1]) if tax_id else None,
                metadata=dict(metadata or {}),
                balance=balance,
                extra=extra,
            )
            if deleted:
                record.deleted_us = max(now_us(), created + 1)
            self._index(record)
            events = self._events(record, c.EVENT_CUSTOMER_CREATED, c.EVENT_CUSTOMER_STATE_CHANGED)
            data = self._customer_payload(record, self.api_version)
        self._dispatch(events)
        return data

    def get_customer(self: StoreInternals, customer_id: str) -> dict[str, Any] | None:
        """A customer by id, deleted ones included (``deleted_at`` set); None if unknown."""
        with self.lock:
            record = self._by_id.get(customer_id)
            return self._customer_payload(record, self.api_version) if record else None

    def get_customer_by_external_id(
        self: StoreInternals, external_id: str
    ) -> dict[str, Any] | None:
        with self.lock:
            record = self._by_external.get(external_id)
            return self._customer_payload(record, self.api_version) if record else None

    def customers(self: StoreInternals, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every live customer (and deleted ones if asked), oldest first."""
        with self.lock:
            records = list(self._active)
            if include_deleted:
                records += [r for r in self._by_id.values() if r.deleted_us is not None]
                records.sort(key=CustomerRecord.order_key)
            return [self._customer_payload(r, self.api_version) for r in records]

    def update_customer(self: StoreInternals, customer_id: str, **fields: Any) -> dict[str, Any]:
        """Set fields of a live customer directly (``email``, ``name``, ``external_id``,
        ``metadata``, ``billing_address``, ``tax_id``, ``email_verified``, ``modified_at``,
        and the 2026 fields of :meth:`add_customer`). Bumps ``modified_at`` unless given."""
        allowed = {
            "email", "name", "external_id", "metadata", "billing_address", "tax_id",
            "email_verified", "modified_at", *FIELDS_2026,
        }  # fmt: skip
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"unknown customer fields: {sorted(unknown)}")
        with self.lock:
            record = self._live(customer_id)
            values = dict(fields)
            if "billing_address" in values:
                values["billing_address"] = address_tuple(values["billing_address"])
            if values.get("tax_id") is not None:
                values["tax_id"] = (values["tax_id"][0], values["tax_id"][1])
            if "modified_at" in values:
                values["modified_us"] = to_us(values.pop("modified_at"))
            if "first_user_event_at" in values:
                moment = values.pop("first_user_event_at")
                values["first_user_event_us"] = None if moment is None else to_us(moment)
            email = values.get("email")
            if (
                email is not None
                and email.lower() != (record.email or "").lower()
                and email.lower() in self._by_email
            ):
                raise ValueError(f"a live customer already has the email {email!r}")
            ext = values.get("external_id")
            if ext is not None and ext != record.external_id and ext in self._by_external:
                raise ValueError(f"a live customer already has external_id {ext!r}")
            self._assign(record, values)
            events = self._events(record, c.EVENT_CUSTOMER_UPDATED, c.EVENT_CUSTOMER_STATE_CHANGED)
            data = self._customer_payload(record, self.api_version)
        self._dispatch(events)
        return data

    def delete_customer(self: StoreInternals, customer_id: str) -> dict[str, Any]:
        """Soft-delete like Polar's DELETE; returns the deleted customer."""
        with self.lock:
            record = self._live(customer_id)
            events = self._soft_delete(record)
            data = self._customer_payload(record, self.api_version)
        self._dispatch(events)
        return data

    # -- state ---------------------------------------------------------------------------

    def get_state(self: StoreInternals, customer_id: str) -> dict[str, Any]:
        """CustomerState of a customer (deleted ones too: their lists are empty)."""
        with self.lock:
            record = self._by_id.get(customer_id)
            if record is None:
                raise NotFound(customer_id)
            return self._state_payload(record, self.api_version)

    def get_balance(self: StoreInternals, customer_id: str) -> dict[str, Any]:
        with self.lock:
            record = self._by_id.get(customer_id)
            if record is None:
                raise NotFound(customer_id)
            return {"balance": record.balance, "currency": self.balance_currency}

    def set_balance(self: StoreInternals, customer_id: str, cents: int) -> None:
        """Set the customer's balance in cents (positive: credit)."""
        with self.lock:
            self._live(customer_id).balance = cents

    def start_subscription(
        self: StoreInternals,
        customer_id: str,
        *,
        product_id: str | None = None,
        amount: int = 1000,
        currency: str = "usd",
        recurring_interval: str = "month",
        status: str = "active",
        meters: Sequence[str | dict[str, Any]] = (),
        metadata: dict[str, Any] | None = None,
        discount_id: str | None = None,
        started_at: Timestamp | None = None,
    ) -> dict[str, Any]:
        """Give the customer an active (or trialing) subscription; returns it.

        ``meters`` lists meter ids, or dicts with ``meter_id`` and optionally
        ``consumed_units``, ``credited_units``, ``amount``.
        """
        now = now_us()
        started = to_us(started_at) if started_at is not None else now
        sub_meters = []
        for item in meters:
            spec: dict[str, Any] = {"meter_id": item} if isinstance(item, str) else dict(item)
            sub_meters.append(
                st.subscription_meter(
                    meter_id=spec["meter_id"],
                    id=str(uuid.uuid4()),
                    now=now,
                    consumed_units=spec.get("consumed_units", 0),
                    credited_units=spec.get("credited_units", 0),
                    amount=spec.get("amount", 0),
                )
            )
        sub = st.subscription(
            id=str(uuid.uuid4()),
            now=now,
            product_id=product_id or str(uuid.uuid4()),
            amount=amount,
            currency=currency,
            recurring_interval=recurring_interval,
            status=status,
            started_us=started,
            meters=sub_meters,
            metadata=metadata,
            discount_id=discount_id,
        )
        with self.lock:
            record = self._live(customer_id)
            self._state_for_change(record).subscriptions[sub["id"]] = sub
            events = self._events(record, c.EVENT_CUSTOMER_STATE_CHANGED)
            result = dict(sub)
        self._dispatch(events)
        return result

    def cancel_subscription(
        self: StoreInternals, customer_id: str, subscription_id: str, *, at_period_end: bool = False
    ) -> dict[str, Any]:
        """Cancel now (it leaves ``active_subscriptions``) or at the period's end (it stays,
        with ``cancel_at_period_end``, ``canceled_at`` and ``ends_at`` set)."""
        with self.lock:
            record = self._live(customer_id)
            state = self._state_for_change(record)
            if subscription_id not in state.subscriptions:
                raise NotFound(subscription_id)
            sub = state.subscriptions[subscription_id]
            moment = iso(now_us())
            sub.update(modified_at=moment, canceled_at=moment)
            if at_period_end:
                sub.update(cancel_at_period_end=True, ends_at=sub["current_period_end"])
            else:
                sub.update(ends_at=moment)
                del state.subscriptions[subscription_id]
            events = self._events(record, c.EVENT_CUSTOMER_STATE_CHANGED)
            result = dict(sub)
        self._dispatch(events)
        return result

    def grant_benefit(
        self: StoreInternals,
        customer_id: str,
        benefit_type: str = "custom",
        *,
        benefit_id: str | None = None,
        properties: dict[str, Any] | None = None,
        benefit_metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Grant a benefit of any BenefitType; ``properties`` default to realistic ones of
        that type's BenefitGrant*Properties schema. Returns the grant."""
        if benefit_type not in c.BENEFIT_TYPES:
            raise ValueError(f"benefit_type must be one of {c.BENEFIT_TYPES}")
        if properties is None:
            properties = st.default_properties(benefit_type, random.Random())
        item = st.grant(
            id=str(uuid.uuid4()),
            now=now_us(),
            benefit_id=benefit_id or str(uuid.uuid4()),
            benefit_type=benefit_type,
            properties=properties,
            benefit_metadata=benefit_metadata,
        )
        with self.lock:
            record = self._live(customer_id)
            self._state_for_change(record).grants[item["id"]] = item
            events = self._events(record, c.EVENT_CUSTOMER_STATE_CHANGED)
            result = dict(item)
        self._dispatch(events)
        return result

    def revoke_benefit(self: StoreInternals, customer_id: str, grant_or_benefit_id: str) -> None:
        """Revoke the grant with that id, or every grant of the benefit with that id."""
        with self.lock:
            record = self._live(customer_id)
            state = self._state_for_change(record)
            doomed = [
                key
                for key, item in state.grants.items()
                if grant_or_benefit_id in (key, item["benefit_id"])
            ]
            if not doomed:
                raise NotFound(grant_or_benefit_id)
            for key in doomed:
                del state.grants[key]
            events = self._events(record, c.EVENT_CUSTOMER_STATE_CHANGED)
        self._dispatch(events)

    def set_meter(
        self: StoreInternals,
        customer_id: str,
        meter_id: str | None = None,
        *,
        consumed_units: float = 0,
        credited_units: int = 0,
    ) -> dict[str, Any]:
        """Create or update one of the customer's active meters; ``balance`` follows."""
        meter_id = meter_id or str(uuid.uuid4())
        now = now_us()
        with self.lock:
            record = self._live(customer_id)
            state = self._state_for_change(record)
            previous = state.meters.get(meter_id)
            item = st.meter(
                id=previous["id"] if previous else str(uuid.uuid4()),
                now=now,
                meter_id=meter_id,
                consumed_units=consumed_units,
                credited_units=credited_units,
                created_us=to_us(previous["created_at"]) if previous else now,
            )
            state.meters[meter_id] = item
            events = self._events(record, c.EVENT_CUSTOMER_STATE_CHANGED)
            result = dict(item)
        self._dispatch(events)
        return result

    # -- seeding and the request log ----------------------------------------------------------

    def seed(
        self: StoreInternals, n: int = 1000, seed: int = 0, *, teams: bool | None = None
    ) -> None:
        """Add ``n`` realistic customers, the same for the same seed (seed.py); no events.

        ``teams`` (default: in a 2026 store) also turns about one in ten into a team with
        members (members.seed_teams) and publishes the catalog's products and benefits; a
        2025-10 store's customers stay exactly those of ``seed_records``.
        """
        with self.lock:
            if self._catalog is None:
                self._catalog = st.Catalog.generate(seed)
            records = seed_records(
                n=n,
                seed=seed,
                first_seq=self._seq + 1,
                taken_emails=self._by_email,
                taken_external=self._by_external,
            )
            members = []
            if teams if teams is not None else dated(self.api_version):
                members = seed_teams(records, seed)
                self.publish_catalog()
            self._seq += n
            self._bulk_index(records)
            self._members.update((m["id"], m) for m in members)

    @property
    def requests(self: StoreInternals) -> list[RequestRecord]:
        """The requests the API served, oldest first (method, path, query, status...)."""
        return self.log.requests

    @property
    def request_counts(self: StoreInternals) -> Counter[str]:
        """Requests served by operationId, e.g. ``store.request_counts["customers:list"]``."""
        return self.log.request_counts

    @property
    def status_counts(self: StoreInternals) -> Counter[int]:
        return self.log.status_counts

    def reset_requests(self: StoreInternals) -> None:
        self.log.reset_requests()
