"""Reads behind the operators' views: how fresh the mirror is, the sync status page, the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from .conf import polar_settings
from .models import Customer, PushOutbox, SyncCheckpoint, SyncRun, WebhookEvent


def stale_before(*, kind: str) -> datetime:
    """The instant before which a state (``kind="state"``) or balance counts as stale."""
    conf = polar_settings()
    interval = conf.STATE_REFRESH_INTERVAL if kind == "state" else conf.BALANCE_REFRESH_INTERVAL
    return timezone.now() - timedelta(seconds=interval)


def customers_by_freshness(
    qs: QuerySet[Customer], *, kind: str, freshness: str
) -> QuerySet[Customer]:
    """Customers of ``qs`` whose state/balance is ``fresh``, ``stale`` (or missing), ``missing``."""
    column = f"{kind}__synced_at"
    before = stale_before(kind=kind)
    if freshness == "fresh":
        return qs.filter(**{f"{column}__gte": before})
    if freshness == "missing":
        return qs.filter(**{f"{kind}__isnull": True})
    if freshness == "stale":
        return qs.exclude(**{f"{column}__gte": before})
    raise ValueError(f"freshness must be fresh, stale or missing, got {freshness!r}")


# -- the operators' status page -----------------------------------------------------------

# A delivery is processed within a second or so; one still waiting after a minute
# means no worker took it (a broker down, no sweep running) or it keeps failing.
WEBHOOK_WAITING_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class SyncStatus:
    last_pull: SyncRun | None
    last_runs: dict[str, SyncRun | None]
    customers: int
    deleted_customers: int
    stale_states: int
    stale_balances: int
    pushes_pending: int
    pushes_failed: int
    webhooks_failed: int
    webhooks_waiting: int  # received or retrying for longer than WEBHOOK_WAITING_AFTER
    now: datetime
    # The customer pull a failed run left unfinished (the next pull continues it), if any.
    checkpoint: SyncCheckpoint | None = None
    # The API version Polar said it served the latest run that read an answer ("": none).
    api_version_served: str = ""

    @property
    def last_pull_age(self) -> timedelta | None:
        if self.last_pull is None or self.last_pull.finished_at is None:
            return None
        return self.now - self.last_pull.finished_at


def sync_status() -> SyncStatus:
    """Figures for operators: how fresh the mirror is and what is waiting or failing."""
    live = Customer.objects.active()
    last_runs = {
        kind: SyncRun.objects.filter(kind=kind).order_by("-started_at").first()
        for kind in SyncRun.Kind.values
    }
    outbox = outbox_counts()
    return SyncStatus(
        last_pull=SyncRun.objects.filter(
            kind=SyncRun.Kind.CUSTOMERS, status=SyncRun.Status.SUCCEEDED, dry_run=False
        )
        .order_by("-finished_at")
        .first(),
        last_runs=last_runs,
        customers=live.count(),
        deleted_customers=Customer.objects.deleted().count(),
        stale_states=customers_by_freshness(live, kind="state", freshness="stale").count(),
        stale_balances=customers_by_freshness(live, kind="balance", freshness="stale").count(),
        pushes_pending=outbox[PushOutbox.Status.PENDING],
        pushes_failed=outbox[PushOutbox.Status.FAILED],
        webhooks_failed=WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count(),
        webhooks_waiting=WebhookEvent.objects.filter(
            status__in=(WebhookEvent.Status.RECEIVED, WebhookEvent.Status.RETRYING),
            received_at__lt=timezone.now() - WEBHOOK_WAITING_AFTER,
        ).count(),
        now=timezone.now(),
        checkpoint=SyncCheckpoint.objects.filter(kind=SyncRun.Kind.CUSTOMERS).first(),
        api_version_served=SyncRun.objects.exclude(api_version="")
        .order_by("-started_at")
        .values_list("api_version", flat=True)
        .first()
        or "",
    )


def outbox_counts() -> dict[str, int]:
    """Rows in the push outbox by status (``pending``, ``failed``), zero or not."""
    counts = dict.fromkeys(PushOutbox.Status.values, 0)
    rows = PushOutbox.objects.order_by().values_list("status").annotate(n=Count("pk"))
    counts.update(dict(rows))
    return counts


def outbox_failures(*, limit: int = 20) -> list[tuple[str, str]]:
    """(external ID, Polar's message) of failed rows, most recent first."""
    rows = PushOutbox.objects.filter(status=PushOutbox.Status.FAILED).order_by("-updated_at")
    return list(rows.values_list("external_id", "last_error")[:limit])
