"""List semantics: Polar's filters, sortings and page windows over the store's records.

Pure functions over the store's creation-ordered list and email index; the store calls
them under its lock and caches :func:`select`'s result until the next change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .records import CustomerRecord
from .validation import ListQuery


def metadata_text(value: Any) -> str | None:
    """A metadata value as Postgres' ``->>`` renders it, for ``metadata[...]`` filters."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _email_key(record: CustomerRecord) -> str:
    return record.email or ""  # a team customer may have no email


def _name_key(record: CustomerRecord) -> tuple[bool, str]:
    # NULLs last ascending, first descending, as in Postgres.
    return (record.name is None, record.name or "")


_SORT_KEYS: dict[str, Callable[[CustomerRecord], Any]] = {
    "created_at": CustomerRecord.order_key,
    "email": _email_key,
    "name": _name_key,
}


def plain_window(
    active: list[CustomerRecord], query: ListQuery, organization_id: str
) -> tuple[list[CustomerRecord], int] | None:
    """The page and total without filters, sorted by creation: a slice, no sort. None when
    the query needs :func:`select`."""
    if (
        query.email is not None
        or query.query
        or query.metadata
        or query.sorting not in (("created_at",), ("-created_at",))
        or (query.organization_ids and organization_id not in query.organization_ids)
    ):
        return None
    total = len(active)
    start = (query.page - 1) * query.limit
    if query.sorting[0] == "created_at":
        return active[start : start + query.limit], total
    high = total - start
    return (active[max(high - query.limit, 0) : high][::-1] if high > 0 else []), total


def select(
    active: list[CustomerRecord],
    by_email: dict[str, CustomerRecord],
    query: ListQuery,
    organization_id: str,
) -> list[CustomerRecord]:
    """Every live customer matching the query's filters, in the query's order."""
    rows = active
    if query.organization_ids and organization_id not in query.organization_ids:
        rows = []
    if query.email is not None:
        found = by_email.get(query.email.lower())
        rows = [found] if found is not None and rows else []
    if query.query:
        needle = query.query.lower()
        rows = [
            r
            for r in rows
            if (r.email is not None and needle in r.email.lower())
            or (r.name is not None and needle in r.name.lower())
            or (r.external_id is not None and needle in r.external_id.lower())
        ]
    for name, values in query.metadata:  # keys AND, values of one key OR
        rows = [r for r in rows if metadata_text(r.metadata.get(name)) in values]
    # Stable sorts from the last criterion to the first, over creation order.
    for criterion in reversed(query.sorting):
        key = _SORT_KEYS[criterion.lstrip("-")]
        rows = sorted(rows, key=key, reverse=criterion.startswith("-"))
    return rows


def render_page(items: list[bytes], total: int, limit: int) -> bytes:
    """``ListResource[Customer]`` JSON from the items' cached JSON."""
    max_page = -(-total // limit)
    tail = b'],"pagination":{"total_count":%d,"max_page":%d}}' % (total, max_page)
    return b'{"items":[' + b",".join(items) + tail
