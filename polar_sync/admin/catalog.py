"""Products and benefits in the admin: read-only and searchable (Polar owns them)."""

from __future__ import annotations

from django.contrib import admin

from ..models import Benefit, Product
from .base import ReadOnlyAdmin, field_display, pretty_json


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "id",
        "is_recurring",
        "recurring_interval",
        "visibility",
        "is_archived",
        "modified_at",
        "synced_at",
    )
    list_filter = ("is_archived", "is_recurring", "recurring_interval", "visibility")
    search_fields = ("name", "description", "=id")
    search_help_text = "Name or description (contains), or Polar's product ID (exact)."
    ordering = ("name",)
    exclude = ("raw", "metadata")
    readonly_fields = ("metadata_pretty", "raw_pretty")
    metadata_pretty = field_display("metadata", "metadata", pretty_json)
    raw_pretty = field_display("raw", "product payload", pretty_json)


@admin.register(Benefit)
class BenefitAdmin(ReadOnlyAdmin):
    list_display = ("description", "id", "type", "visibility", "is_deleted", "synced_at")
    list_filter = ("type", "is_deleted", "visibility")
    search_fields = ("description", "=id")
    search_help_text = "Name (Polar's description; contains), or Polar's benefit ID (exact)."
    ordering = ("description",)
    exclude = ("raw", "metadata")
    readonly_fields = ("metadata_pretty", "raw_pretty")
    metadata_pretty = field_display("metadata", "metadata", pretty_json)
    raw_pretty = field_display("raw", "benefit payload", pretty_json)
