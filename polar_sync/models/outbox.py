"""The push outbox: local user changes waiting to reach Polar, and what was last pushed.

A row is written in the user change's own transaction, so a rolled-back change pushes
nothing and a committed one is never lost (states: :mod:`polar_sync.services.push`).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class PushOutbox(models.Model):
    """The latest change of one external ID waiting to be pushed to Polar."""

    class Action(models.TextChoices):
        UPSERT = "upsert", "Create or update"
        DELETE = "delete", "Delete"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # will be pushed (now, or after a backoff)
        FAILED = "failed", "Failed"  # Polar refused it: waits for a new change or --retry-failed

    # No surrogate key to number and index in every user save that writes a row.
    external_id = models.CharField(
        max_length=255, primary_key=True, help_text="The customer's external ID."
    )
    # A string, not a foreign key: a delete must outlive the user row it is about.
    user_id = models.CharField(  # noqa: DJ001  (null: not known, e.g. pushed by external ID)
        max_length=255, null=True, blank=True, help_text="The local user's primary key."
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    payload = models.JSONField(default=dict, blank=True, help_text="What is sent to Polar.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Pushes tried for this revision.")
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A drain's lease while it talks to Polar: two workers never push one user at once.
    locked_until = models.DateTimeField(null=True, blank=True)
    # New with every change (random, so a change is one upsert query): a drain removes
    # the row only if it still holds the revision it pushed.
    revision = models.UUIDField(default=uuid.uuid4)
    # An upsert that replaced a pending delete of the same external ID: the old
    # customer is deleted first, so a new user never inherits an old one's customer.
    delete_first = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("next_attempt_at", "external_id")
        verbose_name = "push outbox row"
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["upsert", "delete"]), name="polar_sync_outbox_action"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="polar_sync_outbox_due"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.external_id} ({self.status})"


class PushedPayload(models.Model):
    """The payload Polar last accepted for each external ID: a save or an upsert of it
    again needs no push."""

    external_id = models.CharField(max_length=255, primary_key=True)
    payload = models.JSONField(default=dict)
    pushed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.external_id} pushed {self.pushed_at:%Y-%m-%d %H:%M}"
