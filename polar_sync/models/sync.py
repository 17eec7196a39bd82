"""The sync log and the request budget shared by every worker."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class SyncRun(models.Model):
    """One run of a pull (customers, states or balances): what it did and how it ended.

    A run in progress doubles as the lock that keeps two runs of one kind from
    overlapping: at most one row per kind may have status ``running``.
    """

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", "Customers"
        STATES = "states", "States"
        BALANCES = "balances", "Balances"

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


class RequestBudget(models.Model):
    """A token bucket in the database, so that every worker process draws from one budget."""

    name = models.CharField(max_length=64, primary_key=True)
    tokens = models.FloatField()
    updated_at = models.FloatField(help_text="time.time() of the last refill.")

    def __str__(self) -> str:
        return f"{self.name}: {self.tokens:.1f} tokens"
