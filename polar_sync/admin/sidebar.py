"""The Sync status page as an entry of the admin's app list (index, app page and sidebar).

The app list is built from registered models, and the status page is no model's
changelist, so :func:`install_status_entry` wraps the site's public
``get_app_list`` to put one more entry first in polar_sync's models. It shows to
whoever may view sync runs (the page's own permission). A project with its own
``AdminSite`` calls ``install_status_entry(my_site)``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

APP_LABEL = "polar_sync"
ENTRY_NAME = "Sync status"


def _status_entry(site: admin.AdminSite, request: HttpRequest) -> dict[str, Any] | None:
    if not request.user.has_perm(f"{APP_LABEL}.view_syncrun"):
        return None
    try:
        url = reverse(f"{site.name}:polar_sync_syncrun_status", current_app=site.name)
    except NoReverseMatch:  # SyncRun is not registered on this site
        return None
    return {
        "model": None,
        "name": ENTRY_NAME,
        "object_name": "SyncStatus",
        "perms": {"view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }


def install_status_entry(site: admin.AdminSite = admin.site) -> None:
    """Make ``site``'s app list show "Sync status" among polar_sync's models (idempotent)."""
    if getattr(site, "_polar_sync_status_entry", False):
        return
    original = site.get_app_list

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        app_list = original(request, app_label)
        for app in app_list:
            entry = _status_entry(site, request) if app["app_label"] == APP_LABEL else None
            if entry is not None:
                app["models"].insert(0, entry)
        return app_list

    site.get_app_list = get_app_list  # type: ignore[method-assign]
    site._polar_sync_status_entry = True  # type: ignore[attr-defined]


install_status_entry()
