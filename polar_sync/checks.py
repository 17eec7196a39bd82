"""Django system checks for ``settings.POLAR_SYNC`` (ids ``polar_sync.E0xx`` / ``W0xx``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import is_loopback_url, polar_settings, resolve_server
from .exceptions import PolarConfigurationError


@register(Tags.compatibility)
def check_polar_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        conf = polar_settings()
    except PolarConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint="Fix settings.POLAR_SYNC: it is a dict of the keys listed in the README.",
                id="polar_sync.E001",
            )
        ]

    messages: list[CheckMessage] = []
    if not conf.ACCESS_TOKEN:
        # A warning, not an error: an error would also block ``migrate`` and
        # ``collectstatic`` in builds that have no secrets, which helps nobody.
        messages.append(
            Warning(
                "POLAR_SYNC['ACCESS_TOKEN'] is not set: polar_sync cannot talk to Polar.",
                hint="Create an Organization Access Token (scopes customers:read, "
                "customers:write) in Polar's organization settings and set it, e.g. from "
                "the POLAR_ACCESS_TOKEN environment variable.",
                id="polar_sync.W002",
            )
        )
    try:
        base_url = resolve_server(conf.SERVER)
    except PolarConfigurationError as exc:
        base_url = None
        messages.append(
            Error(
                str(exc),
                hint="Use 'production', 'sandbox', or the base URL of a local Polar server.",
                id="polar_sync.E002",
            )
        )
    if not 1 <= conf.PAGE_SIZE <= 100:
        messages.append(
            Error(
                f"POLAR_SYNC['PAGE_SIZE'] is {conf.PAGE_SIZE}: Polar accepts 1 to 100.",
                hint="Leave it unset to use 100, the fastest value.",
                id="polar_sync.E003",
            )
        )
    if conf.TIMEOUT <= 0 or conf.MAX_RETRIES < 0:
        messages.append(
            Error(
                f"POLAR_SYNC TIMEOUT={conf.TIMEOUT} / MAX_RETRIES={conf.MAX_RETRIES} are invalid.",
                hint="TIMEOUT must be > 0 seconds and MAX_RETRIES >= 0.",
                id="polar_sync.E005",
            )
        )
    if base_url and base_url.startswith("http://") and not is_loopback_url(base_url):
        messages.append(
            Warning(
                f"POLAR_SYNC['SERVER'] is a plain http:// URL ({base_url}) that is not "
                "loopback: the access token would travel unencrypted.",
                hint="Use https://, or a loopback address for a local Polar server.",
                id="polar_sync.W001",
            )
        )
    return messages
