"""Compact in-memory records of the stand-in and their Polar JSON / CSV renderings.

A million customers must fit in a few gigabytes, so a customer is a slotted object with
timestamps as integer microseconds and the address as a tuple; JSON is rendered on demand
and cached on the record until the record changes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# RFC 4122 variant: the first hex digit of the fourth group is 8, 9, a or b.
_VARIANT = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))
ADDRESS_FIELDS: tuple[str, ...] = ("line1", "line2", "postal_code", "city", "state", "country")


def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int | None) -> str | None:
    """ISO-8601 UTC with a ``Z``, as Polar (pydantic) renders datetimes; None stays None.
    Fractional seconds are omitted when zero, as pydantic does."""
    if us is None:
        return None
    return (_NAIVE_EPOCH + timedelta(microseconds=us)).isoformat() + "Z"


def to_us(value: str | datetime | int) -> int:
    """Microseconds since the epoch from an ISO string, an aware datetime or an int."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def uuid4_from(rng: random.Random) -> str:
    """A uuid4-shaped string drawn from a seeded RNG (deterministic, unlike uuid.uuid4)."""
    h = rng.randbytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def avatar_url(email: str | None) -> str | None:
    if email is None:  # a team customer without an email
        return None
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"https://www.gravatar.com/avatar/{digest}?d=404"


class NotFound(LookupError):
    """No (live) customer, subscription or grant with that id."""


Address = tuple[str | None, str | None, str | None, str | None, str | None, str]


