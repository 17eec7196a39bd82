"""Polar's read-only catalogue operations (2026 API versions), as methods of
:class:`~polar_sync.client.PolarClient`: ``GET /v1/products/``, ``/v1/products/{id}``,
``/v1/benefits/``, ``/v1/benefits/{id}``. Paging, retries, the budget and the
translation of errors are the client's; the token needs ``products:read`` and
``benefits:read``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import wire
from .operations import _segment

JSON = dict[str, Any]


class CatalogOperations:
    """The operations; :class:`~polar_sync.client.PolarClient` provides what is declared here."""

    organization_id: str | None
    _json: Callable[..., Any]
    iter_pages: Callable[..., Iterator[Any]]

    def list_products(
        self,
        *,
        page: int | None = None,
        limit: int | None = None,
        sorting: str | Iterable[str] | None = None,
        organization_id: str | Iterable[str] | None = None,
        is_archived: bool | None = None,
    ) -> JSON:
        """One page of products (archived ones too, unless ``is_archived`` says)."""
        return self._catalog_page(
            "products:list",
            "/v1/products/",
            page=page,
            limit=limit,
            sorting=sorting,
            organization_id=organization_id,
            is_archived=is_archived,
        )

    def list_benefits(
        self,
        *,
        page: int | None = None,
        limit: int | None = None,
        sorting: str | Iterable[str] | None = None,
        organization_id: str | Iterable[str] | None = None,
    ) -> JSON:
        """One page of benefits (Polar lists no deleted benefit)."""
        return self._catalog_page(
            "benefits:list",
            "/v1/benefits/",
            page=page,
            limit=limit,
            sorting=sorting,
            organization_id=organization_id,
        )

    def iter_products(self, **filters: Any) -> Iterator[JSON]:
        for result in self.iter_pages(lister=self.list_products, **filters):
            yield from result["items"]

    def iter_benefits(self, **filters: Any) -> Iterator[JSON]:
        for result in self.iter_pages(lister=self.list_benefits, **filters):
            yield from result["items"]

    def get_product(self, product_id: str) -> JSON:
        op = "products:get"
        answer = self._json(op, "GET", f"/v1/products/{_segment(product_id)}")
        return wire.expect_object(op, answer, object_id=product_id)

    def get_benefit(self, benefit_id: str) -> JSON:
        op = "benefits:get"
        answer = self._json(op, "GET", f"/v1/benefits/{_segment(benefit_id)}")
        return wire.expect_object(op, answer, object_id=benefit_id)

    def _catalog_page(self, op: str, path: str, **params: Any) -> JSON:
        params["organization_id"] = params["organization_id"] or self.organization_id
        body = self._json(op, "GET", path, params=wire.query_params(params))
        return wire.expect_list(body, operation=op)
