"""What travels over the wire, without the HTTP: query parameters in the contract's
styles, the shapes responses must have, and the exception each error answer means.

Pure functions, used by :mod:`polar_sync.client` (the one module that speaks HTTP).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .exceptions import (
    PolarAuthenticationError,
    PolarClientError,
    PolarEndpointNotAvailableError,
    PolarError,
    PolarNotFoundError,
    PolarPermissionError,
    PolarRateLimitError,
    PolarResponseError,
    PolarServerError,
    PolarValidationError,
)

JSON = dict[str, Any]


def is_last_page(result: JSON, page: int) -> bool:
    return not result["items"] or page >= int(result["pagination"].get("max_page") or 0)


def as_list(value: str | Iterable[Any] | None) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, int, float, bool)):
        return [value]
    return list(value)


def query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_params(
    *,
    organization_id: str | Iterable[str] | None = None,
    email: str | None = None,
    query: str | None = None,
    page: int | None = None,
    limit: int | None = None,
    sorting: str | Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """Query parameters in the contract's styles: repeated keys, deepObject metadata."""
    params: list[tuple[str, str]] = [("organization_id", str(o)) for o in as_list(organization_id)]
    if email is not None:
        params.append(("email", email))
    if query is not None:
        params.append(("query", query))
    if page is not None:
        params.append(("page", str(int(page))))
    if limit is not None:
        params.append(("limit", str(int(limit))))
    params.extend(("sorting", str(s)) for s in as_list(sorting))
    for key, value in (metadata or {}).items():
        params.extend((f"metadata[{key}]", query_value(v)) for v in as_list(value))
    return params


def retry_after(raw: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header, or None."""
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        # An HTTP-date is allowed by RFC 9110; Polar sends seconds, so treat anything
        # else as "unknown" and fall back to exponential backoff.
        return None


def error_for(operation: str, status: int, body: Any, retry_after_header: str | None) -> PolarError:
    """The exception for an error answer (``body`` is the decoded JSON, or None)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    kwargs: dict[str, Any] = {"operation": operation, "status_code": status}
    if status == 429:
        seconds = retry_after(retry_after_header)
        return PolarRateLimitError(
            f"rate limited; retry after {seconds if seconds is not None else '?'}s",
            retry_after=seconds,
            **kwargs,
        )
    if status >= 500:
        return PolarServerError(f"Polar answered {status}", **kwargs)
    if status == 401:
        return PolarAuthenticationError(
            f"the access token was refused: {detail or 'unauthorized'}", **kwargs
        )
    if status == 403:
        return PolarPermissionError(
            f"the access token lacks a permission: {detail or 'forbidden'}", **kwargs
        )
    if status == 404:
        if isinstance(body, dict) and "error" in body:
            return PolarNotFoundError(
                f"not found: {detail or body['error']}", detail=detail, **kwargs
            )
        return PolarEndpointNotAvailableError(
            "this endpoint does not exist on this server (API version?)", **kwargs
        )
    if status == 422:
        errors = detail if isinstance(detail, list) else []
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}"
            for e in errors
            if isinstance(e, dict)
        )
        return PolarValidationError(
            f"validation failed: {summary or detail or 'no detail'}", errors=errors, **kwargs
        )
    return PolarClientError(f"Polar answered {status}: {detail or ''}".rstrip(": "), **kwargs)


def _malformed(operation: str, what: str) -> PolarResponseError:
    return PolarResponseError(f"malformed response: {what}", operation=operation)


def expect_customer(
    operation: str,
    body: Any,
    *,
    customer_id: str | None = None,
    external_id: str | None = None,
) -> JSON:
    """``body`` as a customer object; with ``customer_id`` or ``external_id``, it must be
    the customer that was asked for (a server or proxy mixing up answers must not make
    the mirror store one customer's data under another's key)."""
    if not isinstance(body, dict):
        raise _malformed(operation, f"expected a customer object, got {type(body).__name__}")
    if not isinstance(body.get("id"), str):
        raise _malformed(operation, "the customer has no string 'id'")
    if customer_id is not None and not _same_id(body["id"], customer_id):
        raise _malformed(operation, f"asked for customer {customer_id}, got {body['id']}")
    if external_id is not None and body.get("external_id") != external_id:
        raise _malformed(
            operation,
            f"asked for external ID {external_id!r}, got {body.get('external_id')!r}",
        )
    return body


def _same_id(got: str, asked: str) -> bool:
    """UUIDs compare case-insensitively; anything else must match exactly."""
    try:
        return uuid.UUID(got) == uuid.UUID(asked)
    except ValueError:
        return got == asked


def expect_state(
    operation: str,
    body: Any,
    *,
    customer_id: str | None = None,
    external_id: str | None = None,
) -> JSON:
    body = expect_customer(operation, body, customer_id=customer_id, external_id=external_id)
    for key in ("active_subscriptions", "granted_benefits", "active_meters"):
        if not isinstance(body.get(key, []), list):
            raise _malformed(operation, f"'{key}' is not a list")
    return body


def expect_balance(operation: str, body: Any) -> JSON:
    if not isinstance(body, dict) or not isinstance(body.get("balance"), int):
        raise _malformed(operation, "expected {'balance': <integer cents>, 'currency': ...}")
    if isinstance(body["balance"], bool) or not isinstance(body.get("currency"), str):
        raise _malformed(operation, "expected {'balance': <integer cents>, 'currency': <string>}")
    return body


def expect_list(body: Any) -> JSON:
    op = "customers:list"
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise _malformed(op, "expected an object with an 'items' list")
    pagination = body.get("pagination")
    if not isinstance(pagination, dict) or not isinstance(pagination.get("max_page"), int):
        raise _malformed(op, "expected 'pagination' with an integer 'max_page'")
    for index, item in enumerate(body["items"]):
        if not isinstance(item, dict):
            raise _malformed(op, f"item {index} is not an object")
    return body
