"""Typed access to ``settings.POLAR_SYNC``, read at call time.

Each setting is declared once below: its type, its parser and its default (the
README's configuration table says what each one means). Nothing is cached at
import, so ``override_settings(POLAR_SYNC=...)`` takes effect on the next call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .exceptions import PolarConfigurationError

SERVERS: dict[str, str] = {
    "production": "https://api.polar.sh",
    "sandbox": "https://sandbox-api.polar.sh",
}

# Polar's documented limits (requests per minute, per organization).
RATE_LIMITS: dict[str, int] = {"production": 500, "sandbox": 100}

# A running sync writes its heartbeat at most every HEARTBEAT_INTERVAL seconds, and
# while it waits (request budget, retry backoff, Retry-After, a prefetched page) it
# wakes at least every WAIT_SLICE seconds to do so: only one HTTP request (bounded
# by TIMEOUT) or one slice can pass between a due heartbeat and its write.
HEARTBEAT_INTERVAL = 10.0
WAIT_SLICE = 5.0
# The shortest LOCK_TIMEOUT accepted, whatever TIMEOUT is.
LOCK_TIMEOUT_MIN = 30.0

# Polar's dated API versions polar_sync speaks (``Polar-Version``); None sends no header,
# for a server of the 2025-10 era (before dated versions, with ``/balance``).
API_VERSIONS: tuple[str, ...] = ("2026-04", "2026-10", "2027-01")
DEFAULT_API_VERSION = "2026-04"
ERA_2025 = "2025-10"  # what an answer without a ``Polar-Version`` header was served in

SECRET_SETTINGS = frozenset({"ACCESS_TOKEN", "WEBHOOK_SECRET"})
T = TypeVar("T")


@dataclass(frozen=True)
class Parser:
    """Checks and converts one setting's value; ``expected`` says what it accepts."""

    expected: str
    convert: Callable[[Any], Any]
    optional: bool = False

    def __call__(self, value: Any) -> Any:
        if self.optional and (value is None or value == ""):
            return None
        return self.convert(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _whole(value: Any) -> int:
    if value is None or isinstance(value, bool) or int(value) != float(value):
        raise ValueError("not a whole number")
    return int(value)


def _number(value: Any) -> float:
    if value is None or value == "" or isinstance(value, bool):
        raise ValueError("not a number")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not a boolean")
    return value


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError("not a list of names")
    if not all(isinstance(item, str) and item for item in value):
        raise ValueError("every item must be a non-empty string")
    return tuple(value)


TEXT = Parser("a string", _text)
OPTIONAL_TEXT = Parser("a string or None", _text, optional=True)
WHOLE = Parser("a whole number", _whole)
OPTIONAL_WHOLE = Parser("a whole number or None", _whole, optional=True)
NUMBER = Parser("a number", _number)
FLAG = Parser("True or False", _flag)
OPTIONAL_NAMES = Parser("a list of field names or None", _names, optional=True)


def setting(parse: Parser, default: T) -> T:
    """A settings field checked by ``parse`` (named, not guessed from the annotation)."""
    return field(default=default, metadata={"parse": parse})


@dataclass(frozen=True)
class PolarSyncSettings:
    # Connection
    ACCESS_TOKEN: str = setting(TEXT, "")
    SERVER: str = setting(TEXT, "production")
    ORGANIZATION_ID: str | None = setting(OPTIONAL_TEXT, None)
    TIMEOUT: float = setting(NUMBER, 10.0)
    MAX_RETRIES: int = setting(WHOLE, 3)
    PAGE_SIZE: int = setting(WHOLE, 100)
    # Pinned: Polar changing its default must not change the shapes under a project.
    API_VERSION: str | None = setting(OPTIONAL_TEXT, DEFAULT_API_VERSION)
    # Exponential backoff: BACKOFF_BASE * 2**attempt, capped, with full jitter.
    BACKOFF_BASE: float = setting(NUMBER, 0.5)
    BACKOFF_MAX: float = setting(NUMBER, 30.0)
    # Pull sync; RATE_LIMIT None: 80% of SERVER's documented limit.
    RATE_LIMIT: int | None = setting(OPTIONAL_WHOLE, None)
    STATE_REFRESH_INTERVAL: float = setting(NUMBER, 3600.0)
    BALANCE_REFRESH_INTERVAL: float = setting(NUMBER, 3600.0)
    LOCK_TIMEOUT: float = setting(NUMBER, 90.0)
    PULL_CHECKPOINT_MAX_AGE: float = setting(NUMBER, 86400.0)
    USER_EXTERNAL_ID_FIELD: str = setting(TEXT, "pk")
    # Push (local users -> Polar)
    PUSH_ENABLED: bool = setting(FLAG, True)
    DELETE_CUSTOMER_ON_USER_DELETE: bool = setting(FLAG, True)
    USER_PAYLOAD: str = setting(TEXT, "polar_sync.mapping.user_payload")
    USER_FILTER: str | None = setting(OPTIONAL_TEXT, None)
    # Staff and superusers (the site's own people) are not Polar customers unless asked.
    PUSH_STAFF: bool = setting(FLAG, False)
    # None: worked out for the default payload and no filter; (): compare every save.
    USER_FIELDS: tuple[str, ...] | None = setting(OPTIONAL_NAMES, None)
    ENQUEUE_TIMEOUT: float = setting(NUMBER, 1.0)
    # REST API
    API_PERMISSION_CLASS: str = setting(TEXT, "rest_framework.permissions.IsAdminUser")
    # Webhooks
    WEBHOOK_SECRET: str = setting(TEXT, "")
    WEBHOOK_TOLERANCE: int = setting(WHOLE, 300)
    # A larger delivery is refused (413) before it is parsed; Polar's are a few KB.
    WEBHOOK_MAX_BODY_BYTES: int = setting(WHOLE, 1024 * 1024)

    def __repr__(self) -> str:
        # Secrets must never reach a log or a traceback through a repr.
        def show(name: str) -> str:
            value = getattr(self, name)
            return "'***'" if name in SECRET_SETTINGS and value else repr(value)

        shown = ", ".join(f"{f.name}={show(f.name)}" for f in fields(self))
        return f"PolarSyncSettings({shown})"

    @property
    def base_url(self) -> str:
        return resolve_server(self.SERVER)

    @property
    def lock_timeout_floor(self) -> float:
        """The shortest safe ``LOCK_TIMEOUT``: twice the longest gap a live run can leave
        between two heartbeats (one interval, then one HTTP request or wait slice)."""
        longest_step = max(self.TIMEOUT, WAIT_SLICE)
        return max(LOCK_TIMEOUT_MIN, 2 * (HEARTBEAT_INTERVAL + longest_step))

    @property
    def speaks(self) -> str:
        """The API version whose shapes the client expects (``2025-10`` for None)."""
        return self.API_VERSION or ERA_2025

    @property
    def has_balance(self) -> bool:
        """Only a server of the 2025-10 era (``API_VERSION=None``) has ``/balance``."""
        return self.API_VERSION is None

    @property
    def rate_limit(self) -> int | None:
        """Requests per minute polar_sync may spend: ``RATE_LIMIT`` if set, else 80% of
        Polar's documented limit, or None (no budget) for a server on loopback, such as
        the local Polar server, which has no limit to protect."""
        if self.RATE_LIMIT is not None:
            return self.RATE_LIMIT
        if self.SERVER not in SERVERS and is_loopback_url(self.SERVER):
            return None
        return int(RATE_LIMITS.get(self.SERVER, RATE_LIMITS["production"]) * 0.8)

    @property
    def rate_limit_display(self) -> str:
        """The budget in force, in words (``polar_sync`` prints it before long work)."""
        rate = self.rate_limit
        if rate is None:
            return "no request budget (a server on loopback: RATE_LIMIT None is unlimited)"
        if self.RATE_LIMIT is not None:
            return f"{rate} requests/min (RATE_LIMIT)"
        name = self.SERVER if self.SERVER in RATE_LIMITS else "production"
        return f"{rate} requests/min (80% of {name}'s {RATE_LIMITS[name]})"


PARSERS: dict[str, Parser] = {f.name: f.metadata["parse"] for f in fields(PolarSyncSettings)}


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


_last_built: tuple[dict[str, Any], PolarSyncSettings] | None = None


def polar_settings() -> PolarSyncSettings:
    """The current ``POLAR_SYNC`` settings, defaults filled in, an unknown key refused
    (a typo must not fall back to a default). The checked object is reused while the
    dict is unchanged (no validation in every user save), until ``setting_changed``."""
    global _last_built
    raw: dict[str, Any] = dict(getattr(settings, "POLAR_SYNC", None) or {})
    if _last_built is not None and _last_built[0] == raw:
        return _last_built[1]
    unknown = sorted(set(raw) - set(PARSERS))
    if unknown:
        raise PolarConfigurationError(
            f"Unknown POLAR_SYNC setting(s): {', '.join(unknown)}. "
            f"Known: {', '.join(sorted(PARSERS))}."
        )
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = PARSERS[name](value)
        except (TypeError, ValueError) as exc:
            raise PolarConfigurationError(
                f"POLAR_SYNC['{name}'] is {value!r}: expected {PARSERS[name].expected} ({exc})."
            ) from None
    result = PolarSyncSettings(**values)
    _last_built = (raw, result)
    return result


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    global _last_built
    if setting == "POLAR_SYNC":
        _last_built = None
