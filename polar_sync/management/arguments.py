"""Argument types for the management commands: ``parser.add_argument(..., type=integer(...))``.

Each one parses a command-line string and refuses a bad value with
``argparse.ArgumentTypeError`` stating the allowed range; argparse adds the argument's
name, and Django's ``CommandParser`` turns it into a ``CommandError`` (or a usage error
on the command line): ``Error: argument --port: must be an integer from 0 to 65,535, not
70000``. No traceback, and nothing runs before every argument is valid.

The range checks of ``polar_server``'s arguments are those of the local server itself
(:mod:`polar_sync.testing.params`), so the command and ``LocalPolarServer(...)`` agree.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.utils.dateparse import parse_date, parse_datetime

from polar_sync.testing import params

T = TypeVar("T")


def _argument_type(convert: Callable[[str], T], name: str) -> Callable[[str], T]:
    """``convert`` with its ValueError as argparse's error (the checks name no parameter:
    argparse puts the argument's name in front)."""

    def parse(value: str) -> T:
        try:
            return convert(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None

    parse.__name__ = name  # argparse's fallback name for the type
    return parse


def _int_or_text(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value  # the check then refuses it, stating the range


def _float_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def integer(*, minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An integer within ``[minimum, maximum]`` (no maximum: unbounded)."""
    return _argument_type(
        lambda v: params.check_int("", _int_or_text(v), minimum=minimum, maximum=maximum),
        "integer",
    )


def number(*, minimum: float, maximum: float) -> Callable[[str], float]:
    """A finite number within ``[minimum, maximum]`` (``nan`` and ``inf`` are refused)."""
    return _argument_type(
        lambda v: params.check_number("", _float_or_text(v), minimum=minimum, maximum=maximum),
        "number",
    )


#: A share of requests, from 0 to 1.
rate = _argument_type(lambda v: params.check_rate("", _float_or_text(v)), "number")
port = _argument_type(lambda v: params.check_port(_int_or_text(v), ""), "port")
host = _argument_type(lambda v: params.check_host(v, ""), "host")
http_url = _argument_type(lambda v: params.check_http_url("", v), "URL")
uuid = _argument_type(lambda v: params.check_uuid("", v), "UUID")
token = _argument_type(lambda v: params.check_token("", v), "token")


def text(*, max_length: int) -> Callable[[str], str]:
    """Non-empty text of at most ``max_length`` characters that a database can store
    (no NUL character, valid Unicode)."""

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
    allowed = "an ISO-8601 date or datetime, e.g. 2025-10-01 or 2025-10-01T12:00:00Z"
    try:
        parsed: Any = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            parsed = datetime(day.year, day.month, day.day) if day else None
        if parsed is not None:
            # Naive means UTC; an offset must still land within datetime's range in UTC.
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
            parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise ValueError(f"must be {allowed}, not {value!r}")
    return parsed


#: An ISO-8601 date or datetime (naive means UTC), as an aware datetime.
iso_datetime = _argument_type(_aware_datetime, "datetime")
