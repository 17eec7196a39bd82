"""Argument types for the management commands: ``add_argument(..., type=integer(...))``.

Each parses a command-line string and refuses a bad value with
``argparse.ArgumentTypeError`` stating the allowed range; argparse names the argument
and Django turns it into a ``CommandError``, before anything runs. ``polar_server``'s
ranges are the local server's own (:mod:`polar_sync.testing.params`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from polar_sync.testing import params

T = TypeVar("T")


def _argument_type(convert: Callable[[str], T], name: str) -> Callable[[str], T]:
    """``convert`` with its ValueError as argparse's error (which names the argument)."""

    def parse(value: str) -> T:
        try:
            return convert(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None

    parse.__name__ = name  # argparse's fallback name for the type
    return parse


def _converted(convert: Callable[[str], Any], value: str) -> Any:
    try:
        return convert(value)
    except ValueError:
        return value  # the check then refuses it, stating the range


def integer(*, minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An integer within ``[minimum, maximum]`` (no maximum: unbounded)."""
    return _argument_type(
        lambda v: params.check_int("", _converted(int, v), minimum=minimum, maximum=maximum),
        "integer",
    )


def number(*, minimum: float, maximum: float) -> Callable[[str], float]:
    """A finite number within ``[minimum, maximum]`` (``nan`` and ``inf`` are refused)."""
    return _argument_type(
        lambda v: params.check_number("", _converted(float, v), minimum=minimum, maximum=maximum),
        "number",
    )


#: A share of requests, from 0 to 1.
rate = _argument_type(lambda v: params.check_rate("", _converted(float, v)), "number")
port = _argument_type(lambda v: params.check_port(_converted(int, v), ""), "port")
host = _argument_type(lambda v: params.check_host(v, ""), "host")
http_url = _argument_type(lambda v: params.check_http_url("", v), "URL")
uuid = _argument_type(lambda v: params.check_uuid("", v), "UUID")
token = _argument_type(lambda v: params.check_token("", v), "token")


def text(*, max_length: int) -> Callable[[str], str]:
    """Non-empty text of at most ``max_length`` characters a database can store."""

    def check(value: str) -> str:
        allowed = f"1 to {max_length:,} characters without NUL"
        shown = value if len(value) <= 40 else f"{value[:40]}... ({len(value):,} characters)"
        if not value or len(value) > max_length or "\x00" in value:
            raise ValueError(f"must be {allowed}, not {shown!r}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes on the command line
            raise ValueError(f"must be valid Unicode text, not {shown!r}") from None
        return value

    return _argument_type(check, "text")


def _aware_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed.astimezone(UTC)  # an offset must still land within datetime's range in UTC
        return parsed
    except (ValueError, OverflowError):
        raise ValueError(
            "must be an ISO-8601 date or datetime, e.g. 2025-10-01 or 2025-10-01T12:00:00Z, "
            f"not {value!r}"
        ) from None


#: An ISO-8601 date or datetime (naive means UTC), as an aware datetime.
iso_datetime = _argument_type(_aware_datetime, "datetime")
