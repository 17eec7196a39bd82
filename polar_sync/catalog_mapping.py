"""Pure functions from Polar's Product and Benefit JSON to the catalogue's field values.

No I/O (see :mod:`polar_sync.mapping`); a payload that cannot be mapped raises
:class:`~polar_sync.mapping.MappingError`.
"""

from __future__ import annotations

from typing import Any

from .mapping import JSON, _Reader

PRODUCT_FIELDS = (
    "id",
    "name",
    "description",
    "is_archived",
    "is_recurring",
    "recurring_interval",
    "visibility",
    "organization_id",
    "created_at",
    "modified_at",
    "metadata",
    "raw",
)
BENEFIT_FIELDS = (
    "id",
    "type",
    "description",
    "is_deleted",
    "selectable",
    "deletable",
    "visibility",
    "organization_id",
    "created_at",
    "modified_at",
    "metadata",
    "raw",
)


def _text(r: _Reader, field: str) -> str:
    return r.optional(field, str, "a string") or ""


def _required(r: _Reader, field: str) -> str:
    value = r.get(field, required=True)
    if not isinstance(value, str):
        raise r.fail(f"'{field}' is not a string: {value!r}")
    return value


def _common(r: _Reader) -> JSON:
    return {
        "id": r.uuid("id"),
        "organization_id": r.uuid("organization_id", null=True),
        "created_at": r.datetime("created_at", required=True),
        "modified_at": r.datetime("modified_at"),
        "metadata": r.object("metadata"),
        "raw": r.payload,
    }


def product_fields(payload: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.Product` row."""
    r = _Reader("product", payload)
    return {
        **_common(r),
        "name": _required(r, "name")[:255],
        "description": _text(r, "description"),
        "is_archived": bool(r.get("is_archived")),
        "is_recurring": bool(r.get("is_recurring")),
        "recurring_interval": _text(r, "recurring_interval")[:16],
        "visibility": _text(r, "visibility")[:16],
    }


def benefit_fields(payload: Any) -> JSON:
    """Field values for a :class:`~polar_sync.models.Benefit` row (``description`` is
    the benefit's display name in Polar)."""
    r = _Reader("benefit", payload)
    return {
        **_common(r),
        "type": _required(r, "type")[:32],
        "description": _required(r, "description")[:255],
        "is_deleted": bool(r.get("is_deleted")),
        "selectable": r.get("selectable") is not False,
        "deletable": r.get("deletable") is not False,
        "visibility": _text(r, "visibility")[:16],
    }
