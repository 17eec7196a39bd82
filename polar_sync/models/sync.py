"""The sync log and the request budget shared by every worker."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class SyncRun(models.Model):
    """One run of a pull (customers, states or balances): what it did and how it ended.

    A running row is also the lock: at most one per kind (a unique constraint).
    """

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", "Customers"
        STATES = "states", "States"
        BALANCES = "balances", "Balances"
        MEMBERS = "members", "Members"
        CATALOG = "catalog", "Products and benefits"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partial"  # finished, but some objects could not be mapped
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned"  # its worker died holding the lock

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(db_index=True)
    heartbeat_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    pages = models.PositiveIntegerField(default=0)
    total_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="As Polar reported it."
    )
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Objects that could not be mapped.")
    requests = models.PositiveIntegerField(default=0, help_text="HTTP requests sent to Polar.")
    resumed_from_page = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Set when the run continued a walk a failed run left: the first page it "
        "read (0: the walk was complete, it only confirmed deletions).",
    )
    api_version = models.CharField(
        max_length=16,
        blank=True,
        default="",
        help_text="The API version Polar said it served (Polar-Version; 2025-10 when an "
        "answer had none); empty when no answer was read.",
    )
    endpoint_missing = models.BooleanField(
        default=False, help_text="The server has no such endpoint (e.g. /balance on newer APIs)."
    )
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ("-started_at",)
        get_latest_by = "started_at"
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(status="running"),
                name="polar_sync_one_running_sync_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} sync {self.started_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def resumed_display(self) -> str:
        if self.resumed_from_page is None:
            return ""
        if self.resumed_from_page == 0:
            return "confirmed the deletions a complete walk left"
        return f"resumed the walk at page {self.resumed_from_page}"


class SyncCheckpoint(models.Model):
    """Where an unfinished walk of all customers stands (see services/checkpoints.py).

    ``walking``: pages before ``next_page`` are written, their IDs in
    :class:`SyncCheckpointPage` rows. ``confirming``: ``candidates`` holds the IDs the
    complete walk did not see, still to be confirmed deleted.
    """

    class Phase(models.TextChoices):
        WALKING = "walking", "Walking"
        CONFIRMING = "confirming", "Confirming deletions"

    kind = models.CharField(max_length=16, choices=SyncRun.Kind.choices, unique=True)
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.WALKING)
    next_page = models.PositiveIntegerField(default=1)
    # Page numbers mean something only for the same page size and order.
    page_size = models.PositiveSmallIntegerField()
    sorting = models.CharField(max_length=64)
    walk_started_at = models.DateTimeField(help_text="When the first run of this walk started.")
    updated_at = models.DateTimeField()
    candidates = models.BinaryField(default=b"", help_text="Packed 16-byte customer IDs.")

    def __str__(self) -> str:
        return f"{self.kind} checkpoint ({self.phase}, next page {self.next_page})"


class SyncCheckpointPage(models.Model):
    """The customer IDs one page of a walk held (packed); a page read twice has two rows."""

    checkpoint = models.ForeignKey(SyncCheckpoint, on_delete=models.CASCADE, related_name="pages")
    page = models.PositiveIntegerField()
    ids = models.BinaryField()

    def __str__(self) -> str:
        return f"page {self.page} ({len(self.ids) // 16} customers)"


class RequestBudget(models.Model):
    """A token bucket in the database, so that every worker process draws from one budget."""

    name = models.CharField(max_length=64, primary_key=True)
    tokens = models.FloatField()
    updated_at = models.FloatField(help_text="time.time() of the last refill.")

    def __str__(self) -> str:
        return f"{self.name}: {self.tokens:.1f} tokens"
