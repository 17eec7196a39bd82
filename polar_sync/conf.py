"""Typed access to ``settings.POLAR_SYNC``, read at call time.

Nothing here is cached at import, so ``override_settings(POLAR_SYNC=...)`` in a
test takes effect on the next call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any
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


@dataclass(frozen=True)
class PolarSyncSettings:
    # Connection
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
    # Pull sync
    # Requests per minute that polar_sync may spend, shared by every worker;
    # None means 80% of the documented limit of SERVER (500 production, 100 sandbox).
    RATE_LIMIT: int | None = None
    STATE_REFRESH_INTERVAL: float = 3600.0  # seconds before a state counts as stale
    BALANCE_REFRESH_INTERVAL: float = 3600.0
    # Seconds without a heartbeat after which a running sync is presumed dead (its
    # process was killed) and the next run of its kind takes over the lock.
    LOCK_TIMEOUT: float = 90.0
    # Seconds a failed pull's checkpoint may be continued, counted from the walk's
    # first page; an older one is dropped and the next pull walks from page 1.
    PULL_CHECKPOINT_MAX_AGE: float = 86400.0
    # The user model field whose value (as a string) is the customer's external ID
    # in Polar: how customers are linked to local users, both ways.
    USER_EXTERNAL_ID_FIELD: str = "pk"
    # Push (local users -> Polar)
    PUSH_ENABLED: bool = True
    DELETE_CUSTOMER_ON_USER_DELETE: bool = True
    USER_PAYLOAD: str = "polar_sync.mapping.user_payload"
    USER_FILTER: str | None = None  # dotted path of ``f(user) -> bool``; None: every user
    # The user model fields USER_PAYLOAD and USER_FILTER read. A save(update_fields=...)
    # that names none of them (a login's last_login...) then costs no query. None:
    # worked out for the default payload and no filter; (): compare every save.
    USER_FIELDS: tuple[str, ...] | None = None
    # Seconds a push may hold up the request that saved the user: the broker taking the
    # task, or with no broker the in-process push's one request to Polar.
    ENQUEUE_TIMEOUT: float = 1.0
    # REST API
    API_PERMISSION_CLASS: str = "rest_framework.permissions.IsAdminUser"
    # Webhooks
    WEBHOOK_SECRET: str = ""
    WEBHOOK_TOLERANCE: int = 300  # seconds of clock skew accepted on webhook-timestamp
    # A larger delivery is refused (413) before it is parsed; Polar's are a few KB.
    WEBHOOK_MAX_BODY_BYTES: int = 1024 * 1024

    def __repr__(self) -> str:
        # Secrets must never reach a log or a traceback through a repr.
        def show(name: str) -> str:
            value = getattr(self, name)
            return "'***'" if name in SECRET_SETTINGS and value else repr(value)

        shown = ", ".join(f"{f.name}={show(f.name)}" for f in fields(self))
        return f"PolarSyncSettings({shown})"

    @property
    def base_url(self) -> str:
        """The API's base URL for ``SERVER``; raises when it is neither a name nor a URL."""
        return resolve_server(self.SERVER)

    @property
    def lock_timeout_floor(self) -> float:
        """The shortest safe ``LOCK_TIMEOUT``: twice the longest gap a live run can leave
        between two heartbeats (one heartbeat interval, then the longest step that
        cannot beat: one HTTP request, bounded by ``TIMEOUT``, or one wait slice)."""
        longest_step = max(self.TIMEOUT, WAIT_SLICE)
        return max(LOCK_TIMEOUT_MIN, 2 * (HEARTBEAT_INTERVAL + longest_step))

    @property
    def rate_limit(self) -> int:
        """Requests per minute polar_sync may spend (80% of Polar's limit by default)."""
        if self.RATE_LIMIT is not None:
            return self.RATE_LIMIT
        return int(RATE_LIMITS.get(self.SERVER, RATE_LIMITS["production"]) * 0.8)


