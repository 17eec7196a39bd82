"""The catalogue: products and benefits pulled from Polar, and written by webhooks.

A pull walks ``GET /v1/products/`` then ``GET /v1/benefits/`` (every page, oldest
first, within the shared request budget) and upserts each page. After a COMPLETE
walk, a row it did not see is asked for by ID: when Polar answers "not found" (its
404 with an ``error`` field) the row is kept, for the names of old subscriptions and
grants, and marked gone: a product ``is_archived``, a benefit ``is_deleted``. A
partial walk, or a 404 without ``error`` (an unknown route), marks nothing.

A 403 (a token without ``products:read`` / ``benefits:read``) leaves those names
absent: the run records why (a log WARNING, the first time) and goes on with the
other list. The 2025-10 API (``API_VERSION`` None) has no catalogue: no request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..catalog_mapping import BENEFIT_FIELDS, PRODUCT_FIELDS, benefit_fields, product_fields
from ..client import PolarClient
from ..conf import polar_settings
from ..exceptions import (
    PolarEndpointNotAvailableError,
    PolarError,
    PolarPermissionError,
)
from ..mapping import MappingError, count_field
from ..models import Benefit, Product, SyncRun
from .budget import budget_pause_on_rate_limit, budgeted_client
from .bulk import UpsertPlan
from .customers import UpsertResult
from .runs import (
    sync_run_confirm_missing,
    sync_run_crashed,
    sync_run_finish,
    sync_run_page_done,
    sync_run_start,
)

logger = logging.getLogger("polar_sync.sync")

# How many unlisted items one pull confirms with a GET (a catalogue is small).
MAX_GONE_CHECKS = 100
SORTING = "created_at"


@dataclass(frozen=True)
class Catalogue:
    """One of the two lists: how to read it and how to mark one of its items gone."""

    label: str
    scope: str
    plan: UpsertPlan
    fields: Callable[[Any], dict[str, Any]]
    lister: str  # the client's list operation
    getter: str  # the client's get operation
    gone: dict[str, bool]


PRODUCTS = Catalogue(
    label="products",
    scope="products:read",
    plan=UpsertPlan(
        model=Product,
        unique_field="id",
        fields=[*PRODUCT_FIELDS, "synced_at"],
        compared=("raw", "is_archived"),
    ),
    fields=product_fields,
    lister="list_products",
    getter="get_product",
    gone={"is_archived": True},
)
BENEFITS = Catalogue(
    label="benefits",
    scope="benefits:read",
    plan=UpsertPlan(
        model=Benefit,
        unique_field="id",
        fields=[*BENEFIT_FIELDS, "synced_at"],
        compared=("raw", "is_deleted"),
    ),
    fields=benefit_fields,
    lister="list_benefits",
    getter="get_benefit",
    gone={"is_deleted": True},
)


def _upsert(catalogue: Catalogue, payloads: Iterable[Any], *, skip_older: bool) -> UpsertResult:
    result = UpsertResult()
    rows: dict[uuid.UUID, dict[str, Any]] = {}
    now = timezone.now()
    for payload in payloads:
        try:
            fields = catalogue.fields(payload)
        except MappingError as exc:
            logger.warning("skipping a malformed %s item: %s", catalogue.label, exc)
            result.failures.append(exc)
            continue
        rows[fields["id"]] = {**fields, "synced_at": now}
    result.ids = list(rows)
    if rows:
        with transaction.atomic():
            written = catalogue.plan.write(
                list(rows.values()), not_older="modified_at" if skip_older else None
            )
        result.created, result.updated = written.created, written.updated
        result.unchanged = len(rows) - written.created - written.updated
    return result


def products_upsert(*, payloads: Iterable[Any], skip_older: bool = False) -> UpsertResult:
    """Write Product payloads; with ``skip_older``, none older than the mirror's row."""
    return _upsert(PRODUCTS, payloads, skip_older=skip_older)


def benefits_upsert(*, payloads: Iterable[Any], skip_older: bool = False) -> UpsertResult:
    """Write Benefit payloads; with ``skip_older``, none older than the mirror's row."""
    return _upsert(BENEFITS, payloads, skip_older=skip_older)


def catalog_available() -> bool:
    """Whether the configured API version has the catalogue (2025-10, None: it has not)."""
    return polar_settings().API_VERSION is not None


