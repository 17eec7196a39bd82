"""Pure functions between Polar's JSON and the mirror's field values.

No I/O and no ORM queries: each function takes plain data and returns plain
data, so it can be tested on the contract's shapes alone. A payload that
cannot be mapped raises :class:`MappingError`, naming the object and the field.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_datetime

from .exceptions import PolarResponseError

JSON = dict[str, Any]
# The largest value an IntegerField (or PositiveIntegerField) holds on every database.
_MAX_INT = 2**31 - 1

# Columns copied from a Customer payload; ``raw`` keeps everything else.
CUSTOMER_FIELDS = (
    "id",
    "external_id",
    "email",
    "email_verified",
    "name",
    "billing_address",
    "billing_country",
    "tax_id",
    "metadata",
    "organization_id",
    "avatar_url",
    "type",
    "billing_name",
    "locale",
    "default_payment_method_id",
    "first_user_event_at",
    "created_at",
    "modified_at",
    "deleted_at",
    "raw",
)
CUSTOMER_TYPES = ("individual", "team")


class MappingError(PolarResponseError, ValueError):
    """A Polar payload lacks a required field or has one of the wrong type (an answer
    that cannot be understood; still a ``ValueError`` for older callers)."""

    def __init__(self, kind: str, object_id: Any, problem: str) -> None:
        self.kind = kind
        self.object_id = object_id
        self.problem = problem
        super().__init__(f"{kind} {object_id or '<no id>'}: {problem}")


class _Reader:
    """Reads one payload's fields, raising a :class:`MappingError` that names them."""

    def __init__(self, kind: str, payload: Any, *, parent: Any = None) -> None:
        if not isinstance(payload, dict):
            where = f"of customer {parent} " if parent is not None else ""
            raise MappingError(kind, None, f"{where}is not an object: {type(payload).__name__}")
        self.kind = kind
        self.payload: JSON = payload
        self.object_id = payload.get("id")

    def fail(self, problem: str) -> MappingError:
        return MappingError(self.kind, self.object_id, problem)

    def get(self, field: str, *, required: bool = False) -> Any:
        if required and field not in self.payload:
            raise self.fail(f"'{field}' is missing")
        return self.payload.get(field)

    def optional(self, field: str, kind: type, what: str) -> Any:
        """The value if it is a ``kind`` (null reads as None)."""
        value = self.get(field)
        if value is not None and not isinstance(value, kind):
            raise self.fail(f"'{field}' is not {what}: {value!r}")
        return value

    def choice(self, field: str, allowed: tuple[str, ...]) -> str | None:
        value = self.get(field)
        if value is not None and value not in allowed:
            raise self.fail(f"'{field}' is not one of {', '.join(allowed)}: {value!r}")
        return value

    def whole(self, field: str) -> int | None:
        """An integer or null (absent reads as None)."""
        value = self.get(field)
        if value is not None and (type(value) is not int or not -_MAX_INT <= value <= _MAX_INT):
            raise self.fail(f"'{field}' is not an integer: {value!r}")
        return value

    def datetime(self, field: str, *, required: bool = False) -> datetime | None:
        """Polar's ISO-8601 timestamps (``Z`` or an offset) as aware datetimes."""
        value = self.get(field, required=required)
        if value is None:
            return None
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise self.fail(f"'{field}' is not an ISO-8601 timestamp: {value!r}")
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    def uuid(self, field: str, *, null: bool = False) -> uuid.UUID | None:
        value = self.get(field, required=not null)
        if value is None and null:
            return None
        try:
            return uuid.UUID(str(value))
        except (TypeError, ValueError, AttributeError):
            raise self.fail(f"'{field}' is not a UUID: {value!r}") from None

    def object(self, field: str) -> dict[str, Any]:
        """A JSON object; null reads as ``{}``."""
        return self.optional(field, dict, "an object") or {}

    def number(self, field: str, *, integer: bool = False) -> float:
        value = self.get(field, required=True)
        kinds = int if integer else (int, float)
        if not isinstance(value, kinds) or isinstance(value, bool) or not math.isfinite(value):
            raise self.fail(
                f"'{field}' is not {'an integer' if integer else 'a finite number'}: {value!r}"
            )
        return value

    def list(self, field: str) -> list[Any]:
        return self.optional(field, list, "a list") or []


