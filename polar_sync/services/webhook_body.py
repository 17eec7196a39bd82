"""What arrives at the webhook door, before it is stored: its size, signature and JSON.

A body over ``WEBHOOK_MAX_BODY_BYTES`` is refused (413) unparsed.

Polar signs ``"{webhook-id}.{webhook-timestamp}.{body}"`` with HMAC-SHA256 and sends
``webhook-signature: v1,<base64 digest>`` (several, space-separated, while it rotates
a secret). Not delegated to ``standardwebhooks``: it passes the key bytes through its
frames as locals, which Django's DEBUG error page (blind to ``sensitive_variables``)
prints next to any exception raised while verifying. Here the secret goes from the
settings object (redacted repr) straight into HMAC objects held by
:class:`WebhookKeys` (redacted too): no frame local, log line or exception message
holds the secret, its base64 or the key bytes. The tests sign with ``standardwebhooks``.

A body that is not a JSON object is refused (400). A JSON object the database cannot
hold (nested too deep, a non-finite number, ``\\u0000`` or a lone surrogate in a
string) is not refused: its signature proves Polar sent it, and a 4xx would only make
Polar send it again and again, with no record on our side. It is stored failed
instead, as a stand-in holding the body's text with the offending characters escaped,
so that an operator sees it (and its exact text) among the failed events.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

from django.views.decorators.debug import sensitive_variables

from ..conf import PolarSyncSettings, polar_settings
from ..exceptions import PolarConfigurationError, WebhookRejected

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_WEBHOOK_ID_LENGTH = 255
STANDARD_PREFIX = "whsec_"
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


class WebhookKeys:
    """The HMAC key(s) ``WEBHOOK_SECRET`` stands for, each loaded once into an HMAC
    object (verifying copies it): no key bytes are kept, nor shown by the repr."""

    __slots__ = ("_macs",)

    # Hides the locals of this frame and those below (hmac's ``key``) in the error
    # reports sent when DEBUG is off; DEBUG shows them all, hence no local holds it.
    @sensitive_variables()
    def __init__(self, conf: PolarSyncSettings) -> None:
        try:
            # Polar's clients use the secret's raw UTF-8 bytes as the key; its newest
            # also accepts, for a ``whsec_`` secret, the Standard Webhooks key (the
            # base64-decoded part after the prefix). Both are tried.
            self._macs: tuple[hmac.HMAC, ...] = (
                hmac.new(conf.WEBHOOK_SECRET.encode(), digestmod="sha256"),
            )
            if conf.WEBHOOK_SECRET.startswith(STANDARD_PREFIX) and _is_base64_key(conf):
                self._macs += (
                    hmac.new(
                        base64.b64decode(_padded(conf.WEBHOOK_SECRET[len(STANDARD_PREFIX) :])),
                        digestmod="sha256",
                    ),
                )
        except Exception:
            # ``from None``: the traceback of the cause would show the key in hmac's frames.
            raise PolarConfigurationError(
                "POLAR_SYNC['WEBHOOK_SECRET'] cannot be used as an HMAC key"
            ) from None

    def __repr__(self) -> str:
        return "<WebhookKeys ***>"

    def matches(self, message: bytes, signatures: list[bytes]) -> bool:
        """Whether any key signs ``message`` as one of ``signatures`` (constant-time)."""
        found = False
        for mac in self._macs:
            signer = mac.copy()
            signer.update(message)
            digest = signer.digest()
            for signature in signatures:
                # No early exit: every key is tried against every signature.
                found |= hmac.compare_digest(digest, signature)
        return found


@sensitive_variables()
def webhook_verify(*, body: bytes, headers: Mapping[str, str]) -> str:
    """Check a delivery's signature and timestamp; returns its ``webhook-id``, or raises
    :class:`WebhookRejected` with the HTTP status to answer."""
    conf = polar_settings()
    if not conf.WEBHOOK_SECRET:
        # 503: Polar retries later, so deliveries are not lost while the secret is set up.
        raise WebhookRejected("POLAR_SYNC['WEBHOOK_SECRET'] is not set", status=503)
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [name for name in REQUIRED_HEADERS if not lowered.get(name)]
    if missing:
        raise WebhookRejected(f"missing header(s): {', '.join(missing)}")
    webhook_id = lowered["webhook-id"]
    if len(webhook_id) > MAX_WEBHOOK_ID_LENGTH:
        raise WebhookRejected(f"webhook-id is longer than {MAX_WEBHOOK_ID_LENGTH} characters")
    if not webhook_id.isprintable():
        raise WebhookRejected("webhook-id holds control characters")
    try:
        sent_at = int(lowered["webhook-timestamp"])
    except ValueError:
        raise WebhookRejected("webhook-timestamp is not a Unix timestamp") from None
    age = time.time() - sent_at
    if abs(age) > conf.WEBHOOK_TOLERANCE:
        raise WebhookRejected(
            f"webhook-timestamp is {age:+.0f}s from now, outside the tolerance of "
            f"{conf.WEBHOOK_TOLERANCE}s (a replayed or delayed delivery, or a clock off)",
            status=401,
        )
    signatures = _signatures(lowered["webhook-signature"])
    if not signatures:
        raise WebhookRejected("signature does not match (no v1 signature)", status=401)
    message = f"{webhook_id}.{sent_at}.".encode() + body
    if not WebhookKeys(conf).matches(message, signatures):
        raise WebhookRejected("signature does not match", status=401)
    return webhook_id


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def _is_base64_key(conf: PolarSyncSettings) -> bool:
    """Whether the part after ``whsec_`` is strict base64 of a non-empty key (an empty
    key must never count: ``whsec_`` alone would accept anyone's signature)."""
    try:
        return bool(
            base64.b64decode(_padded(conf.WEBHOOK_SECRET[len(STANDARD_PREFIX) :]), validate=True)
        )
    except (binascii.Error, ValueError):
        return False


def _signatures(header: str) -> list[bytes]:
    """The ``v1`` digests of a ``webhook-signature`` header; others and garbage are skipped."""
    found = []
    for item in header.split():
        version, _, encoded = item.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


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