def catalog_pull(
    *, client: PolarClient | None = None, progress: Callable[[SyncRun], None] | None = None
) -> SyncRun | None:
    """Mirror every product and benefit. Returns None, sending nothing, when the API
    version has no catalogue or another catalogue pull is running."""
    if not catalog_available():
        logger.info("API_VERSION is None (the 2025-10 API): no products or benefits to pull")
        return None
    client = budgeted_client(client=client)
    run = sync_run_start(kind=SyncRun.Kind.CATALOG, client=client)
    if run is None:
        return None
    sent_before = client.request_count
    notes: list[str] = []
    status = SyncRun.Status.SUCCEEDED
    try:
        for catalogue in (PRODUCTS, BENEFITS):
            try:
                _walk(catalogue, client=client, run=run, progress=progress)
            except PolarPermissionError as exc:
                notes.append(_unavailable(catalogue, exc))
            except PolarEndpointNotAvailableError as exc:
                run.endpoint_missing = True
                notes.append(f"{exc}; no {catalogue.label} marked gone")
                logger.warning("catalogue pull: %s", notes[-1])
    except PolarError as exc:
        budget_pause_on_rate_limit(exc)
        logger.error("catalogue pull failed after %d pages: %s", run.pages, exc)
        status = SyncRun.Status.FAILED
        notes.append(str(exc))
    except Exception as exc:
        sync_run_crashed(run=run, exc=exc)
        raise
    run.requests = client.request_count - sent_before
    if status == SyncRun.Status.SUCCEEDED and (notes or run.failed):
        status = SyncRun.Status.PARTIAL
    error = "\n".join([*notes, run.error] if run.error else notes)
    return sync_run_finish(run=run, status=status, error=error)


def _unavailable(catalogue: Catalogue, exc: PolarError) -> str:
    """Record a 403: a WARNING the first time, INFO while the last run said the same."""
    note = f"{catalogue.label} names unavailable: the access token lacks {catalogue.scope} ({exc})"
    last = (
        SyncRun.objects.filter(kind=SyncRun.Kind.CATALOG)
        .exclude(status=SyncRun.Status.RUNNING)
        .values_list("error", flat=True)
        .first()
    )
    level = logging.INFO if last and note in last else logging.WARNING
    logger.log(level, "catalogue pull: %s", note)
    return note


def _walk(
    catalogue: Catalogue,
    *,
    client: PolarClient,
    run: SyncRun,
    progress: Callable[[SyncRun], None] | None,
) -> None:
    """Upsert every page of one list, then mark gone what the complete walk missed."""
    seen: set[uuid.UUID] = set()
    total = 0
    lister = getattr(client, catalogue.lister)
    for page in client.iter_pages(lister=lister, sorting=[SORTING]):
        result = _upsert(catalogue, page["items"], skip_older=False)
        seen.update(result.ids)
        total = count_field(page["pagination"].get("total_count")) or 0
        sync_run_page_done(run=run, result=result, progress=progress)
    run.total_count = (run.total_count or 0) + total
    _mark_gone(catalogue, client=client, run=run, seen=seen)


def _mark_gone(
    catalogue: Catalogue, *, client: PolarClient, run: SyncRun, seen: set[uuid.UUID]
) -> None:
    """Ask for each row the complete walk did not list; mark gone those Polar has not."""
    model = catalogue.plan.model
    live = model._default_manager.exclude(**catalogue.gone).values_list("pk", flat=True)
    get = getattr(client, catalogue.getter)

    def settle(gone: list[uuid.UUID], _confirmed: int) -> int:
        if not gone:
            return 0
        changes = {**catalogue.gone, "synced_at": timezone.now()}
        return model._default_manager.filter(pk__in=gone).update(**changes)

    sync_run_confirm_missing(
        run=run,
        what=catalogue.label,
        candidates=sorted(set(live) - seen),
        limit=MAX_GONE_CHECKS,
        fetch=lambda pk: get(str(pk)),
        refresh=lambda payload: _upsert(catalogue, [payload], skip_older=False),
        settle=settle,
    )


def catalog_item_apply(*, event_type: str, payload: Any) -> str | None:
    """Apply a ``product.*`` / ``benefit.*`` webhook's data; why it was not written, or None."""
    upsert = products_upsert if event_type.startswith("product.") else benefits_upsert
    result = upsert(payloads=[payload], skip_older=True)
    if result.failures:
        raise result.failures[0]
    if not (result.created or result.updated):
        return "unchanged, or older than the mirror (modified_at)"
    return None
