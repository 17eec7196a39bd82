"""Members of Polar's team customers (API versions 2026-04 and later).

A team customer has members, each with an ``external_id`` of this system (unique
within the customer): the local user whose external ID it is is linked to the member
as a user is to a customer, and holds the team's entitlements (see selectors).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .customers import Customer


class Member(models.Model):
    """A member of a team customer. The primary key is Polar's member ID."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        BILLING_MANAGER = "billing_manager", "Billing manager"
        MEMBER = "member", "Member"

    id = models.UUIDField(primary_key=True, help_text="Polar's member ID.")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="members")
    email = models.CharField(max_length=320)
    name = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001  (Polar's null)
    # null, not "": the unique constraint must allow many members without one.
    external_id = models.CharField(  # noqa: DJ001
        max_length=255,
        null=True,
        blank=True,
        help_text="The member's ID in this system; unique within the customer.",
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(help_text="When Polar created the member.")
    modified_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, help_text="The whole payload, as Polar sent it.")
    synced_at = models.DateTimeField(help_text="When this row was last written from Polar.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="polar_memberships",
        help_text="The local user whose external ID this member carries.",
    )

    class Meta:
        ordering = ("created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "external_id"],
                condition=Q(external_id__isnull=False),
                name="polar_sync_member_external_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["external_id"], name="polar_sync_member_external"),
            models.Index(fields=["email"], name="polar_sync_member_email"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.role})"
