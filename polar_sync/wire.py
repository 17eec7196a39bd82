"""What travels over the wire, without the HTTP: query parameters in the contract's
styles, the shapes answers must have, and the exception each error answer means.

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


def query_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query parameters in the contract's styles: None is left out, a list repeats its
    key, a mapping is a deepObject (``metadata[plan]=pro``), a boolean is ``true``."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, Mapping):
            pairs += query_params({f"{key}[{k}]": v for k, v in value.items()})
        elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
            for item in value:
                pairs += query_params({key: item})
        elif value is not None:
            pairs.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    return pairs


def error_for(
    operation: str,
    status: int,
    body: Any,
    retry_after_header: str | None,
    *,
    api_version: str | None = None,
) -> PolarError:
    """The exception for an error answer (``body`` is the decoded JSON, or None;
    ``api_version``: the ``Polar-Version`` the request named, for the message)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    kwargs: dict[str, Any] = {"operation": operation, "status_code": status}
    if status == 429:
        try:
            seconds: float | None = max(0.0, float(retry_after_header or ""))
        except ValueError:
            # RFC 9110 allows an HTTP-date; Polar sends seconds, so anything else is
            # "unknown" and the client falls back to exponential backoff.
            seconds = None
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
        # Polar's answer to an unknown route, and to every route of a version it does
        # not support: never "not found" (nothing is deleted or created on it).
        version = f"API version {api_version!r}" if api_version else "the 2025-10 era API"
        return PolarEndpointNotAvailableError(
            f"no such route on this server (404 without Polar's 'error' field): the server "
            f"may not support {version} (POLAR_SYNC['API_VERSION']), or lacks this endpoint",
            **kwargs,
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


def customer_input(body: Mapping[str, Any], api_version: str | None) -> JSON:
    """A create/update body as ``api_version`` takes it: ``tax_id`` is a
    ``[value, format]`` pair for a server of the 2025-10 era, the value alone in 2026+."""
    body = dict(body)
    tax_id = body.get("tax_id")
    if api_version and isinstance(tax_id, (list, tuple)) and tax_id:
        body["tax_id"] = tax_id[0]
    return body


def _malformed(operation: str, what: str) -> PolarResponseError:
    return PolarResponseError(f"malformed response: {what}", operation=operation)


def expect_customer(
    operation: str,
    body: Any,
    *,
    customer_id: str | None = None,
    external_id: str | None = None,
) -> JSON:
    """``body`` as a customer (or customer state) object; with ``customer_id`` or
    ``external_id``, it must be the customer asked for (a server or proxy mixing up
    answers must not make the mirror store one customer's data under another's key)."""
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
    for key in ("active_subscriptions", "granted_benefits", "active_meters"):
        if not isinstance(body.get(key, []), list):
            raise _malformed(operation, f"'{key}' is not a list")
    return body


def _same_id(got: str, asked: str) -> bool:
    """UUIDs compare case-insensitively; anything else must match exactly."""
    try:
        return uuid.UUID(got) == uuid.UUID(asked)
    except ValueError:
        return got == asked


def expect_object(operation: str, body: Any, *, object_id: str) -> JSON:
    """``body`` as the object (product, benefit...) asked for by ``object_id``."""
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise _malformed(operation, "expected an object with a string 'id'")
    if not _same_id(body["id"], object_id):
        raise _malformed(operation, f"asked for {object_id}, got {body['id']}")
    return body


def expect_balance(operation: str, body: Any) -> JSON:
    balance = body.get("balance") if isinstance(body, dict) else None
    if not isinstance(balance, int) or isinstance(balance, bool):
        raise _malformed(operation, "expected {'balance': <integer cents>, 'currency': ...}")
    if not isinstance(body.get("currency"), str):
        raise _malformed(operation, "expected {'balance': <integer cents>, 'currency': <string>}")
    return body


def expect_list(body: Any, operation: str = "customers:list") -> JSON:
    op = operation
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise _malformed(op, "expected an object with an 'items' list")
    pagination = body.get("pagination")
    if not isinstance(pagination, dict) or not isinstance(pagination.get("max_page"), int):
        raise _malformed(op, "expected 'pagination' with an integer 'max_page'")
    for index, item in enumerate(body["items"]):
        if not isinstance(item, dict):
            raise _malformed(op, f"item {index} is not an object")
    return body


def expect_member(operation: str, body: Any, *, member_id: str | None = None) -> JSON:
    """``body`` as a Member object (the one asked for, when ``member_id`` is given)."""
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise _malformed(operation, "expected a member object with a string 'id'")
    if member_id is not None and not _same_id(body["id"], member_id):
        raise _malformed(operation, f"asked for member {member_id}, got {body['id']}")
    return body
