"""Typed access to ``settings.POLAR_SYNC``, read at call time.

Nothing here is cached at import, so ``override_settings(POLAR_SYNC=...)`` in a
test takes effect on the next call.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from .exceptions import PolarConfigurationError

SERVERS: dict[str, str] = {
    "production": "https://api.polar.sh",
    "sandbox": "https://sandbox-api.polar.sh",
}

# Polar's documented limits (requests per minute, per organization).
RATE_LIMITS: dict[str, int] = {"production": 500, "sandbox": 100}


@dataclass(frozen=True)
class PolarSyncSettings:
    ACCESS_TOKEN: str = ""
    SERVER: str = "production"
    ORGANIZATION_ID: str | None = None
    TIMEOUT: float = 10.0
    MAX_RETRIES: int = 3
    PAGE_SIZE: int = 100
    API_VERSION: str | None = None
    # Exponential backoff: BACKOFF_BASE * 2**attempt, capped, with full jitter.
    BACKOFF_BASE: float = 0.5
    BACKOFF_MAX: float = 30.0

    def __repr__(self) -> str:
        # The token must never reach a log or a traceback through a repr.
        def show(name: str) -> str:
            value = getattr(self, name)
            return "'***'" if name == "ACCESS_TOKEN" and value else repr(value)

        shown = ", ".join(f"{f.name}={show(f.name)}" for f in fields(self))
        return f"PolarSyncSettings({shown})"

    @property
    def base_url(self) -> str:
        """The API's base URL for ``SERVER``; raises when it is neither a name nor a URL."""
        return resolve_server(self.SERVER)


def resolve_server(server: str) -> str:
    """Map ``"production"``/``"sandbox"`` or an ``http(s)://`` URL to a base URL."""
    if server in SERVERS:
        return SERVERS[server]
    parts = urlsplit(server or "")
    if parts.scheme in ("http", "https") and parts.netloc:
        return server.rstrip("/")
    raise PolarConfigurationError(
        f"POLAR_SYNC['SERVER'] is {server!r}: expected 'production', 'sandbox' or a base URL "
        "such as 'http://127.0.0.1:8111'."
    )


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def polar_settings() -> PolarSyncSettings:
    """The current ``POLAR_SYNC`` settings, with defaults filled in.

    Unknown keys are rejected so that a typo does not silently fall back to a
    default.
    """
    raw: dict[str, Any] = dict(getattr(settings, "POLAR_SYNC", None) or {})
    known = {f.name for f in fields(PolarSyncSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PolarConfigurationError(
            f"Unknown POLAR_SYNC setting(s): {', '.join(unknown)}. "
            f"Known: {', '.join(sorted(known))}."
        )
    try:
        values = {
            "ACCESS_TOKEN": str(raw.get("ACCESS_TOKEN") or ""),
            "SERVER": str(raw.get("SERVER") or "production"),
            "ORGANIZATION_ID": raw.get("ORGANIZATION_ID") or None,
            "TIMEOUT": float(raw.get("TIMEOUT", PolarSyncSettings.TIMEOUT)),
            "MAX_RETRIES": int(raw.get("MAX_RETRIES", PolarSyncSettings.MAX_RETRIES)),
            "PAGE_SIZE": int(raw.get("PAGE_SIZE", PolarSyncSettings.PAGE_SIZE)),
            "API_VERSION": raw.get("API_VERSION") or None,
            "BACKOFF_BASE": float(raw.get("BACKOFF_BASE", PolarSyncSettings.BACKOFF_BASE)),
            "BACKOFF_MAX": float(raw.get("BACKOFF_MAX", PolarSyncSettings.BACKOFF_MAX)),
        }
    except (TypeError, ValueError) as exc:
        raise PolarConfigurationError(f"Invalid POLAR_SYNC setting: {exc}") from exc
    return PolarSyncSettings(**values)
