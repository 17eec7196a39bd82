"""Pure functions between Polar's JSON and the mirror's field values.

No I/O and no ORM queries: each function takes plain data and returns plain
data, so it can be tested on the contract's shapes alone. A payload that
cannot be mapped raises :class:`MappingError`, naming the object and the field.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

JSON = dict[str, Any]

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
    "created_at",
    "modified_at",
    "deleted_at",
    "raw",
)


class MappingError(ValueError):
    """A Polar payload lacks a required field or has one of the wrong type."""

    def __init__(self, kind: str, object_id: Any, problem: str) -> None:
        self.kind = kind
        self.object_id = object_id
        self.problem = problem
        super().__init__(f"{kind} {object_id or '<no id>'}: {problem}")


def to_datetime(value: Any, *, kind: str, object_id: Any, field: str) -> datetime | None:
    """Polar's ISO-8601 timestamps (``Z`` or an offset) to aware datetimes; null stays None."""
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise MappingError(kind, object_id, f"'{field}' is not an ISO-8601 timestamp: {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _uuid(
    value: Any, *, kind: str, object_id: Any, field: str, null: bool = False
) -> uuid.UUID | None:
    if value is None and null:
        return None
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise MappingError(kind, object_id, f"'{field}' is not a UUID: {value!r}") from None


def _required(payload: JSON, field: str, *, kind: str, object_id: Any) -> Any:
    if field not in payload:
        raise MappingError(kind, object_id, f"'{field}' is missing")
    return payload[field]


