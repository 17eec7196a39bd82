"""Members of team customers: upserts (pull, webhooks) and the full pull.

The pull walks ``GET /v1/members/`` by ``created_at`` within the shared request
budget and writes each page in one transaction. Only after a complete walk are the
members it did not see confirmed gone (one GET each, at most
``MAX_DELETION_CHECKS`` a run) and removed; a failed walk removes nothing. A failed
walk is not resumed: the next run walks again from page 1 (members are a small share
of the customers, and a page-number checkpoint is only worth it for the customers).
Members exist from API version 2026-04 on: with ``API_VERSION`` None (a server of
the 2025-10 era) the pull is skipped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..client import PolarClient
from ..conf import polar_settings
from ..exceptions import (
    PolarEndpointNotAvailableError,
    PolarError,
    PolarPermissionError,
)
from ..mapping import MappingError, count_field
from ..mapping_members import MEMBER_FIELDS, member_fields
from ..models import Customer, Member, SyncRun
from .budget import budget_pause_on_rate_limit, budgeted_client
from .bulk import UpsertPlan
from .customers import WRITE_ATTEMPTS, users_by_external_id
from .runs import (
    sync_run_confirm_missing,
    sync_run_crashed,
    sync_run_finish,
    sync_run_page_done,
    sync_run_start,
)

logger = logging.getLogger("polar_sync.sync")

JSON = dict[str, Any]
SORTING = "created_at"
# How many members missing from a complete walk one pull confirms with a GET.
MAX_DELETION_CHECKS = 500
# In the error of a run refused by Polar (403): the token lacks the scope.
FORBIDDEN_NOTE = "the access token needs the members:read scope; members are not mirrored"

PLAN = UpsertPlan(
    model=Member,
    unique_field="id",
    fields=[*MEMBER_FIELDS, "synced_at", "user_id"],
    compared=("raw", "customer_id", "user_id"),
)


@dataclass
class MemberUpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[MappingError] = field(default_factory=list)
    ids: list[uuid.UUID] = field(default_factory=list)
    # Members of a customer the mirror does not hold (yet): not written.
    orphans: list[uuid.UUID] = field(default_factory=list)


def members_available() -> bool:
    """Whether the configured API version has members (2026-04 and later)."""
    return bool(polar_settings().API_VERSION)


def members_forbidden(run: SyncRun) -> bool:
    """Whether ``run`` failed on a 403 (a token without ``members:read``): the rest of
    a sync goes on without members."""
    return run.kind == SyncRun.Kind.MEMBERS and FORBIDDEN_NOTE in run.error


def members_upsert(
    *, payloads: list[Any], synced_at: datetime | None = None, skip_older: bool = False
) -> MemberUpsertResult:
    """Write a page of Member payloads in a constant number of queries; members of a
    customer the mirror does not hold are left out (``orphans``). With ``skip_older``, a
    payload older (``modified_at``) than the stored row is ignored (webhooks)."""
    synced_at = synced_at or timezone.now()
    result = MemberUpsertResult()
    incoming: dict[uuid.UUID, JSON] = {}
    for payload in payloads:
        try:
            fields = member_fields(payload)
        except MappingError as exc:
            logger.warning("skipping a malformed member: %s", exc)
            result.failures.append(exc)
            continue
        incoming[fields["id"]] = {**fields, "synced_at": synced_at}
    known = set(
        Customer.objects.filter(pk__in={f["customer_id"] for f in incoming.values()}).values_list(
            "pk", flat=True
        )
    )
    result.orphans = [pk for pk, f in incoming.items() if f["customer_id"] not in known]
    rows = [f for f in incoming.values() if f["customer_id"] in known]
    result.ids = [f["id"] for f in rows]
    if not rows:
        return result
    users = users_by_external_id({f["external_id"] for f in rows if f["external_id"]})
    rows = [{**f, "user_id": users.get(f["external_id"])} for f in rows]
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                _free_external_ids(rows)
                written = PLAN.write(rows, not_older="modified_at" if skip_older else None)
            break
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS:  # a concurrent insert (a webhook during a pull)
                raise
    result.created, result.updated = written.created, written.updated
    result.unchanged = len(rows) - written.created - written.updated
    return result


def _free_external_ids(rows: list[JSON]) -> None:
    """Remove members that hold an incoming member's external ID in its customer: Polar
    keeps it unique within a customer, so the stored one is gone from Polar."""
    pairs = [(r["customer_id"], r["external_id"]) for r in rows if r["external_id"] is not None]
    if not pairs:
        return
    holders = Q()
    for customer_id, external_id in pairs:
        holders |= Q(customer_id=customer_id, external_id=external_id)
    Member.objects.filter(holders).exclude(pk__in=[r["id"] for r in rows]).delete()


def member_upsert(*, payload: Any, skip_older: bool = False) -> Member | None:
    """Write one Member payload; None when its customer is not in the mirror."""
    result = members_upsert(payloads=[payload], skip_older=skip_older)
    if result.failures:
        raise result.failures[0]
    return Member.objects.filter(pk__in=result.ids).first()


def members_delete(*, ids: Iterable[uuid.UUID]) -> int:
    """Remove members Polar no longer has; returns how many rows went."""
    return Member.objects.filter(pk__in=list(ids)).delete()[0]


ProgressCallback = Callable[[SyncRun], None]


def members_pull(
    *,
    client: PolarClient | None = None,
    progress: ProgressCallback | None = None,
) -> SyncRun | None:
    """Mirror every member of every team customer (see the module's docstring).

    Returns None when skipped: another members pull is running, or ``API_VERSION`` is
    None (no members before 2026-04).
    """
    if not members_available():
        logger.info("API_VERSION is None (the 2025-10 API has no members); members pull skipped")
        return None
    client = budgeted_client(client=client)
    run = sync_run_start(kind=SyncRun.Kind.MEMBERS, client=client)
    if run is None:
        return None
    sent_before = client.request_count
    status = SyncRun.Status.SUCCEEDED
    try:
        seen = _walk(client=client, run=run, progress=progress)
        _confirm_gone(client=client, run=run, seen=seen)
    except PolarError as exc:
        budget_pause_on_rate_limit(exc)
        run.endpoint_missing = isinstance(exc, PolarEndpointNotAvailableError)
        logger.error("members pull failed after %d pages: %s", run.pages, exc)
        status = SyncRun.Status.FAILED
        run.error = f"{exc} (nothing was removed: the walk was not complete)"
        if isinstance(exc, PolarPermissionError):
            run.error = f"{exc}: {FORBIDDEN_NOTE}"
    except Exception as exc:
        sync_run_crashed(run=run, exc=exc)
        raise
    run.requests = client.request_count - sent_before
    if status == SyncRun.Status.SUCCEEDED and run.failed:
        status = SyncRun.Status.PARTIAL
    return sync_run_finish(run=run, status=status, error=run.error)


def _walk(*, client: PolarClient, run: SyncRun, progress: ProgressCallback | None) -> set[str]:
    """Read and write every page; returns the IDs seen (written or not)."""
    seen: set[str] = set()
    orphans = 0
    sent_before = client.request_count
    for page in client.iter_member_pages(sorting=[SORTING]):
        run.total_count = count_field(page["pagination"].get("total_count"))
        result = members_upsert(payloads=page["items"])
        seen.update(str(item.get("id")).lower() for item in page["items"])  # malformed too
        orphans += len(result.orphans)
        run.requests = client.request_count - sent_before
        sync_run_page_done(run=run, result=result, progress=progress)
    if orphans:
        note = f"{orphans} members of customers not in the mirror were skipped (pull customers)"
        logger.warning("members pull: %s", note)
        run.error = f"{run.error}\n{note}".strip()
    return seen


def _confirm_gone(*, client: PolarClient, run: SyncRun, seen: set[str]) -> None:
    """Remove the members a complete walk did not see, once a GET says Polar has no such
    member (a row can move between pages while they are read). Members written after
    the run started (webhooks) are left alone."""
    stored = Member.objects.filter(synced_at__lt=run.started_at).values_list("pk", "customer_id")
    missing = [(pk, customer_id) for pk, customer_id in stored if str(pk) not in seen]
    sync_run_confirm_missing(
        run=run,
        what="members",
        candidates=missing,
        limit=MAX_DELETION_CHECKS,
        fetch=lambda member: client.get_member(str(member[1]), str(member[0])),
        refresh=lambda payload: members_upsert(payloads=[payload]),
        settle=lambda gone, _confirmed: members_delete(ids=[pk for pk, _ in gone]),
    )
