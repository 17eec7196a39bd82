"""Filters for polar_sync's admin templates (``{% load polar_sync_admin %}``)."""

from __future__ import annotations

from datetime import datetime

from django import template

from ..admin.display import when as _when

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    """The admin's one date format: ``2026-12-02 15:23 UTC``."""
    return _when(value)
