"""Webhook deliveries from Polar, stored once each before they are processed."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookEvent(models.Model):
    """One webhook delivery, keyed by its ``webhook-id``: a redelivery finds this row.
    The body is kept as sent, so that any event can be replayed later.

    =========  ==============================================================
    status     how it gets there, and what comes next
    =========  ==============================================================
    received   stored; processed after commit (in-process or by the task), or
               by the periodic sweep when that was lost (broker down, crash)
    retrying   a transient failure (database, network): the sweep tries again
               at ``next_attempt_at``, with backoff, up to a bound of attempts
    processed  applied to the mirror (final)
    ignored    not applied: a type not handled, or older than the mirror (final)
    failed     a permanent failure, or the attempts ran out (final until a replay)
    =========  ==============================================================
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        RETRYING = "retrying", "Retrying"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"

    webhook_id = models.CharField(max_length=255, unique=True, help_text="The webhook-id header.")
    event_type = models.CharField(max_length=64, help_text="e.g. customer.state_changed")
    payload = models.JSONField(help_text="The whole body: type, timestamp and data.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(
        blank=True, default="", help_text="Why processing failed, or why the event was ignored."
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Times processing was tried.")
    # When Polar says the change happened (the payload's ``timestamp``): orders the events
    # of one customer, whatever order they arrive in.
    occurred_at = models.DateTimeField(null=True, blank=True)
    # Polar's customer ID (``data.id``); not a foreign key: the event may come first.
    customer_id = models.UUIDField(null=True, blank=True)
    api_version = models.CharField(
        max_length=16,
        blank=True,
        default="",
        help_text="The payload's api_version: the version of the endpoint it was sent for "
        "(empty: none, a delivery of the 2025-10 era).",
    )
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a retrying event is tried again."
    )

    class Meta:
        ordering = ("-received_at",)
        get_latest_by = "received_at"
        indexes = [
            # The admin's "failed deliveries", newest first, and the replay's selection.
            models.Index(fields=["status", "-received_at"], name="polar_sync_webhook_status"),
            # The newest processed state of a customer (order-safe processing).
            models.Index(
                fields=["customer_id", "event_type", "-occurred_at"],
                name="polar_sync_webhook_customer",
            ),
            models.Index(fields=["received_at"], name="polar_sync_webhook_received"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id} ({self.status})"
