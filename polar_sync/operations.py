"""Polar's customer operations, as methods of :class:`~polar_sync.client.PolarClient`.

Each says what it asks and what the answer must be (:mod:`polar_sync.wire`) and sends
it through the client's HTTP plumbing (``_json`` / ``_request``: retries, errors, the
token). No HTTP library here; the paging and the streamed CSV export stay in the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from . import wire
from .exceptions import (
    PolarEndpointNotAvailableError,
    PolarError,
    PolarNotFoundError,
    PolarRateLimitError,
    PolarTransientError,
)

logger = logging.getLogger("polar_sync.client")

JSON = dict[str, Any]


class CustomerOperations:
    """The operations; :class:`~polar_sync.client.PolarClient` provides what is declared here."""

    organization_id: str | None
    api_version: str | None
    max_retries: int
    _json: Callable[..., Any]
    _request: Callable[..., Any]
    _backoff: Callable[[int, PolarError], None]
    iter_pages: Callable[..., Iterator[Any]]

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
        params = wire.query_params(
            {
                "organization_id": organization_id or self.organization_id,
                "email": email,
                "query": query,
                "page": page,
                "limit": limit,
                "sorting": sorting,
                "metadata": metadata,
            }
        )
        body = self._json("customers:list", "GET", "/v1/customers/", params=params)
        return wire.expect_list(body)

    def iter_customers(self, **filters: Any) -> Iterator[JSON]:
        """Every customer matching ``filters``, walking all pages."""
        for result in self.iter_pages(**filters):
            yield from result["items"]

    # ------------------------------------------------------------------ create

    def create(self, body: Mapping[str, Any]) -> JSON:
        """Create a customer; never creates two when a retry follows an ambiguous failure.

        A 429 means Polar did not process the request, so it is simply retried.
        A network error or a 5xx may have created the customer anyway: before
        trying again, look for it by external ID, else by email.
        """
        op = "customers:create"
        body = wire.customer_input(body, self.api_version)
        if self.organization_id and not body.get("organization_id"):
            body["organization_id"] = self.organization_id
        attempt = 0
        while True:
            try:
                answer = self._json(op, "POST", "/v1/customers/", json=body, retry=False)
                return wire.expect_customer(op, answer)
            except PolarTransientError as exc:
                if attempt >= self.max_retries:
                    raise
                rate_limited = isinstance(exc, PolarRateLimitError)
                existing = None if rate_limited else self._find_created(body)
                if existing is not None:
                    logger.info("%s: customer %s existed after a failure", op, existing["id"])
                    return existing
                self._backoff(attempt, exc)
            attempt += 1

    def _find_created(self, body: Mapping[str, Any]) -> JSON | None:
        if body.get("external_id"):
            try:
                return self.get_external(str(body["external_id"]))
            except PolarNotFoundError:
                return None
        if body.get("email"):
            items = self.list(email=str(body["email"]), limit=1)["items"]
            return items[0] if items else None
        return None

    # ---------------------------------------------------------- one customer

    def get(self, customer_id: str) -> JSON:
        return self._customer("customers:get", "GET", _by_id(customer_id), customer_id=customer_id)

    def update(self, customer_id: str, body: Mapping[str, Any]) -> JSON:
        path, body = _by_id(customer_id), wire.customer_input(body, self.api_version)
        return self._customer("customers:update", "PATCH", path, body, customer_id=customer_id)

    def delete(self, customer_id: str) -> None:
        self._request("customers:delete", "DELETE", _by_id(customer_id)).close()

    def get_state(self, customer_id: str) -> JSON:
        path = f"{_by_id(customer_id)}/state"
        return self._customer("customers:get_state", "GET", path, customer_id=customer_id)

    def get_balance(self, customer_id: str) -> JSON:
        """The balance; only a server of the 2025-10 era (``api_version`` None) has it."""
        op = "customers:get_balance"
        if self.api_version:
            raise PolarEndpointNotAvailableError(
                f"API version {self.api_version} has no /balance; not asked", operation=op
            )
        return wire.expect_balance(op, self._json(op, "GET", f"{_by_id(customer_id)}/balance"))

    def get_external(self, external_id: str) -> JSON:
        path = _by_external(external_id)
        return self._customer("customers:get_external", "GET", path, external_id=external_id)

    def update_external(self, external_id: str, body: Mapping[str, Any]) -> JSON:
        op, path = "customers:update_external", _by_external(external_id)
        body = wire.customer_input(body, self.api_version)
        return self._customer(op, "PATCH", path, body, external_id=external_id)

    def delete_external(self, external_id: str) -> None:
        self._request("customers:delete_external", "DELETE", _by_external(external_id)).close()

    def get_state_external(self, external_id: str) -> JSON:
        op, path = "customers:get_state_external", f"{_by_external(external_id)}/state"
        return self._customer(op, "GET", path, external_id=external_id)

    # --------------------------------------------------------------- helpers

    def _customer(self, op: str, method: str, path: str, body: Any = None, **asked: str) -> JSON:
        """The customer (or state) answered: the one ``asked`` for, if given."""
        answer = self._json(op, method, path, json=None if body is None else dict(body))
        return wire.expect_customer(op, answer, **asked)


def _by_id(customer_id: str) -> str:
    return f"/v1/customers/{_segment(customer_id)}"


def _by_external(external_id: str) -> str:
    return f"/v1/customers/external/{_segment(external_id)}"


def _segment(value: str) -> str:
    """A path segment, percent-encoded (external IDs are free text)."""
    if value is None or str(value) == "":
        raise ValueError("an id is required")
    return quote(str(value), safe="")
