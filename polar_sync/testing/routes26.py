"""The routes of the 2026 versions: the customer operations without ``/balance``, plus
payment methods, team members (``/v1/members/`` and under a customer), products and
benefits (read only), as the 2026-04 and 2026-10 documents list them."""

from __future__ import annotations

import re
from typing import TypedDict

from . import routes as r
from .inputs import (
    benefit_list_query,
    member_body,
    member_list_query,
    path_uuid,
    product_list_query,
)
from .members import page_of
from .routes import Answer, Operation, Routes, json_answer
from .store import PolarStore
from .validation import _positive_int


class CustomerKey(TypedDict, total=False):
    """Which customer a path names: by ``id`` or by ``external_id`` (one of them)."""

    id: str
    external_id: str


class MemberKey(TypedDict, total=False):
    """Which member a path names: by ``member_id`` or ``member_external_id`` (one of them)."""

    member_id: str
    member_external_id: str


def _customer(params: dict[str, str]) -> CustomerKey:
    if "id" in params:
        return {"id": path_uuid(params["id"], "id")}
    return {"external_id": params["external_id"]}


def _member_key(params: dict[str, str]) -> MemberKey:
    if "member_id" in params:
        return {"member_id": path_uuid(params["member_id"], "member_id")}
    return {"member_external_id": params["member_external_id"]}


def _members(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return json_answer(200, store.api_members(member_list_query(query)))


def _member_create(
    store: PolarStore, params: dict, query: dict, body: bytes, version: str
) -> Answer:
    ident = _customer(params)
    return json_answer(201, store.api_member_create(member_body(body, create=True), **ident))


def _member_get(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return json_answer(200, store.api_member(**_customer(params), **_member_key(params)))


def _member_update(
    store: PolarStore, params: dict, query: dict, body: bytes, version: str
) -> Answer:
    ident, key = _customer(params), _member_key(params)
    fields = member_body(body, create=False)
    return json_answer(200, store.api_member(**ident, **key, fields=fields))


def _member_delete(
    store: PolarStore, params: dict, query: dict, body: bytes, version: str
) -> Answer:
    store.api_member(**_customer(params), **_member_key(params), delete=True)
    return 204, "", b""


def _payment_methods(
    store: PolarStore, params: dict, query: dict, body: bytes, version: str
) -> Answer:
    errors: list = []
    page = _positive_int(query, "page", 1, errors)
    limit = _positive_int(query, "limit", 10, errors)
    ident = _customer(params)
    if errors:
        raise r.ValidationFailed(errors)
    store.api_get(**ident, version=version)  # 404 for an unknown customer
    return json_answer(200, page_of([], page, limit))  # the stand-in stores no cards


def _products(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return json_answer(200, store.api_products(product_list_query(query)))


def _product(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return json_answer(200, store.api_product(path_uuid(params["id"], "id")))


def _benefits(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return json_answer(200, store.api_benefits(benefit_list_query(query)))


def _benefit(store: PolarStore, params: dict, query: dict, body: bytes, version: str) -> Answer:
    return json_answer(200, store.api_benefit(path_uuid(params["id"], "id")))


def _member_ops(prefix: str) -> dict[str, tuple[str, Operation]]:
    return {
        "GET": (f"customers:members:get{prefix}", _member_get),
        "PATCH": (f"customers:members:update{prefix}", _member_update),
        "DELETE": (f"customers:members:delete{prefix}", _member_delete),
    }


_CUSTOMERS = tuple(route for route in r.ROUTES if not route[0].pattern.endswith("/balance"))
_EXT = r"/v1/customers/external/(?P<external_id>[^/]+)"
_ID = r"/v1/customers/(?P<id>[^/]+)"

ROUTES_2026: Routes = (
    *_CUSTOMERS[:4],  # list/create, export, external get/update/delete, external state
    (re.compile(_EXT + "/payment-methods"),
     {"GET": ("customers:list_payment_methods_external", _payment_methods)}),
    (re.compile(_EXT + "/members"),
     {"POST": ("customers:members:create_external", _member_create)}),
    (re.compile(_EXT + "/members/(?P<member_external_id>[^/]+)"), _member_ops("_external")),
    *_CUSTOMERS[4:],  # by id: get/update/delete, state
    (re.compile(_ID + "/payment-methods"),
     {"GET": ("customers:list_payment_methods", _payment_methods)}),
    (re.compile(_ID + "/members"), {"POST": ("customers:members:create", _member_create)}),
    (re.compile(_ID + "/members/(?P<member_id>[^/]+)"), _member_ops("")),
    (re.compile(r"/v1/members/?"), {"GET": ("members:list_members", _members)}),
    (re.compile(r"/v1/products/?"), {"GET": ("products:list", _products)}),
    (re.compile(r"/v1/products/(?P<id>[^/]+)"), {"GET": ("products:get", _product)}),
    (re.compile(r"/v1/benefits/?"), {"GET": ("benefits:list", _benefits)}),
    (re.compile(r"/v1/benefits/(?P<id>[^/]+)"), {"GET": ("benefits:get", _benefit)}),
)  # fmt: skip
