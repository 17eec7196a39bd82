"""Checks of the stand-in's settings: a bad value is a ``ValueError`` naming the parameter
and the allowed range, raised before anything starts (``LocalPolarServer``, ``Faults``,
``PolarStore`` and ``manage.py polar_server`` share them).

Each check returns the value it accepted, normalised (a UUID in its canonical form).
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

PORT_MAX = 65535
#: Seeding is about 20 s and 2 GB of memory per million customers.
CUSTOMERS_MAX = 1_000_000
#: Seconds: more than any client timeout worth testing.
LATENCY_MAX = 60.0
TOKEN_MAX = 255

# A DNS label: letters, digits and hyphens, not at either end.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: a header-safe bearer token


def _fail(name: str, allowed: str, value: Any) -> ValueError:
    shown = repr(value)
    if len(shown) > 60:
        shown = f"{shown[:50]}... ({len(shown):,} characters)"
    return ValueError(f"{name} must be {allowed}, not {shown}")


def check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """An integer within ``[minimum, maximum]`` (no maximum: unbounded); not a bool."""
    allowed = (
        f"an integer from {minimum:,} to {maximum:,}"
        if maximum is not None
        else f"an integer of at least {minimum:,}"
    )
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, allowed, value)
    if value < minimum or (maximum is not None and value > maximum):
        raise _fail(name, allowed, value)
    return value


def check_number(name: str, value: Any, *, minimum: float, maximum: float) -> float:
    """A finite number within ``[minimum, maximum]``; not a bool."""
    allowed = f"a number from {minimum:g} to {maximum:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, allowed, value)
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise _fail(name, allowed, value)
    return float(value)


def check_rate(name: str, value: Any) -> float:
    """A share of requests: a number from 0 to 1."""
    return check_number(name, value, minimum=0.0, maximum=1.0)


def check_port(value: Any, name: str = "port") -> int:
    return check_int(name, value, minimum=0, maximum=PORT_MAX)


def check_host(value: Any, name: str = "host") -> str:
    """An IPv4 address or a host name (``localhost``, ``polar.internal``)."""
    allowed = "an IPv4 address or a host name, e.g. 127.0.0.1, 0.0.0.0 or localhost"
    if not isinstance(value, str) or not value or len(value) > 253:
        raise _fail(name, allowed, value)
    labels = value.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):  # 999.1.1.1 is no name, just a bad address
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise _fail(name, allowed, value) from None
        return value
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise _fail(name, allowed, value)
    return value


def check_http_url(name: str, value: Any) -> str:
    """An absolute ``http://`` or ``https://`` URL with a host (and a valid port, if any)."""
    allowed = "an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/polar/webhooks/"
    if not isinstance(value, str):
        raise _fail(name, allowed, value)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError when out of range or not a number)
    except ValueError:
        raise _fail(name, allowed, value) from None
    blank = any(ch.isspace() or not ch.isprintable() for ch in value)
    if parts.scheme not in ("http", "https") or not parts.hostname or blank:
        raise _fail(name, allowed, value)
    return value


def check_uuid(name: str, value: Any) -> str:
    """A UUID, returned in its canonical lower-case form."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise _fail(name, "a UUID, e.g. 1dbfc517-0bbf-4301-9ba8-555ca42b9737", value) from None


def check_token(name: str, value: Any) -> str:
    """A bearer token a client can send in a header: 1 to 255 visible ASCII characters."""
    if not isinstance(value, str) or len(value) > TOKEN_MAX or not _TOKEN.fullmatch(value):
        # The value itself stays out of the message: it is a secret.
        raise ValueError(f"{name} must be 1 to {TOKEN_MAX} visible ASCII characters (no spaces)")
    return value
