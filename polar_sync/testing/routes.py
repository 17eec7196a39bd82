"""The local Polar server's routes: each operation of the contract, over the store.

An operation takes the store, the path parameters, the query and the body, validates
them as Polar does (:mod:`.validation`) and answers ``(status, content type, body)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from .inputs import customer_body
from .store import PolarStore
from .validation import (
    ValidationFailed,
    uuid_errors,
    validate_customer_body,
    validate_export_query,
    validate_list_query,
)
from .versions import dated

JSON = "application/json"
Answer = tuple[int, str, bytes | Iterator[bytes]]
# (store, path parameters, query, body, the API version served) -> answer
Operation = Callable[[PolarStore, dict[str, str], dict[str, list[str]], bytes, str], Answer]


def json_answer(status: int, data: Any) -> Answer:
    """A JSON answer, compact as Polar writes it."""
    return status, JSON, json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _ident(params: dict[str, str]) -> dict[str, str]:
    """Path parameters as store keywords; a malformed customer id is a 422."""
    if "id" in params:
        errors = uuid_errors(params["id"], ["path", "id"])
        if errors:
            raise ValidationFailed(errors)
        return {"id": params["id"]}
    return {"external_id": params["external_id"]}


def _customer_body(body: bytes, kind: str, version: str) -> dict[str, Any]:
    if dated(version):
        return customer_body(body, kind=kind, version=version)
    return validate_customer_body(body, kind=kind)


def _list(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return 200, JSON, store.api_list(validate_list_query(query), version)


def _create(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return 201, JSON, store.api_create(_customer_body(body, "create", version), version)


def _export(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    chunks = store.api_export(validate_export_query(query))
    return 200, "text/csv; charset=utf-8", chunks


def _get(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return 200, JSON, store.api_get(**_ident(params), version=version)


def _update(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    ident = _ident(params)
    kind = "update" if "id" in ident else "update_external"
    fields = _customer_body(body, kind, version)
    return 200, JSON, store.api_update(fields, **ident, version=version)


def _delete(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    store.api_delete(**_ident(params))
    return 204, "", b""


def _state(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return json_answer(200, store.api_state(**_ident(params), version=version))


def _balance(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return json_answer(200, store.api_balance(**_ident(params)))


Routes = tuple[tuple[re.Pattern[str], dict[str, tuple[str, Operation]]], ...]

# (path pattern, {method: (operationId, operation)}); first match wins, as in FastAPI.
# The 2025-10 era's table; the 2026 versions' is routes26.ROUTES_2026.
ROUTES: Routes = (
    (re.compile(r"/v1/customers/?"), {"GET": ("customers:list", _list),
                                     "POST": ("customers:create", _create)}),
    (re.compile(r"/v1/customers/export"), {"GET": ("customers:export", _export)}),
    (re.compile(r"/v1/customers/external/(?P<external_id>[^/]+)"), {
        "GET": ("customers:get_external", _get),
        "PATCH": ("customers:update_external", _update),
        "DELETE": ("customers:delete_external", _delete),
    }),
    (re.compile(r"/v1/customers/external/(?P<external_id>[^/]+)/state"),
     {"GET": ("customers:get_state_external", _state)}),
    (re.compile(r"/v1/customers/(?P<id>[^/]+)"), {
        "GET": ("customers:get", _get),
        "PATCH": ("customers:update", _update),
        "DELETE": ("customers:delete", _delete),
    }),
    (re.compile(r"/v1/customers/(?P<id>[^/]+)/state"), {"GET": ("customers:get_state", _state)}),
    (re.compile(r"/v1/customers/(?P<id>[^/]+)/balance"),
     {"GET": ("customers:get_balance", _balance)}),
)  # fmt: skip
