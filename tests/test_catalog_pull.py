"""The products and benefits pull against the local Polar server, at each version."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.utils import timezone

from polar_sync.catalog_mapping import benefit_fields, product_fields
from polar_sync.client import PolarClient
from polar_sync.exceptions import PolarServerError
from polar_sync.models import Benefit, Product, RequestBudget, SyncRun
from polar_sync.services import catalog_pull
from polar_sync.services.budget import Budget
from polar_sync.testing.members import NotPermitted

pytestmark = pytest.mark.django_db


def names(model) -> dict[str, str]:
    field = "name" if model is Product else "description"
    return {str(pk): name for pk, name in model.objects.values_list("pk", field)}


@pytest.mark.parametrize("version", ["2026-04", "2026-10"])
def test_pull_mirrors_every_product_and_benefit_with_names(dated_polar, version):
    polar = dated_polar(version, customers=10)
    products, benefits = polar.store.products(), polar.store.benefits()
    assert len(products) == 6 and len(benefits) == 6  # the seeded catalog
    run = catalog_pull()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert names(Product) == {p["id"]: p["name"] for p in products}
    assert names(Benefit) == {b["id"]: b["description"] for b in benefits}
    # Pages of 2: 3 of products, 3 of benefits, each request within the budget.
    assert (run.pages, run.requests, run.created, run.total_count) == (6, 6, 12, 12)
    counts = polar.store.request_counts
    assert (counts["products:list"], counts["benefits:list"]) == (3, 3)
    budget = RequestBudget.objects.get()  # drawn from the budget every worker shares
    assert budget.tokens < Budget.from_settings().capacity
    pro = Product.objects.get(name="Pro yearly")
    assert (pro.is_recurring, pro.recurring_interval, pro.is_archived) == (True, "year", False)
    assert pro.raw == next(p for p in products if p["name"] == "Pro yearly")
    assert Benefit.objects.get(description="License key").type == "license_keys"

    again = catalog_pull()
    assert (again.created, again.updated, again.unchanged, again.deleted) == (0, 0, 12, 0)


def test_a_change_in_polar_is_mirrored_by_the_next_pull(dated_polar):
    polar = dated_polar(customers=5)
    catalog_pull()
    product = polar.store.products()[0]
    polar.store.update_product(product["id"], name="Renamed", is_archived=True)
    run = catalog_pull()
    assert run.updated == 1
    row = Product.objects.get(pk=product["id"])
    assert (row.name, row.is_archived) == ("Renamed", True)


def test_an_item_gone_from_a_complete_walk_is_kept_and_marked_gone(dated_polar):
    polar = dated_polar(customers=5)
    catalog_pull()
    benefit = polar.store.benefits()[0]["id"]
    product = polar.store.products()[0]["id"]
    # Polar no longer lists them, and answers its own 404 for each.
    del polar.store._benefits[benefit]
    del polar.store._products[product]
    run = catalog_pull()
    assert run.deleted == 2 and run.status == SyncRun.Status.SUCCEEDED
    assert Benefit.objects.get(pk=benefit).is_deleted  # kept: old grants keep their name
    assert Product.objects.get(pk=product).is_archived
    assert polar.store.request_counts["benefits:get"] == 1
    assert catalog_pull().deleted == 0  # not asked again


def test_an_unlisted_item_polar_still_has_is_rewritten_not_marked(dated_polar):
    polar = dated_polar(customers=5)
    catalog_pull()
    benefit = polar.store.benefits()[0]
    # The walk misses it (a page boundary moved), but GET finds it.
    original = polar.store.api_benefits

    def without(query):
        page = original(query)
        page["items"] = [b for b in page["items"] if b["id"] != benefit["id"]]
        return page

    polar.store.api_benefits = without
    run = catalog_pull()
    assert run.deleted == 0
    assert not Benefit.objects.get(pk=benefit["id"]).is_deleted


def test_a_partial_walk_marks_nothing_gone(dated_polar, monkeypatch):
    polar = dated_polar(customers=5)
    catalog_pull()
    del polar.store._products[polar.store.products()[0]["id"]]
    original = PolarClient.list_products

    def failing(self, **kwargs):
        if kwargs.get("page") == 2:
            raise PolarServerError("Polar answered 503", status_code=503)
        return original(self, **kwargs)

    monkeypatch.setattr(PolarClient, "list_products", failing)
    run = catalog_pull()
    assert run.status == SyncRun.Status.FAILED
    assert not Product.objects.filter(is_archived=True).exists()


def test_a_404_without_polars_error_field_marks_nothing_gone(dated_polar):
    # A server of the 2025-10 era has no catalogue routes: 404 {"detail": "Not Found"}.
    dated_polar("2025-10", api_version="2026-04")
    Product.objects.create(synced_at=timezone.now(), **product_fields(_product()))
    Benefit.objects.create(synced_at=timezone.now(), **benefit_fields(_benefit()))
    run = catalog_pull()
    assert run.status == SyncRun.Status.PARTIAL and run.endpoint_missing
    assert "products:list: no such route on this server" in run.error
    assert (run.deleted, Product.objects.get().is_archived, Benefit.objects.get().is_deleted) == (
        0,
        False,
        False,
    )


def test_a_404_without_error_on_the_confirming_get_marks_nothing(dated_polar):
    polar = dated_polar(customers=5)
    catalog_pull()
    gone = polar.store.benefits()[0]["id"]
    del polar.store._benefits[gone]

    route = polar._route

    def without_get(method, path, version):  # as a proxy or a version mix-up answers
        if path.startswith("/v1/benefits/") and path != "/v1/benefits/":
            return None, None, {}  # an unknown route: 404 {"detail": "Not Found"}
        return route(method, path, version)

    polar._route = without_get
    run = catalog_pull()
    assert run.endpoint_missing and run.deleted == 0
    assert not Benefit.objects.get(pk=gone).is_deleted


def test_a_403_is_recorded_once_and_the_rest_goes_on(dated_polar, caplog):
    polar = dated_polar(customers=5)

    def forbidden(query):
        raise NotPermitted("You don't have the permission to do this.")

    polar.store.api_products = forbidden
    with caplog.at_level(logging.INFO, logger="polar_sync.sync"):
        run = catalog_pull()
    assert run.status == SyncRun.Status.PARTIAL
    assert "products names unavailable: the access token lacks products:read" in run.error
    assert not Product.objects.exists()  # the names stay absent
    assert Benefit.objects.count() == 6  # the benefits were still pulled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "products:read" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="polar_sync.sync"):
        again = catalog_pull()
    assert "products:read" in again.error
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # once


def test_no_catalogue_on_the_2025_10_api_and_no_request(dated_polar, caplog):
    polar = dated_polar("2025-10", api_version=None)
    with caplog.at_level(logging.INFO, logger="polar_sync.sync"):
        assert catalog_pull() is None
    assert "no products or benefits" in caplog.text
    assert sum(polar.store.request_counts.values()) == 0
    assert not SyncRun.objects.exists()


def _product() -> dict:
    return {
        "id": str(uuid.uuid4()),
        "name": "Old plan",
        "created_at": "2025-01-01T00:00:00Z",
        "modified_at": None,
        "description": None,
        "is_archived": False,
        "is_recurring": True,
        "recurring_interval": "month",
        "visibility": "public",
        "organization_id": str(uuid.uuid4()),
        "metadata": {},
    }


def _benefit() -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "custom",
        "description": "Old perk",
        "created_at": "2025-01-01T00:00:00Z",
        "modified_at": None,
        "is_deleted": False,
        "organization_id": str(uuid.uuid4()),
        "metadata": {},
    }
