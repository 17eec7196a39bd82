"""Polar's catalogue: products and benefits, mirrored for their names.

State rows (subscriptions, grants) carry only a product or benefit ID; these rows
give the admin, the CSV exports and the API a name to show next to it. Written by
:mod:`polar_sync.services.catalog` (a pull of both list endpoints, and the
``product.*`` / ``benefit.*`` webhooks); ``raw`` keeps the whole payload.
"""

from __future__ import annotations

from django.db import models


class CatalogItem(models.Model):
    id = models.UUIDField(primary_key=True, help_text="Polar's ID.")
    organization_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(help_text="When Polar created it.")
    modified_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, help_text="The whole payload, as Polar sent it.")
    synced_at = models.DateTimeField(help_text="When this row was last written from Polar.")

    class Meta:
        abstract = True


class Product(CatalogItem):
    """A Polar product. Kept when Polar stops listing it (``is_archived`` is then set),
    so that old subscriptions keep their name."""

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    is_archived = models.BooleanField(default=False)
    is_recurring = models.BooleanField(default=False)
    recurring_interval = models.CharField(max_length=16, blank=True, default="")
    visibility = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} ({self.pk})"


class Benefit(CatalogItem):
    """A Polar benefit; ``description`` is its display name in Polar. Kept when Polar
    stops listing it (``is_deleted`` is then set), so that old grants keep their name."""

    type = models.CharField(max_length=32)
    description = models.CharField(max_length=255)
    is_deleted = models.BooleanField(default=False)
    selectable = models.BooleanField(default=True)
    deletable = models.BooleanField(default=True)
    visibility = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ("description",)

    def __str__(self) -> str:
        return f"{self.description} ({self.pk})"

    @property
    def name(self) -> str:
        return self.description