SECRET_SETTINGS = frozenset({"ACCESS_TOKEN", "WEBHOOK_SECRET"})


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
    default. Read on every call: the checked object is reused while the dict is
    equal to the one it was built from (a dict comparison instead of a validation
    inside every user save), and dropped on ``setting_changed`` (``override_settings``).
    """
    global _last_built
    raw: dict[str, Any] = dict(getattr(settings, "POLAR_SYNC", None) or {})
    built = _last_built
    if built is not None and built[0] == raw:
        return built[1]
    result = _build(raw)
    _last_built = (raw, result)
    return result


_last_built: tuple[dict[str, Any], PolarSyncSettings] | None = None


def _build(raw: dict[str, Any]) -> PolarSyncSettings:
    unknown = sorted(set(raw) - set(PARSERS))
    if unknown:
        raise PolarConfigurationError(
            f"Unknown POLAR_SYNC setting(s): {', '.join(unknown)}. "
            f"Known: {', '.join(sorted(PARSERS))}."
        )
    values: dict[str, Any] = {}
    for name, value in raw.items():
        parse = PARSERS[name]
        try:
            values[name] = parse(value)
        except (TypeError, ValueError) as exc:
            raise PolarConfigurationError(
                f"POLAR_SYNC['{name}'] is {value!r}: expected {parse.expected} ({exc})."
            ) from None
    return PolarSyncSettings(**values)


class Parser:
    """Checks and converts one setting's value; ``expected`` says what it accepts."""

    def __init__(
        self, expected: str, convert: Callable[[Any], Any], *, optional: bool = False
    ) -> None:
        self.expected = f"{expected} or None" if optional else expected
        self.convert, self.optional = convert, optional

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
OPTIONAL_TEXT = Parser("a string", _text, optional=True)
WHOLE = Parser("a whole number", _whole)
OPTIONAL_WHOLE = Parser("a whole number", _whole, optional=True)
NUMBER = Parser("a number", _number)
FLAG = Parser("True or False", _flag)
OPTIONAL_NAMES = Parser("a list of field names", _names, optional=True)

# How each setting is checked, named explicitly (a test checks that every field of
# PolarSyncSettings has one): its type is not guessed from the annotation.
PARSERS: dict[str, Parser] = {
    "ACCESS_TOKEN": TEXT,
    "SERVER": TEXT,
    "ORGANIZATION_ID": OPTIONAL_TEXT,
    "TIMEOUT": NUMBER,
    "MAX_RETRIES": WHOLE,
    "PAGE_SIZE": WHOLE,
    "API_VERSION": OPTIONAL_TEXT,
    "BACKOFF_BASE": NUMBER,
    "BACKOFF_MAX": NUMBER,
    "RATE_LIMIT": OPTIONAL_WHOLE,
    "STATE_REFRESH_INTERVAL": NUMBER,
    "BALANCE_REFRESH_INTERVAL": NUMBER,
    "LOCK_TIMEOUT": NUMBER,
    "PULL_CHECKPOINT_MAX_AGE": NUMBER,
    "USER_EXTERNAL_ID_FIELD": TEXT,
    "PUSH_ENABLED": FLAG,
    "DELETE_CUSTOMER_ON_USER_DELETE": FLAG,
    "USER_PAYLOAD": TEXT,
    "USER_FILTER": OPTIONAL_TEXT,
    "USER_FIELDS": OPTIONAL_NAMES,
    "ENQUEUE_TIMEOUT": NUMBER,
    "API_PERMISSION_CLASS": TEXT,
    "WEBHOOK_SECRET": TEXT,
    "WEBHOOK_TOLERANCE": WHOLE,
    "WEBHOOK_MAX_BODY_BYTES": WHOLE,
}


@receiver(setting_changed)
def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    """Re-read ``POLAR_SYNC`` after ``override_settings`` or any announced change."""
    global _last_built
    if setting == "POLAR_SYNC":
        _last_built = None