def _dict(value: Any, *, kind: str, object_id: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(kind, object_id, f"'{field}' is not an object: {value!r}")
    return value


def customer_fields(payload: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.Customer` row (``user`` not included)."""
    kind = "customer"
    if not isinstance(payload, dict):
        raise MappingError(kind, None, f"expected an object, got {type(payload).__name__}")
    cid = payload.get("id")
    pk = _uuid(cid, kind=kind, object_id=cid, field="id")
    address = payload.get("billing_address")
    if address is not None and not isinstance(address, dict):
        raise MappingError(kind, cid, f"'billing_address' is not an object: {address!r}")
    tax_id = payload.get("tax_id")
    if tax_id is not None and not (isinstance(tax_id, list) and len(tax_id) == 2):
        raise MappingError(kind, cid, f"'tax_id' is not a [value, format] pair: {tax_id!r}")
    email = payload.get("email")
    if email is not None and not isinstance(email, str):
        raise MappingError(kind, cid, f"'email' is not a string: {email!r}")
    external_id = payload.get("external_id")
    return {
        "id": pk,
        "external_id": None if external_id in (None, "") else str(external_id),
        "email": email,
        "email_verified": bool(payload.get("email_verified", False)),
        "name": payload.get("name"),
        "billing_address": address,
        "billing_country": str((address or {}).get("country") or "")[:2],
        "tax_id": tax_id,
        "metadata": _dict(payload.get("metadata"), kind=kind, object_id=cid, field="metadata"),
        "organization_id": _uuid(
            payload.get("organization_id"),
            kind=kind,
            object_id=cid,
            field="organization_id",
            null=True,
        ),
        "avatar_url": payload.get("avatar_url") or "",
        "created_at": to_datetime(
            _required(payload, "created_at", kind=kind, object_id=cid),
            kind=kind,
            object_id=cid,
            field="created_at",
        ),
        "modified_at": to_datetime(
            payload.get("modified_at"), kind=kind, object_id=cid, field="modified_at"
        ),
        "deleted_at": to_datetime(
            payload.get("deleted_at"), kind=kind, object_id=cid, field="deleted_at"
        ),
        "raw": payload,
    }


def subscription_fields(payload: Any, *, customer_id: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.StateSubscription` row."""
    kind = "subscription"
    if not isinstance(payload, dict):
        raise MappingError(kind, None, f"of customer {customer_id} is not an object")
    sid = payload.get("id")

    def dt(field: str, required: bool = False) -> datetime | None:
        value = (
            _required(payload, field, kind=kind, object_id=sid) if required else payload.get(field)
        )
        return to_datetime(value, kind=kind, object_id=sid, field=field)

    amount = _required(payload, "amount", kind=kind, object_id=sid)
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise MappingError(kind, sid, f"'amount' is not an integer: {amount!r}")
    meters = payload.get("meters") or []
    if not isinstance(meters, list):
        raise MappingError(kind, sid, f"'meters' is not a list: {meters!r}")
    return {
        "subscription_id": _uuid(sid, kind=kind, object_id=sid, field="id"),
        "product_id": _uuid(
            _required(payload, "product_id", kind=kind, object_id=sid),
            kind=kind,
            object_id=sid,
            field="product_id",
        ),
        "status": str(_required(payload, "status", kind=kind, object_id=sid)),
        "amount": amount,
        "currency": str(_required(payload, "currency", kind=kind, object_id=sid)),
        "recurring_interval": str(payload.get("recurring_interval") or ""),
        "current_period_start": dt("current_period_start", required=True),
        "current_period_end": dt("current_period_end"),
        "trial_start": dt("trial_start"),
        "trial_end": dt("trial_end"),
        "cancel_at_period_end": bool(payload.get("cancel_at_period_end", False)),
        "canceled_at": dt("canceled_at"),
        "started_at": dt("started_at"),
        "ends_at": dt("ends_at"),
        "discount_id": _uuid(
            payload.get("discount_id"), kind=kind, object_id=sid, field="discount_id", null=True
        ),
        "metadata": _dict(payload.get("metadata"), kind=kind, object_id=sid, field="metadata"),
        "custom_field_data": _dict(
            payload.get("custom_field_data"), kind=kind, object_id=sid, field="custom_field_data"
        ),
        "meters": meters,
        "created_at": dt("created_at", required=True),
        "modified_at": dt("modified_at"),
    }


def benefit_grant_fields(payload: Any, *, customer_id: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.StateBenefitGrant` row."""
    kind = "benefit grant"
    if not isinstance(payload, dict):
        raise MappingError(kind, None, f"of customer {customer_id} is not an object")
    gid = payload.get("id")
    return {
        "grant_id": _uuid(gid, kind=kind, object_id=gid, field="id"),
        "benefit_id": _uuid(
            _required(payload, "benefit_id", kind=kind, object_id=gid),
            kind=kind,
            object_id=gid,
            field="benefit_id",
        ),
        "benefit_type": str(_required(payload, "benefit_type", kind=kind, object_id=gid)),
        "benefit_metadata": _dict(
            payload.get("benefit_metadata"), kind=kind, object_id=gid, field="benefit_metadata"
        ),
        "properties": _dict(
            payload.get("properties"), kind=kind, object_id=gid, field="properties"
        ),
        "granted_at": to_datetime(
            _required(payload, "granted_at", kind=kind, object_id=gid),
            kind=kind,
            object_id=gid,
            field="granted_at",
        ),
        "created_at": to_datetime(
            _required(payload, "created_at", kind=kind, object_id=gid),
            kind=kind,
            object_id=gid,
            field="created_at",
        ),
        "modified_at": to_datetime(
            payload.get("modified_at"), kind=kind, object_id=gid, field="modified_at"
        ),
    }


def meter_fields(payload: Any, *, customer_id: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.StateMeter` row."""
    kind = "meter"
    if not isinstance(payload, dict):
        raise MappingError(kind, None, f"of customer {customer_id} is not an object")
    mid = payload.get("id")

    def number(field: str) -> float:
        value = _required(payload, field, kind=kind, object_id=mid)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise MappingError(kind, mid, f"'{field}' is not a number: {value!r}")
        return value

    return {
        "customer_meter_id": _uuid(mid, kind=kind, object_id=mid, field="id"),
        "meter_id": _uuid(
            _required(payload, "meter_id", kind=kind, object_id=mid),
            kind=kind,
            object_id=mid,
            field="meter_id",
        ),
        "consumed_units": float(number("consumed_units")),
        "credited_units": int(number("credited_units")),
        "balance": float(number("balance")),
        "created_at": to_datetime(
            _required(payload, "created_at", kind=kind, object_id=mid),
            kind=kind,
            object_id=mid,
            field="created_at",
        ),
        "modified_at": to_datetime(
            payload.get("modified_at"), kind=kind, object_id=mid, field="modified_at"
        ),
    }


def state_rows(payload: Any) -> tuple[JSON, list[JSON], list[JSON], list[JSON]]:
    """A CustomerState payload split into (customer fields, subscriptions, grants, meters)."""
    customer = customer_fields(payload)
    cid = payload.get("id")
    lists = []
    for key in ("active_subscriptions", "granted_benefits", "active_meters"):
        value = payload.get(key) or []
        if not isinstance(value, list):
            raise MappingError("customer state", cid, f"'{key}' is not a list")
        lists.append(value)
    subs, grants, meters = lists
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
    return {"balance": balance, "currency": currency.lower()}


def user_external_id(user: Any, field: str = "pk") -> str:
    """A local user's external ID in Polar: ``field`` (default the primary key) as a string."""
    return str(getattr(user, field))


def user_payload(user: Any) -> JSON:
    """The default Polar payload for a local user: email and full name."""
    full_name = ""
    get_full_name = getattr(user, "get_full_name", None)
    if callable(get_full_name):
        full_name = (get_full_name() or "").strip()
    payload: JSON = {"email": getattr(user, "email", None) or None}
    payload["name"] = full_name or None
    return payload
