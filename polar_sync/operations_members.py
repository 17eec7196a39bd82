"""Polar's member operations (API versions 2026-04 and later), mixed into
:class:`~polar_sync.client.PolarClient` like :mod:`.operations`.

``GET /v1/members/`` lists members of every team customer (filters: customer, external
customer ID, role); ``GET /v1/customers/{id}/members/{member_id}`` reads one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from . import wire
from .operations import _by_id, _segment

JSON = dict[str, Any]


class MemberOperations:
    """The operations; :class:`~polar_sync.client.PolarClient` provides what is declared here."""

    page_size: int
    _json: Callable[..., Any]

    def list_members(
        self,
        *,
        customer_id: str | None = None,
        external_customer_id: str | None = None,
        role: str | None = None,
        page: int | None = None,
        limit: int | None = None,
        sorting: str | list[str] | None = None,
    ) -> JSON:
        """One page: ``{"items": [Member...], "pagination": {"total_count", "max_page"}}``."""
        op = "members:list_members"
        params = wire.query_params(
            {
                "customer_id": customer_id,
                "external_customer_id": external_customer_id,
                "role": role,
                "page": page,
                "limit": limit,
                "sorting": sorting,
            }
        )
        return wire.expect_list(self._json(op, "GET", "/v1/members/", params=params), op)

    def iter_member_pages(self, *, start_page: int = 1, **filters: Any) -> Iterator[JSON]:
        """Every page of :meth:`list_members` from ``start_page`` on (``page_size`` each)."""
        page = start_page
        while True:
            result = self.list_members(page=page, limit=self.page_size, **filters)
            yield result
            if not result["items"] or page >= result["pagination"]["max_page"]:
                return
            page += 1

    def get_member(self, customer_id: str, member_id: str) -> JSON:
        """One member of a customer; a 404 with Polar's ``error`` is ``PolarNotFoundError``."""
        op = "customers:members:get"
        path = f"{_by_id(customer_id)}/members/{_segment(member_id)}"
        return wire.expect_member(op, self._json(op, "GET", path), member_id=member_id)