def customer_fields(payload: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.Customer` row (``user`` not included)."""
    r = _Reader("customer", payload)
    address = r.optional("billing_address", dict, "an object")
    tax_id = r.get("tax_id")
    if tax_id is not None and not (isinstance(tax_id, list) and len(tax_id) == 2):
        raise r.fail(f"'tax_id' is not a [value, format] pair: {tax_id!r}")
    external_id = r.get("external_id")
    return {
        "id": r.uuid("id"),
        "external_id": None if external_id in (None, "") else str(external_id),
        "email": r.optional("email", str, "a string"),  # null: a 2026 team customer
        "email_verified": bool(r.get("email_verified")),
        "name": r.get("name"),
        "billing_address": address,
        "billing_country": str((address or {}).get("country") or "")[:2],
        "tax_id": tax_id,
        "metadata": r.object("metadata"),
        "organization_id": r.uuid("organization_id", null=True),
        "avatar_url": r.get("avatar_url") or "",
        # 2026 API versions; a server of the 2025-10 era sends none of them (null).
        "type": r.choice("type", CUSTOMER_TYPES),
        "billing_name": r.optional("billing_name", str, "a string"),
        "locale": r.optional("locale", str, "a string"),
        "default_payment_method_id": r.uuid("default_payment_method_id", null=True),
        "first_user_event_at": r.datetime("first_user_event_at"),
        "created_at": r.datetime("created_at", required=True),
        "modified_at": r.datetime("modified_at"),
        "deleted_at": r.datetime("deleted_at"),
        "raw": payload,
    }


def subscription_fields(payload: Any, *, customer_id: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.StateSubscription` row."""
    r = _Reader("subscription", payload, parent=customer_id)
    return {
        "subscription_id": r.uuid("id"),
        "product_id": r.uuid("product_id"),
        "status": str(r.get("status", required=True)),
        "amount": r.number("amount", integer=True),
        "currency": str(r.get("currency", required=True)),
        "recurring_interval": str(r.get("recurring_interval") or ""),
        "current_period_start": r.datetime("current_period_start", required=True),
        "current_period_end": r.datetime("current_period_end"),
        "trial_start": r.datetime("trial_start"),
        "trial_end": r.datetime("trial_end"),
        "cancel_at_period_end": bool(r.get("cancel_at_period_end")),
        "canceled_at": r.datetime("canceled_at"),
        "started_at": r.datetime("started_at"),
        "ends_at": r.datetime("ends_at"),
        "discount_id": r.uuid("discount_id", null=True),
        "metadata": r.object("metadata"),
        "custom_field_data": r.object("custom_field_data"),
        "meters": r.list("meters"),
        "seats": r.whole("seats"),
        "units": r.whole("units"),
        "created_at": r.datetime("created_at", required=True),
        "modified_at": r.datetime("modified_at"),
    }


def benefit_grant_fields(payload: Any, *, customer_id: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.StateBenefitGrant` row."""
    r = _Reader("benefit grant", payload, parent=customer_id)
    return {
        "grant_id": r.uuid("id"),
        "benefit_id": r.uuid("benefit_id"),
        "benefit_type": str(r.get("benefit_type", required=True)),
        "benefit_metadata": r.object("benefit_metadata"),
        "properties": r.object("properties"),
        "granted_at": r.datetime("granted_at", required=True),
        "created_at": r.datetime("created_at", required=True),
        "modified_at": r.datetime("modified_at"),
    }


def meter_fields(payload: Any, *, customer_id: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.StateMeter` row."""
    r = _Reader("meter", payload, parent=customer_id)
    return {
        "customer_meter_id": r.uuid("id"),
        "meter_id": r.uuid("meter_id"),
        "consumed_units": units(r.number("consumed_units")),
        "credited_units": int(r.number("credited_units", integer=True)),
        "balance": units(r.number("balance")),
        "created_at": r.datetime("created_at", required=True),
        "modified_at": r.datetime("modified_at"),
    }


def units(value: float) -> Decimal:
    """A meter quantity, exact: 25 stays 25 (not 25.0) and past 2**53 nothing is rounded."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def state_rows(payload: Any) -> tuple[JSON, list[JSON], list[JSON], list[JSON]]:
    """A CustomerState payload split into (customer fields, subscriptions, grants, meters)."""
    customer = customer_fields(payload)
    r = _Reader("customer state", payload)
    cid = r.object_id
    subs, grants, meters = (
        r.list(key) for key in ("active_subscriptions", "granted_benefits", "active_meters")
    )
    return (
        customer,
        [subscription_fields(s, customer_id=cid) for s in subs],
        [benefit_grant_fields(g, customer_id=cid) for g in grants],
        [meter_fields(m, customer_id=cid) for m in meters],
    )


def balance_fields(payload: Any, *, customer_id: Any = None) -> JSON:
    """Field values for a :class:`~polar_sync.models.CustomerBalance` row."""
    if not isinstance(payload, dict):
        raise MappingError("balance", customer_id, "expected an object")
    balance = payload.get("balance")
    if not isinstance(balance, int) or isinstance(balance, bool):
        raise MappingError("balance", customer_id, f"'balance' is not an integer: {balance!r}")
    currency = payload.get("currency")
    if not isinstance(currency, str) or not currency:
        raise MappingError("balance", customer_id, f"'currency' is not a string: {currency!r}")
    # As sent: Polar's balance says "USD" where a subscription says "usd".
    return {"balance": balance, "currency": currency}


def count_field(value: Any) -> int | None:
    """A count Polar reports (a page's ``total_count``), or None when it is not one a
    progress bar can use or the column can hold (negative, too large, not an integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT:
        return None
    return value


def user_external_id(user: Any, field: str = "pk") -> str:
    """A local user's external ID in Polar: ``field`` (default the primary key) as a string."""
    return str(getattr(user, field))


def user_payload(user: Any) -> JSON:
    """The default Polar payload for a local user: email and full name."""
    get_full_name = getattr(user, "get_full_name", None)
    full_name = (get_full_name() or "").strip() if callable(get_full_name) else ""
    return {"email": getattr(user, "email", None) or None, "name": full_name or None}


def payload_held_by(raw: JSON | None, payload: JSON) -> bool:
    """Whether a customer's raw payload already holds every value of a push payload."""
    return raw is not None and all(raw.get(key) == value for key, value in payload.items())
