"""Is a webhook delivery genuine? The Standard Webhooks signature, checked secret-safely.

Polar signs ``"{webhook-id}.{webhook-timestamp}.{body}"`` with HMAC-SHA256 and sends
``webhook-signature: v1,<base64 digest>`` (several, space-separated, while it rotates
a secret). Not delegated to ``standardwebhooks``: it passes the key bytes through its
frames as locals, which Django's DEBUG error page (blind to ``sensitive_variables``)
prints next to any exception raised while verifying. Here the secret goes from the
settings object (redacted repr) straight into HMAC objects held by
:class:`WebhookKeys` (redacted too): no frame local, log line or exception message
holds the secret, its base64 or the key bytes. The tests sign with ``standardwebhooks``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Mapping

from django.views.decorators.debug import sensitive_variables

from ..conf import PolarSyncSettings, polar_settings
from ..exceptions import PolarConfigurationError, WebhookRejected

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_WEBHOOK_ID_LENGTH = 255
STANDARD_PREFIX = "whsec_"


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
def webhook_verify(*, body: bytes, headers: Mapping[str, str], now: float | None = None) -> str:
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
    age = (time.time() if now is None else now) - sent_at
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
