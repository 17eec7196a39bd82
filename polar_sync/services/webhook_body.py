"""What arrives at the webhook door, before it is stored: its size and its JSON.

A body over ``WEBHOOK_MAX_BODY_BYTES`` is refused (413) unparsed, one that is not a
JSON object is refused (400). A JSON object the database cannot hold (nested too
deep, a non-finite number, ``\\u0000`` or a lone surrogate in a string) is not
refused: its signature proves Polar sent it, and a 4xx would only make Polar send it
again and again, with no record on our side. It is stored failed instead, as a
stand-in holding the body's text with the offending characters escaped, so that an
operator sees it (and its exact text) among the failed events.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Protocol

from ..conf import polar_settings
from ..exceptions import WebhookRejected

# The key of the stand-in payload of a body the database could not store.
UNSTORABLE_KEY = "unstorable_body"
# Polar's payloads are a few levels deep; this bound keeps parsing, storing and
# serializing far from Python's recursion limit, whatever the stack depth.
MAX_DEPTH = 64
# PostgreSQL's jsonb refuses \u0000 and unpaired surrogates; SQLite would take them,
# but a value stored on one database must be storable on the other.
_UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")


class Readable(Protocol):
    """A binary stream: a file, or Django's HttpRequest."""

    def read(self, size: int = ..., /) -> bytes: ...


def webhook_body_read(*, stream: Readable, content_length: str | None) -> bytes:
    """Read a delivery's body, refusing (413) one over ``WEBHOOK_MAX_BODY_BYTES``: by
    its declared length before reading, else by reading one byte past the limit."""
    limit = polar_settings().WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(content_length or 0)
    except ValueError:
        declared = 0
    too_big = f"over the limit of {limit} bytes (POLAR_SYNC['WEBHOOK_MAX_BODY_BYTES'])"
    if declared > limit:
        raise WebhookRejected(f"the body is {declared} bytes, {too_big}", status=413)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise WebhookRejected(f"the body is {too_big}", status=413)
    return body


def webhook_body_parse(body: bytes) -> tuple[dict[str, Any], str]:
    """The payload to store for a verified body, and why it is not the body as sent
    ("" when it is); raises :class:`WebhookRejected` (400) for a non-object."""
    try:
        payload = json.loads(body)
    except RecursionError:
        return _stand_in(body, None), f"the JSON is nested deeper than {MAX_DEPTH} levels"
    except ValueError:
        raise WebhookRejected("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected("the body is not a JSON object")
    problem = _unstorable(payload)
    if problem:
        return _stand_in(body, payload.get("type")), problem
    return payload, ""


def _unstorable(payload: dict[str, Any]) -> str:
    """Why the database would refuse ``payload`` ("" when it would not); no recursion."""
    stack: list[tuple[Any, str, int]] = [(payload, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"the JSON is nested deeper than {MAX_DEPTH} levels (at {path})"
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{_escaped(key)[:80]}" if path else _escaped(key)[:80]
                if _UNSTORABLE_CHARS.search(key):
                    return f"a key holds \\u0000 or a lone surrogate (at {where})"
                stack.append((item, where, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            if _UNSTORABLE_CHARS.search(value):
                return f"a string holds \\u0000 or a lone surrogate (at {path})"
        elif isinstance(value, float) and not math.isfinite(value):
            return f"a number is not finite: NaN, Infinity or out of range, e.g. 1e999 (at {path})"
    return ""


def _escaped(text: str) -> str:
    return _UNSTORABLE_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _stand_in(body: bytes, event_type: Any) -> dict[str, Any]:
    """The body's text, in a form every database accepts, and its type if it is clean."""
    stand_in: dict[str, Any] = {UNSTORABLE_KEY: _escaped(body.decode("utf-8", "backslashreplace"))}
    if isinstance(event_type, str) and not _UNSTORABLE_CHARS.search(event_type):
        stand_in["type"] = event_type
    return stand_in
