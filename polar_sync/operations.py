"""Polar's customer operations, as methods of :class:`~polar_sync.client.PolarClient`.

Each builds its request from the contract (:mod:`polar_sync.wire`), sends it through
the client's HTTP plumbing (``_json`` / ``_request``: retries, errors, the token) and
checks the answer's shape. No HTTP library here: :mod:`polar_sync.client` owns that;
this mixin only says what each operation asks and expects. The CSV export, which
streams bytes, stays in the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from . import wire
from .exceptions import (
    PolarError,
    PolarNetworkError,
    PolarNotFoundError,
    PolarRateLimitError,
    PolarServerError,
)

logger = logging.getLogger("polar_sync.client")

JSON = dict[str, Any]


class CustomerOperations:
    """The operations; :class:`~polar_sync.client.PolarClient` provides what is declared here."""

    organization_id: str | None
    max_retries: int
    _json: Callable[..., Any]
    _request: Callable[..., Any]
    _backoff: Callable[[str, int, PolarError], None]
    iter_pages: Callable[..., Iterator[Any]]

    # ------------------------------------------------------------------ list

    def list(
        self,
        *,
        organization_id: str | Iterable[str] | None = None,
        email: str | None = None,
        query: str | None = None,
        page: int | None = None,
        limit: int | None = None,
        sorting: str | Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> JSON:
        """One page: ``{"items": [...], "pagination": {"total_count", "max_page"}}``."""
        params = wire.list_params(
            organization_id=organization_id or self.organization_id,
            email=email,
            query=query,
            page=page,
            limit=limit,
            sorting=sorting,
            metadata=metadata,
        )
        body = self._json("customers:list", "GET", "/v1/customers/", params=params)
        return wire.expect_list(body)

    def iter_customers(self, **filters: Any) -> Iterator[JSON]:
        """Every customer matching ``filters``, walking all pages."""
        for result in self.iter_pages(**filters):
            yield from result["items"]

    # ---------------------------------------------------------------- create

    def create(self, body: Mapping[str, Any]) -> JSON:
        """Create a customer; never creates two when a retry follows an ambiguous failure.

        A 429 means Polar did not process the request, so it is simply retried.
        A network error or a 5xx may have created the customer anyway: before
        trying again, look for it by external ID, else by email.
        """
        op = "customers:create"
        body = dict(body)
        if self.organization_id and not body.get("organization_id"):
            body["organization_id"] = self.organization_id
        attempt = 0
        while True:
            try:
                return wire.expect_customer(
                    op, self._json(op, "POST", "/v1/customers/", json=body, retry=False)
                )
            except PolarRateLimitError as exc:
                if attempt >= self.max_retries:
                    raise
                self._backoff(op, attempt, exc)
            except (PolarNetworkError, PolarServerError) as exc:
                if attempt >= self.max_retries:
                    raise
                existing = self._find_created(body)
                if existing is not None:
                    logger.info(
                        "%s: customer %s existed after an ambiguous failure", op, existing["id"]
                    )
                    return existing
                self._backoff(op, attempt, exc)
            attempt += 1

    def _find_created(self, body: Mapping[str, Any]) -> JSON | None:
        external_id = body.get("external_id")
        if external_id:
            try:
                return self.get_external(str(external_id))
            except PolarNotFoundError:
                return None
        email = body.get("email")
        if email:
            for customer in self.list(email=str(email), limit=1)["items"]:
                return customer
        return None

    # ------------------------------------------------------- by Polar id

    def get(self, customer_id: str) -> JSON:
        op = "customers:get"
        body = self._json(op, "GET", f"/v1/customers/{_seg(customer_id)}")
        return wire.expect_customer(op, body, customer_id=customer_id)

    def update(self, customer_id: str, body: Mapping[str, Any]) -> JSON:
        op = "customers:update"
        path = f"/v1/customers/{_seg(customer_id)}"
        answer = self._json(op, "PATCH", path, json=dict(body))
        return wire.expect_customer(op, answer, customer_id=customer_id)

    def delete(self, customer_id: str) -> None:
        self._request("customers:delete", "DELETE", f"/v1/customers/{_seg(customer_id)}").close()

    def get_state(self, customer_id: str) -> JSON:
        op = "customers:get_state"
        body = self._json(op, "GET", f"/v1/customers/{_seg(customer_id)}/state")
        return wire.expect_state(op, body, customer_id=customer_id)

    def get_balance(self, customer_id: str) -> JSON:
        op = "customers:get_balance"
        return wire.expect_balance(
            op, self._json(op, "GET", f"/v1/customers/{_seg(customer_id)}/balance")
        )

    # ------------------------------------------------------- by external id

    def get_external(self, external_id: str) -> JSON:
        op = "customers:get_external"
        path = f"/v1/customers/external/{_seg(external_id)}"
        return wire.expect_customer(op, self._json(op, "GET", path), external_id=external_id)

    def update_external(self, external_id: str, body: Mapping[str, Any]) -> JSON:
        op = "customers:update_external"
        path = f"/v1/customers/external/{_seg(external_id)}"
        answer = self._json(op, "PATCH", path, json=dict(body))
        return wire.expect_customer(op, answer, external_id=external_id)

    def delete_external(self, external_id: str) -> None:
        path = f"/v1/customers/external/{_seg(external_id)}"
        self._request("customers:delete_external", "DELETE", path).close()

    def get_state_external(self, external_id: str) -> JSON:
        op = "customers:get_state_external"
        path = f"/v1/customers/external/{_seg(external_id)}/state"
        return wire.expect_state(op, self._json(op, "GET", path), external_id=external_id)


def _seg(value: str) -> str:
    """A path segment, percent-encoded (external IDs are free text)."""
    if value is None or str(value) == "":
        raise ValueError("an id is required")
    return quote(str(value), safe="")
