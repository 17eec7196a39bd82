"""Products and benefits of the 2026 versions: their JSON, the list/get operations, the handle.

A 2026 store that seeds customers also publishes the seeded :class:`~.state.Catalog`
(the products and benefits its customers' states reference); tests add and change more
with :meth:`CatalogMixin.add_product` and friends, announced as ``product.*`` and
``benefit.*`` webhook events. Mixed into :class:`~polar_sync.testing.store.PolarStore`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from . import versions as v
from .internals import Event, StoreInternals
from .listing import metadata_text
from .members import page_of
from .records import NotFound, iso, now_us, uuid4_from
from .seed import SEED_START_US
from .state import Catalog

_UNSET: Any = object()


def benefit_properties(benefit_type: str, rng: random.Random, meter_id: str | None) -> dict:
    """The ``Benefit*Properties`` of a benefit of that type (what its admin configured)."""
    if benefit_type == "discord":
        return {
            "guild_id": str(rng.getrandbits(60)),
            "role_id": str(rng.getrandbits(60)),
            "kick_member": False,
            "guild_token": "local-discord-token",
        }
    if benefit_type == "github_repository":
        return {"repository_owner": "acme", "repository_name": "pro", "permission": "pull"}
    if benefit_type == "downloadables":
        return {"archived": {}, "files": [uuid4_from(rng)]}
    if benefit_type == "license_keys":
        return {"prefix": None, "expires": None, "activations": None, "limit_usage": None}
    if benefit_type == "meter_credit":
        return {"units": 10_000, "rollover": False, "meter_id": meter_id or uuid4_from(rng)}
    return {"note": None}


def benefit_dict(
    *,
    id: str,
    type: str,
    description: str,
    organization_id: str,
    created_us: int,
    metadata: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    meter_id: str | None = None,
) -> dict[str, Any]:
    if properties is None:
        properties = benefit_properties(type, random.Random(id), meter_id)
    return {
        "id": id,
        "created_at": iso(created_us),
        "modified_at": None,
        "type": type,
        "description": description,
        "selectable": True,
        "deletable": True,
        "is_deleted": False,
        "organization_id": organization_id,
        "metadata": dict(metadata or {}),
        "visibility": "public",
        "properties": properties,
        "visibility_configurable": True,
    }


def _price_id(product_id: str) -> str:
    """The id of a product's one price, derived from the product's (deterministic)."""
    return str(uuid.UUID(int=uuid.UUID(product_id).int ^ 1, version=4))


def product_dict(
    *,
    id: str,
    name: str,
    organization_id: str,
    created_us: int,
    amount: int,
    currency: str,
    recurring_interval: str | None,
    benefits: list[dict[str, Any]],
    description: str | None = None,
    is_archived: bool = False,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    price = {
        "created_at": iso(created_us),
        "modified_at": None,
        "id": _price_id(id),
        "source": "catalog",
        "amount_type": "fixed",
        "price_currency": currency,
        "tax_behavior": None,
        "is_archived": is_archived,
        "product_id": id,
        "price_amount": amount,
    }
    return {
        "id": id,
        "created_at": iso(created_us),
        "modified_at": None,
        "trial_interval": None,
        "trial_interval_count": None,
        "name": name,
        "description": description,
        "visibility": "public",
        "recurring_interval": recurring_interval,
        "recurring_interval_count": 1 if recurring_interval else None,
        "meter_interval": None,
        "meter_interval_count": None,
        "is_recurring": recurring_interval is not None,
        "is_archived": is_archived,
        "organization_id": organization_id,
        "metadata": dict(metadata or {}),
        "prices": [price],
        "benefits": benefits,
        "medias": [],
        "attached_custom_fields": [],
    }


def catalog_dicts(catalog: Catalog, organization_id: str) -> tuple[dict, dict]:
    """The products and benefits (JSON by id) of a seeded catalog; deterministic."""
    meter_id = next(iter(catalog.meters), None)
    benefits = {
        b.id: benefit_dict(
            id=b.id,
            type=b.type,
            description=b.description,
            organization_id=organization_id,
            created_us=SEED_START_US,
            metadata=b.metadata,
            meter_id=meter_id,
        )
        for b in catalog.benefits.values()
    }
    products = {
        p.id: product_dict(
            id=p.id,
            name=p.name,
            organization_id=organization_id,
            created_us=SEED_START_US + i * 1_000_000,
            amount=p.amount,
            currency=p.currency,
            recurring_interval=p.recurring_interval,
            benefits=[benefits[b] for b in p.benefit_ids],
        )
        for i, p in enumerate(catalog.products)
    }
    return products, benefits


class CatalogMixin:
    """Products and benefits of the store (the API side and the test handle)."""

    def publish_catalog(self: StoreInternals) -> None:
        """Publish the seeded catalog's products and benefits (a 2026 store's seed does)."""
        with self.lock:
            products, benefits = catalog_dicts(self.catalog, self.organization_id)
            for key, value in benefits.items():
                self._benefits.setdefault(key, value)
            for key, value in products.items():
                self._products.setdefault(key, value)

    # -- API operations -----------------------------------------------------------------

    def api_products(self: StoreInternals, query: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            rows = [p for p in self._products.values() if _keep_product(p, query)]
            rows = _sorted(rows, query["sorting"], {"name": "name"})
            return page_of(v.copy(rows), query["page"], query["limit"])

    def api_benefits(self: StoreInternals, query: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            rows = [b for b in self._benefits.values() if _keep_benefit(b, query)]
            rows = _sorted(rows, query["sorting"], {"description": "description", "type": "type"})
            return page_of(v.copy(rows), query["page"], query["limit"])

    def api_product(self: StoreInternals, id: str) -> dict[str, Any]:
        with self.lock:
            if id not in self._products:
                raise NotFound(id)
            return v.copy(self._products[id])

    def api_benefit(self: StoreInternals, id: str) -> dict[str, Any]:
        with self.lock:
            if id not in self._benefits:
                raise NotFound(id)
            return v.copy(self._benefits[id])

    # -- the test handle ----------------------------------------------------------------

    def add_benefit(
        self: StoreInternals,
        type: str = "custom",
        description: str = "A benefit",
        *,
        id: str | None = None,
        metadata: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a benefit (``benefit.created``); returns its Benefit JSON."""
        item = benefit_dict(
            id=id or str(uuid.uuid4()),
            type=type,
            description=description,
            organization_id=self.organization_id,
            created_us=now_us(),
            metadata=metadata,
            properties=properties,
        )
        return self._catalog_put(self._benefits, item, "benefit.created")

    def update_benefit(self: StoreInternals, benefit_id: str, **fields: Any) -> dict[str, Any]:
        """Change ``description``, ``metadata``, ``properties``... (``benefit.updated``)."""
        return self._catalog_change(self._benefits, benefit_id, fields, "benefit.updated")

    def add_product(
        self: StoreInternals,
        name: str = "A product",
        *,
        id: str | None = None,
        amount: int = 1000,
        currency: str = "usd",
        recurring_interval: str | None = "month",
        benefit_ids: tuple[str, ...] | list[str] = (),
        description: str | None = None,
        is_archived: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a product with one fixed price and these benefits (``product.created``)."""
        with self.lock:
            benefits = [v.copy(self._benefits[b]) for b in benefit_ids]
            item = product_dict(
                id=id or str(uuid.uuid4()),
                name=name,
                organization_id=self.organization_id,
                created_us=now_us(),
                amount=amount,
                currency=currency,
                recurring_interval=recurring_interval,
                benefits=benefits,
                description=description,
                is_archived=is_archived,
                metadata=metadata,
            )
            return self._catalog_put(self._products, item, "product.created")

    def update_product(self: StoreInternals, product_id: str, **fields: Any) -> dict[str, Any]:
        """Change ``name``, ``description``, ``is_archived``, ``metadata``...
        (``product.updated``); archiving is ``update_product(id, is_archived=True)``."""
        return self._catalog_change(self._products, product_id, fields, "product.updated")

    def products(self: StoreInternals) -> list[dict[str, Any]]:
        with self.lock:
            return v.copy(list(self._products.values()))

    def benefits(self: StoreInternals) -> list[dict[str, Any]]:
        with self.lock:
            return v.copy(list(self._benefits.values()))

    def _catalog_put(self: StoreInternals, table: dict, item: dict, event: str) -> dict[str, Any]:
        with self.lock:
            if item["id"] in table:
                raise ValueError(f"duplicate id {item['id']}")
            table[item["id"]] = item
            events = self._catalog_events(event, item)
        self._dispatch(events)
        return v.copy(item)

    def _catalog_change(
        self: StoreInternals, table: dict, key: str, fields: dict[str, Any], event: str
    ) -> dict[str, Any]:
        with self.lock:
            item = table.get(key)
            if item is None:
                raise NotFound(key)
            unknown = set(fields) - set(item) - {"id", "created_at", "organization_id"}
            if unknown:
                raise TypeError(f"unknown fields: {sorted(unknown)}")
            item.update(fields, modified_at=iso(now_us()))
            events = self._catalog_events(event, item)
        self._dispatch(events)
        return v.copy(item)

    def _catalog_events(self: StoreInternals, event_type: str, item: dict) -> list[Event]:
        if not self.subscribers or not v.dated(self.api_version):
            return []
        return [(event_type, v.copy(item))]


def _keep_product(p: dict[str, Any], q: dict[str, Any]) -> bool:
    return (
        (not q["id"] or p["id"] in q["id"])
        and (not q["organization_id"] or p["organization_id"] in q["organization_id"])
        and (q["query"] is None or q["query"].lower() in p["name"].lower())
        and (q["is_archived"] is None or p["is_archived"] == q["is_archived"])
        and (q["is_recurring"] is None or p["is_recurring"] == q["is_recurring"])
        and (not q["benefit_id"] or any(b["id"] in q["benefit_id"] for b in p["benefits"]))
        and (not q["visibility"] or p["visibility"] in q["visibility"])
        and _metadata_match(p, q["metadata"])
    )


def _keep_benefit(b: dict[str, Any], q: dict[str, Any]) -> bool:
    return (
        (not q["id"] or b["id"] in q["id"])
        and b["id"] not in q["exclude_id"]
        and (not q["organization_id"] or b["organization_id"] in q["organization_id"])
        and (not q["type"] or b["type"] in q["type"])
        and (q["query"] is None or q["query"].lower() in b["description"].lower())
        and _metadata_match(b, q["metadata"])
    )


def _metadata_match(item: dict[str, Any], wanted: dict[str, list[str]]) -> bool:
    return all(metadata_text(item["metadata"].get(k)) in values for k, values in wanted.items())


def _sorted(rows: list[dict], sorting: tuple[str, ...], keys: dict[str, str]) -> list[dict]:
    for criterion in reversed(sorting):
        field = keys.get(criterion.lstrip("-"), "created_at")
        rows = sorted(rows, key=_sort_key(field), reverse=criterion[0] == "-")
    return rows


def _sort_key(field: str) -> Callable[[dict], str]:
    """Sorting on ``field``, a missing (None) value as the empty string."""
    return lambda row: row[field] or ""
