"""Writing customers into the mirror: bulk upserts per page, and the full pull."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..client import PolarClient
from ..conf import polar_settings
from ..exceptions import PolarError
from ..mapping import CUSTOMER_FIELDS, MappingError, count_field, customer_fields
from ..models import Customer, PushedPayload, SyncCheckpoint, SyncRun
from .announce import customers_deleted, customers_written
from .budget import budget_pause_on_rate_limit, budgeted_client
from .bulk import UpsertPlan
from .checkpoints import (
    CheckpointWriter,
    checkpoint_candidates,
    checkpoint_confirmed,
    checkpoint_left,
    checkpoint_open,
    checkpoint_start_page,
    checkpoint_walk_done,
)
from .runs import (
    sync_run_confirm_missing,
    sync_run_crashed,
    sync_run_finish,
    sync_run_page_done,
    sync_run_start,
)

logger = logging.getLogger("polar_sync.sync")
# Tries at writing a page that keeps meeting rows inserted concurrently.
WRITE_ATTEMPTS = 3

JSON = dict[str, Any]

# Every column a pull writes (by attname); all but the primary key are updated on conflict.
WRITTEN_FIELDS = [*CUSTOMER_FIELDS, "synced_at", "user_id"]
# A stored row is rewritten only when one of these differs: every other column
# is derived from ``raw``, and ``synced_at`` says when the row last changed.
COMPARED_FIELDS = ("raw", "external_id", "user_id", "deleted_at")
# How many "missing" customers one pull confirms with a GET before marking them deleted.
MAX_DELETION_CHECKS = 500


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[MappingError] = field(default_factory=list)
    ids: list[uuid.UUID] = field(default_factory=list)


def users_by_external_id(external_ids: Iterable[str]) -> dict[str, Any]:
    """Local user primary keys by external ID (``USER_EXTERNAL_ID_FIELD``), in one query."""
    user_model = get_user_model()
    name = polar_settings().USER_EXTERNAL_ID_FIELD
    model_field: Any = user_model._meta.pk if name == "pk" else user_model._meta.get_field(name)
    values = {}
    for external_id in external_ids:
        try:
            values[model_field.to_python(external_id)] = external_id
        except (ValidationError, ValueError, TypeError):
            continue  # cannot be a value of that field, so no user has it
    if not values:
        return {}
    rows = user_model._default_manager.filter(**{f"{name}__in": list(values)}).values_list(
        name, "pk"
    )
    return {str(value): pk for value, pk in rows}


PLAN = UpsertPlan(
    model=Customer, unique_field="id", fields=WRITTEN_FIELDS, compared=COMPARED_FIELDS
)


@dataclass
class CustomerPage:
    incoming: dict[uuid.UUID, dict[str, Any]]
    failures: list[MappingError]


def customer_page_prepare(
    *, payloads: list[Any], synced_at: datetime | None = None
) -> CustomerPage:
    """Map payloads to rows. No database access: it runs in the prefetch thread."""
    synced_at = synced_at or timezone.now()
    incoming: dict[uuid.UUID, dict[str, Any]] = {}
    failures: list[MappingError] = []
    for payload in payloads:
        try:
            fields = customer_fields(payload)
        except MappingError as exc:
            failures.append(exc)
            continue
        fields["synced_at"] = synced_at
        incoming[fields["id"]] = fields  # a page may repeat a row; the last one wins
    return CustomerPage(incoming, failures)


def customers_upsert(
    *,
    payloads: list[Any],
    synced_at: datetime | None = None,
    skip_older: bool = False,
) -> UpsertResult:
    """Write a page of Customer payloads in a constant number of queries.

    Unchanged customers are not written; a payload that cannot be mapped goes to
    ``failures`` and the rest is still written. With ``skip_older``, a payload
    older (``modified_at``) than the mirror's row is ignored: webhooks arrive out of order.
    """
    page = customer_page_prepare(payloads=payloads, synced_at=synced_at)
    return customer_page_write(page=page, skip_older=skip_older)


def customer_page_write(*, page: CustomerPage, skip_older: bool = False) -> UpsertResult:
    """Link users by external ID, upsert, count."""
    result = UpsertResult(failures=list(page.failures), ids=list(page.incoming))
    for failure in page.failures:
        logger.warning("skipping a malformed customer: %s", failure)
    if not page.incoming:
        return result
    users = users_by_external_id(
        {f["external_id"] for f in page.incoming.values() if f["external_id"]}
    )
    rows = [{**f, "user_id": users.get(f["external_id"])} for f in page.incoming.values()]
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                written = PLAN.write(
                    rows,
                    not_older="modified_at" if skip_older else None,
                    # Polar frees a deleted customer's external ID and may give it to
                    # a new customer before this mirror has seen the deletion.
                    takes_over="external_id",
                )
                customers_written(rows=rows, written=written)  # sent after commit
            break
        except IntegrityError:
            # Another transaction inserted some of these customers (or took one of
            # their external IDs) between our read and our insert: a webhook during
            # a pull. The retry reads again and finds its rows.
            if attempt == WRITE_ATTEMPTS:
                raise
            logger.info("customer page met a concurrent insert; writing it again")
    result.created, result.updated = written.created, written.updated
    result.unchanged = len(page.incoming) - written.created - written.updated
    return result


def customer_upsert(*, payload: Any, skip_older: bool = False) -> Customer | None:
    """Write one Customer payload (from a push or a webhook); returns the row."""
    result = customers_upsert(payloads=[payload], skip_older=skip_older)
    if result.failures:
        raise result.failures[0]
    return Customer.objects.filter(pk=result.ids[0]).first()


def customers_mark_deleted(*, ids: Iterable[uuid.UUID], when: datetime | None = None) -> int:
    """Mark customers deleted in Polar; rows are kept, as orders and history refer to them.

    Like Polar, this frees the external ID (``raw`` keeps it) and forgets what was
    last pushed for it, so that the user's next save creates the customer again.
    """
    rows = Customer.objects.filter(id__in=list(ids), deleted_at__isnull=True)
    with transaction.atomic():
        # Locked: a concurrent marking waits, then finds them deleted (one signal each).
        found = list(rows.select_for_update().values_list("id", "external_id"))
        if not found:
            return 0
        freed = [e for _, e in found if e]
        if freed:
            PushedPayload.objects.filter(external_id__in=freed).delete()
        marked = [pk for pk, _ in found]
        customers_deleted(ids=marked)  # sent after commit
        return Customer.objects.filter(id__in=marked).update(
            deleted_at=when or timezone.now(), external_id=None
        )


ProgressCallback = Callable[[SyncRun], None]
# The walk's order: the oldest customers first, so that new ones join at the end.
SORTING = "created_at"


def customers_pull(
    *,
    client: PolarClient | None = None,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> SyncRun | None:
    """Mirror every customer: walk all pages by ``created_at``, upsert each page.

    Each page commits on its own; a checkpoint lets the next run continue a failed
    walk (see :mod:`.checkpoints`). After a complete walk, the customers it did not
    see are marked deleted once a GET confirms Polar no longer has them. Returns
    None when another pull is already running.
    """
    # The client first: a configuration error must not leave a run holding the lock.
    client = budgeted_client(client=client)
    run = sync_run_start(kind=SyncRun.Kind.CUSTOMERS, dry_run=dry_run, client=client)
    if run is None:
        return None
    sent_before = client.request_count
    checkpoint: SyncCheckpoint | None = None
    resumed = False
    status = SyncRun.Status.SUCCEEDED
    try:
        if not dry_run:
            checkpoint, resumed = checkpoint_open(
                kind=run.kind, page_size=client.page_size, sorting=SORTING, now=run.started_at
            )
        if checkpoint is None or checkpoint.phase == SyncCheckpoint.Phase.WALKING:
            start = 1 if checkpoint is None else checkpoint_start_page(checkpoint)
            if resumed:
                run.resumed_from_page = start
                logger.info("customer pull: continuing a walk from page %d", start)
            _walk(client=client, run=run, start=start, checkpoint=checkpoint, progress=progress)
        else:
            run.resumed_from_page = 0
        if checkpoint is not None:
            _confirm_deletions(client=client, run=run, checkpoint=checkpoint)
    except PolarError as exc:
        budget_pause_on_rate_limit(exc)
        logger.error("customer pull failed after %d pages: %s", run.pages, exc)
        status = SyncRun.Status.FAILED
        run.error = str(exc) + (checkpoint_left(checkpoint) if checkpoint else "")
    except Exception as exc:
        sync_run_crashed(run=run, exc=exc)
        raise
    run.requests = client.request_count - sent_before
    if status == SyncRun.Status.SUCCEEDED and run.failed:
        status = SyncRun.Status.PARTIAL
    return sync_run_finish(run=run, status=status, error=run.error, client=client)


def _walk(
    *,
    client: PolarClient,
    run: SyncRun,
    start: int,
    checkpoint: SyncCheckpoint | None,
    progress: ProgressCallback | None,
) -> None:
    """Read and write every page from ``start`` on (write nothing without a checkpoint)."""
    sent_before = client.request_count

    def prepare(page: JSON) -> tuple[JSON, CustomerPage]:
        return page, customer_page_prepare(payloads=page["items"])

    writer = CheckpointWriter(checkpoint) if checkpoint is not None else None
    # Prefetch: the next page travels, and is mapped, while this one is written
    # (bench_pull.py --latency 0.05: 1.2x the fetch floor's time with it, 1.6-1.8x without).
    pages = client.iter_pages(start_page=start, sorting=[SORTING], prefetch=True, transform=prepare)
    try:
        for number, (page, prepared) in enumerate(pages, start=start):
            run.total_count = count_field(page["pagination"].get("total_count"))
            if writer is None:  # a dry run
                result = UpsertResult(unchanged=len(prepared.incoming), failures=prepared.failures)
            else:
                result = customer_page_write(page=prepared)
                writer.add(page=number, ids=result.ids)
            run.requests = client.request_count - sent_before
            sync_run_page_done(run=run, result=result, progress=progress)
    finally:
        pages.close()  # waits for a page being prefetched: nothing outlives the run
        if writer is not None:
            writer.flush()  # however the walk ends, the next run starts from here
    if checkpoint is not None:
        checkpoint_walk_done(checkpoint=checkpoint)


def _confirm_deletions(*, client: PolarClient, run: SyncRun, checkpoint: SyncCheckpoint) -> None:
    """Confirm with a GET, and mark deleted, the customers the complete walk did not see.

    What this run could not confirm (a failure, or beyond ``MAX_DELETION_CHECKS``)
    stays in the checkpoint for the next run.
    """
    candidates = checkpoint_candidates(checkpoint)

    def settle(gone: list[uuid.UUID], confirmed: int) -> int:
        deleted = customers_mark_deleted(ids=gone)
        checkpoint_confirmed(checkpoint=checkpoint, remaining=candidates[confirmed:])
        return deleted

    sync_run_confirm_missing(
        run=run,
        what="customers",
        candidates=candidates,
        limit=MAX_DELETION_CHECKS,
        fetch=lambda pk: client.get(str(pk)),
        refresh=lambda payload: customers_upsert(payloads=[payload]),
        settle=settle,
    )
