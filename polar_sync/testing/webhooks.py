"""Webhook deliveries from the stand-in, signed like Polar's (the Standard Webhooks scheme).

A :class:`WebhookSender` subscribes to a :class:`~polar_sync.testing.store.PolarStore` and
POSTs ``{"type": ..., "timestamp": ..., "data": ...}`` (the ``Webhook*Payload`` schemas;
the 2026 versions add a top-level ``api_version``) for every change, from one background
thread, retrying failed deliveries with exponential backoff. For tests it can deliver
every event twice (``duplicate``) and deliver each batch of events newest first
(``reorder``)::

    server = LocalPolarServer(webhook_url="http://127.0.0.1:8000/polar/webhooks/",
                              webhook_secret="polar_whs_...").start()
    server.store.start_subscription(customer_id)
    server.webhooks.flush()  # wait until every event was delivered (or given up)

Standard library only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .params import check_http_url

logger = logging.getLogger(__name__)

USER_AGENT = "polar-sync-local-polar-webhooks"


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (``v1,<base64 HMAC-SHA256>``).

    Like Polar, the secret's raw bytes are the HMAC key: a Standard Webhooks verifier
    gets them base64-encoded (``Webhook(base64.b64encode(secret.encode()))``).
    """
    key = secret.encode()
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class Delivery:
    """One event and what became of it. ``responses`` lists the HTTP status of every
    attempt (0: no answer); ``delivered`` counts the 2xx answers (2 with ``duplicate``)."""

    webhook_id: str
    event_type: str
    body: bytes
    responses: list[int] = field(default_factory=list)
    delivered: int = 0
    gave_up: bool = False

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def attempts(self) -> int:
        return len(self.responses)


class WebhookSender:
    """Sends the store's change events to ``url``, signed with ``secret``; thread-safe.

    ``max_attempts`` tries per delivery, waiting ``backoff * 2**n`` seconds (at most
    ``backoff_max``) between them, like Polar's retries only faster. ``reorder`` waits until
    no new event came for ``reorder_window`` seconds, then sends that batch newest first.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        duplicate: bool = False,
        reorder: bool = False,
        max_attempts: int = 5,
        backoff: float = 0.05,
        backoff_max: float = 2.0,
        timeout: float = 10.0,
        reorder_window: float = 0.2,
        log_size: int = 100_000,
        api_version: str | None = None,
    ) -> None:
        check_http_url("webhook_url", url)
        if not secret:
            raise ValueError("webhook_secret is required to sign the deliveries")
        self.url = url
        # The 2026 versions put the endpoint's version in every payload; None: 2025-10 era.
        self.api_version = api_version
        self._secret = secret
        self.duplicate = duplicate
        self.reorder = reorder
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.reorder_window = reorder_window
        self._log: deque[Delivery] = deque(maxlen=log_size)
        self._queue: deque[Delivery] = deque()
        self._pending = 0  # queued or being sent
        self._held = 0
        self._last_event_at = 0.0
        self._last_timestamp = datetime.min.replace(tzinfo=UTC)
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Loopback endpoints must not go through an http_proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:  # the secret stays out of reprs
        return f"<WebhookSender {self.url} pending={self._pending}>"

    # -- events in ---------------------------------------------------------------------

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        """The store's subscriber: queue one event (delivered by the sender's thread)."""
        self.send(event_type, data)

    def send(self, event_type: str, data: dict[str, Any]) -> Delivery:
        """Queue one event now; returns its :class:`Delivery` record."""
        with self._cond:
            # Strictly increasing, so that the receiver can order one customer's events.
            moment = max(datetime.now(UTC), self._last_timestamp + timedelta(microseconds=1))
            self._last_timestamp = moment
            payload: dict[str, Any] = {
                "type": event_type,
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            if self.api_version is not None:
                payload["api_version"] = self.api_version
            payload["data"] = data
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            delivery = Delivery(str(uuid.uuid4()), event_type, body)
            self._log.append(delivery)
            self._queue.append(delivery)
            self._pending += 1
            self._last_event_at = time.monotonic()
            self._cond.notify_all()
        return delivery

    @property
    def deliveries(self) -> list[Delivery]:
        """Every event queued so far, oldest first."""
        with self._cond:
            return list(self._log)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Send nothing inside the block; on exit the events go out as one batch
        (newest first with ``reorder``)."""
        with self._cond:
            self._held += 1
        try:
            yield
        finally:
            with self._cond:
                self._held -= 1
                self._last_event_at = 0.0  # no reorder wait: the batch is complete
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    # -- the thread ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> WebhookSender:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"WebhookSender:{self.url}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sending; events not delivered yet stay queued for the next ``start()``."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        thread.join(timeout)

    def _next_batch(self) -> list[Delivery]:
        with self._cond:
            while not self._stopping.is_set():
                if self._queue and not self._held:
                    if not self.reorder:
                        return [self._queue.popleft()]
                    quiet = time.monotonic() - self._last_event_at
                    if quiet >= self.reorder_window:
                        batch = list(self._queue)
                        self._queue.clear()
                        return batch[::-1]
                    self._cond.wait(self.reorder_window - quiet)
                else:
                    self._cond.wait()
        return []

    def _run(self) -> None:
        while not self._stopping.is_set():
            batch = self._next_batch()
            for index, delivery in enumerate(batch):
                if not self._stopping.is_set():
                    for _copy in range(2 if self.duplicate else 1):
                        self._deliver(delivery)
                if self._stopping.is_set() and not (delivery.delivered or delivery.gave_up):
                    with self._cond:  # back to the front, in the order they were to go
                        self._queue.extendleft(reversed(batch[index:]))
                    return
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        for attempt in range(self.max_attempts):
            status = self._post(delivery)
            delivery.responses.append(status)
            if 200 <= status < 300:
                delivery.delivered += 1
                return
            if attempt + 1 < self.max_attempts:
                delay = min(self.backoff * 2**attempt, self.backoff_max)
                if self._stopping.wait(delay):
                    return
        delivery.gave_up = True
        logger.warning(
            "webhook %s (%s) not delivered after %d attempts (last status %s)",
            delivery.webhook_id,
            delivery.event_type,
            self.max_attempts,
            delivery.responses[-1] if delivery.responses else "-",
        )

    def _post(self, delivery: Delivery) -> int:
        """One attempt, signed with a fresh timestamp; the HTTP status, 0 for no answer."""
        timestamp = int(time.time())
        request = urllib.request.Request(  # noqa: S310  (the scheme is checked in __init__)
            self.url,
            data=delivery.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "webhook-id": delivery.webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(
                    self._secret, delivery.webhook_id, timestamp, delivery.body
                ),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            exc.read()
            return exc.code
        except (OSError, ValueError) as exc:  # URLError, refused, reset, timeout
            logger.debug("webhook %s: no answer (%s)", delivery.webhook_id, exc)
            return 0