class StateRecord:
    """A customer's subscriptions, benefit grants and meters, as Polar JSON dicts by id."""

    __slots__ = ("grants", "meters", "subscriptions")

    def __init__(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.grants: dict[str, dict[str, Any]] = {}
        self.meters: dict[str, dict[str, Any]] = {}


class CustomerRecord:
    """One customer. ``state`` is None (nothing), an int (seeded: generated when first
    needed from that RNG seed) or a :class:`StateRecord`."""

    __slots__ = (
        "balance",
        "billing_address",
        "cached_json",
        "created_us",
        "deleted_us",
        "email",
        "email_verified",
        "external_id",
        "extra",
        "id",
        "metadata",
        "modified_us",
        "name",
        "seq",
        "state",
        "tax_id",
    )

    def __init__(  # seeding passes everything positionally, for speed
        self,
        id: str,
        seq: int,
        created_us: int,
        email: str | None,  # a 2026 team customer may have none
        modified_us: int | None = None,
        deleted_us: int | None = None,
        email_verified: bool = False,
        name: str | None = None,
        external_id: str | None = None,
        billing_address: Address | None = None,
        tax_id: tuple[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
        balance: int = 0,
        state: StateRecord | int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.seq = seq
        self.created_us = created_us
        self.modified_us = modified_us
        self.deleted_us = deleted_us
        self.email = email
        self.email_verified = email_verified
        self.name = name
        self.external_id = external_id
        self.billing_address = billing_address
        self.tax_id = tax_id
        self.metadata = metadata if metadata is not None else {}
        self.balance = balance
        self.state = state
        # The 2026 versions' fields (type, billing_name, locale, default_payment_method_id,
        # first_user_event_us); None: an individual customer with none of them set.
        self.extra = extra
        self.cached_json: bytes | None = None

    def order_key(self) -> tuple[int, int]:
        return (self.created_us, self.seq)


def address_dict(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return dict(zip(ADDRESS_FIELDS, address, strict=True))


def address_tuple(value: dict[str, Any] | None) -> Address | None:
    if value is None:
        return None
    return tuple(value.get(name) for name in ADDRESS_FIELDS)  # type: ignore[return-value]


def customer_dict(record: CustomerRecord, organization_id: str) -> dict[str, Any]:
    """The Customer schema, keys in Polar's order."""
    return {
        "id": record.id,
        "created_at": iso(record.created_us),
        "modified_at": iso(record.modified_us),
        "metadata": dict(record.metadata),
        "external_id": record.external_id,
        "email": record.email,
        "email_verified": record.email_verified,
        "name": record.name,
        "billing_address": address_dict(record.billing_address),
        "tax_id": list(record.tax_id) if record.tax_id else None,
        "organization_id": organization_id,
        "deleted_at": iso(record.deleted_us),
        "avatar_url": avatar_url(record.email),
    }


_CONSTANTS = {None: "null", True: "true", False: "false"}


def _js(value: Any) -> str:
    """One JSON value; strings and constants (the usual cases) skip the encoder."""
    if value.__class__ is str:
        return encode_basestring(value)
    if value is None or value is True or value is False:
        return _CONSTANTS[value]
    return _ENCODER.encode(value)


def customer_json(record: CustomerRecord, organization_id: str) -> bytes:
    """Compact JSON of the Customer, equal to ``customer_dict`` but rendered directly
    (lists are served a hundred customers at a time); cached on the record, which the store
    clears on every change."""
    cached = record.cached_json
    if cached is not None:
        return cached
    address = record.billing_address
    if address is None:
        address_text = "null"
    else:
        line1, line2, postal_code, city, state, country = map(_js, address)
        address_text = (
            f'{{"line1":{line1},"line2":{line2},"postal_code":{postal_code},"city":{city},'
            f'"state":{state},"country":{country}}}'
        )
    tax_id = record.tax_id
    tax_text = "null" if tax_id is None else f"[{_js(tax_id[0])},{_js(tax_id[1])}]"
    text = (
        f'{{"id":{_js(record.id)},"created_at":"{iso(record.created_us)}",'
        f'"modified_at":{_js(iso(record.modified_us))},'
        f'"metadata":{_ENCODER.encode(record.metadata) if record.metadata else "{}"},'
        f'"external_id":{_js(record.external_id)},"email":{_js(record.email)},'
        f'"email_verified":{_js(record.email_verified)},"name":{_js(record.name)},'
        f'"billing_address":{address_text},"tax_id":{tax_text},'
        f'"organization_id":{_js(organization_id)},"deleted_at":{_js(iso(record.deleted_us))},'
        f'"avatar_url":"{avatar_url(record.email)}"}}'
    )
    cached = record.cached_json = text.encode()
    return cached


def state_dict(
    record: CustomerRecord, organization_id: str, state: StateRecord | None
) -> dict[str, Any]:
    """The CustomerState schema: the customer, then its active subscriptions, granted
    benefits and active meters (deep copies, safe to hand out)."""
    data = customer_dict(record, organization_id)
    avatar = data.pop("avatar_url")
    if state is None:
        data["active_subscriptions"] = []
        data["granted_benefits"] = []
        data["active_meters"] = []
    else:
        # ``seats`` / ``units`` are the 2026 versions' (see versions.py): not in 2025-10.
        subscriptions = [
            {k: v for k, v in sub.items() if k not in ("seats", "units")}
            if "seats" in sub or "units" in sub
            else sub
            for sub in state.subscriptions.values()
        ]
        data["active_subscriptions"] = json.loads(json.dumps(subscriptions))
        data["granted_benefits"] = json.loads(json.dumps(list(state.grants.values())))
        data["active_meters"] = json.loads(json.dumps(list(state.meters.values())))
    data["avatar_url"] = avatar
    return data


def csv_chunks(records: Iterable[CustomerRecord], header: Iterable[str]) -> Iterator[bytes]:
    """Polar's customer export, a chunk of rows at a time (metadata as JSON)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, record in enumerate(records, start=1):
        address = record.billing_address or (None, None, None, None, None, None)
        line1, line2, postal_code, city, state, country = address
        writer.writerow(
            (
                record.id,
                record.external_id,
                iso(record.created_us),
                record.email,
                record.name,
                record.tax_id[0] if record.tax_id else None,
                line1,
                line2,
                city,
                state,
                postal_code,
                country,
                json.dumps(record.metadata, ensure_ascii=False),
            )
        )
        if count % 2000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
