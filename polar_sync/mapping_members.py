"""Pure mapping of Polar's ``Member`` JSON (2026 API versions) to Member field values."""

from __future__ import annotations

from typing import Any

from .mapping import JSON, MappingError, _Reader

MEMBER_ROLES = ("owner", "billing_manager", "member")
# Columns copied from a Member payload; ``raw`` keeps everything.
MEMBER_FIELDS = (
    "id",
    "customer_id",
    "email",
    "name",
    "external_id",
    "role",
    "created_at",
    "modified_at",
    "raw",
)


def member_fields(payload: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.Member` row (``user`` not included)."""
    r = _Reader("member", payload)
    role = r.get("role", required=True)
    if role not in MEMBER_ROLES:
        raise r.fail(f"'role' is not one of {MEMBER_ROLES}: {role!r}")
    email = r.optional("email", str, "a string")
    if not email:
        raise r.fail("'email' is missing")
    external_id = r.get("external_id")
    return {
        "id": r.uuid("id"),
        "customer_id": r.uuid("customer_id"),
        "email": email,
        "name": r.optional("name", str, "a string"),
        "external_id": None if external_id in (None, "") else str(external_id),
        "role": role,
        "created_at": r.datetime("created_at", required=True),
        "modified_at": r.datetime("modified_at"),
        "raw": payload,
    }


__all__ = ["MEMBER_FIELDS", "MEMBER_ROLES", "MappingError", "member_fields"]
