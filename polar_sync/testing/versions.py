"""Polar's dated API versions: which one a request gets, and the 2026 shapes.

A server is configured with ``api_version``: ``"2025-10"`` plays Polar before dated
versions (no ``Polar-Version`` header read or sent, ``/balance`` served); any other value
is the version served when a request names none. A request naming a version answers in
it when Polar supports it (``2026-04``, ``2026-10``, ``2027-01``, the last with 2026-10's
shapes) and 404 ``{"detail": "Not Found"}`` on every route otherwise.

For the customer endpoints the 2026-04 and 2026-10 documents are equal but for the input
``tax_id`` (a string in 2026-10; 2026-04 also takes 2025-10's pair); a customer gains
``type``, ``billing_name``, ``locale``, ``default_payment_method_id`` and
``first_user_event_at``, and a state subscription ``seats`` and ``units``.
"""

from __future__ import annotations

import json
from typing import Any

from .records import CustomerRecord, StateRecord, address_dict, avatar_url, iso, to_us

ERA_2025 = "2025-10"
DEFAULT = "2026-04"
SUPPORTED: tuple[str, ...] = ("2026-04", "2026-10", "2027-01")
CONFIGURABLE: tuple[str, ...] = (ERA_2025, *SUPPORTED)
# The document (and shapes) each version answers with.
DOCUMENT: dict[str, str] = {ERA_2025: ERA_2025, "2026-04": "2026-04", "2026-10": "2026-10",
                            "2027-01": "2026-10"}  # fmt: skip
HEADER = "Polar-Version"
EXTRA_DEFAULTS: dict[str, Any] = {
    "type": "individual",
    "billing_name": None,
    "locale": None,
    "default_payment_method_id": None,
    "first_user_event_us": None,
}


def check_api_version(value: str) -> str:
    """``value`` if the local server can play it, else a ValueError naming the parameter."""
    if value not in CONFIGURABLE:
        raise ValueError(f"api_version must be one of {', '.join(CONFIGURABLE)}, not {value!r}")
    return value


def served_version(configured: str, requested: str | None) -> str | None:
    """The version a request is answered in; None: an unsupported one (404 everywhere)."""
    if configured == ERA_2025:
        return ERA_2025  # a server of that era knows no header
    if requested is None:
        return configured
    requested = requested.strip()
    return requested if requested in SUPPORTED else None


def dated(version: str) -> bool:
    """True for the dated (2026+) versions, False for the 2025-10 era."""
    return version != ERA_2025


def fields_of(record: CustomerRecord) -> dict[str, Any]:
    return record.extra if record.extra is not None else EXTRA_DEFAULTS


def customer_dict(record: CustomerRecord, organization_id: str) -> dict[str, Any]:
    """The 2026 Customer schema (CustomerIndividual or CustomerTeam), keys in Polar's order."""
    more = fields_of(record)
    return {
        "id": record.id,
        "created_at": iso(record.created_us),
        "modified_at": iso(record.modified_us),
        "metadata": dict(record.metadata),
        "external_id": record.external_id,
        "email": record.email,
        "email_verified": record.email_verified,
        "type": more["type"],
        "name": record.name,
        # Polar falls back to the customer's name when no billing name was set.
        "billing_name": more["billing_name"] if more["billing_name"] is not None else record.name,
        "billing_address": address_dict(record.billing_address),
        "tax_id": list(record.tax_id) if record.tax_id else None,
        "locale": more["locale"],
        "organization_id": organization_id,
        "default_payment_method_id": more["default_payment_method_id"],
        "deleted_at": iso(record.deleted_us),
        "first_user_event_at": iso(more["first_user_event_us"]),
        "avatar_url": avatar_url(record.email),
    }


def subscription_dict(sub: dict[str, Any]) -> dict[str, Any]:
    """A state subscription with ``seats`` and ``units`` (null unless seat/unit-based)."""
    data = dict(sub)
    data.setdefault("seats", None)
    data.setdefault("units", None)
    return data


def state_dict(
    record: CustomerRecord, organization_id: str, state: StateRecord | None
) -> dict[str, Any]:
    """The 2026 CustomerState (individual or team by ``type``); deep copies."""
    data = customer_dict(record, organization_id)
    avatar = data.pop("avatar_url")
    subscriptions = list(state.subscriptions.values()) if state else []
    data["active_subscriptions"] = json.loads(
        json.dumps([subscription_dict(s) for s in subscriptions])
    )
    data["granted_benefits"] = json.loads(json.dumps(list(state.grants.values()) if state else []))
    data["active_meters"] = json.loads(json.dumps(list(state.meters.values()) if state else []))
    data["avatar_url"] = avatar
    return data


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def copy(data: Any) -> Any:
    """A deep copy of JSON data (safe to hand out)."""
    return json.loads(json.dumps(data))


FIELDS_2026 = ("type", "billing_name", "locale", "default_payment_method_id",
                "first_user_event_at")  # fmt: skip


def handle_fields(fields: dict[str, Any]) -> dict[str, Any] | None:
    """The record's ``extra`` for the 2026 keywords of ``add_customer`` (None: none)."""
    unknown = set(fields) - set(FIELDS_2026)
    if unknown:
        raise TypeError(f"unknown customer fields: {sorted(unknown)}")
    if not fields:
        return None
    if fields.get("type", "individual") not in ("individual", "team"):
        raise ValueError("type must be 'individual' or 'team'")
    moment = fields.pop("first_user_event_at", None)
    fields["first_user_event_us"] = None if moment is None else to_us(moment)
    return {**EXTRA_DEFAULTS, **fields}
