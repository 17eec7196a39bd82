"""Fault injection: rate limiting, failures, latency, dropped connections, broken JSON.

One :class:`Faults` per server, read on every request, so tests can change it while the
server runs (``server.faults.fail_rate = 1.0``). Random decisions come from a seeded RNG:
a single client making the same requests sees the same faults on every run.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from .params import LATENCY_MAX, check_int, check_number, check_rate

FAIL_STATUSES: tuple[int, ...] = (500, 502, 503)


@dataclass
class Faults:
    """What goes wrong, and how often.

    - ``rate_limit``: requests allowed per ``rate_limit_window`` seconds (a sliding window
      shared by every connection), None for no limit, 0 to refuse every request; Polar
      allows 500 a minute in production and 100 in the sandbox. Over it: 429 with
      ``Retry-After``.
    - ``fail_rate``: share of requests answered with a status drawn from ``fail_statuses``.
    - ``latency``: seconds added before every answer (at most 60).
    - ``drop_rate``: share of requests whose connection is closed without an answer.
    - ``malformed_rate``: share of successful JSON answers cut in half (status unchanged).
    - ``balance_route``: False makes ``/v1/customers/{id}/balance`` an unknown route, as on
      an API version without it (404 ``{"detail": "Not Found"}``).

    Construction refuses values outside these ranges (``ValueError`` naming the field);
    assignments at runtime are not checked.
    """

    rate_limit: int | None = None
    rate_limit_window: float = 60.0
    fail_rate: float = 0.0
    fail_statuses: tuple[int, ...] = FAIL_STATUSES
    latency: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    balance_route: bool = True
    seed: int = 0
    # Where the rate limit reads the time: a test may share a fake clock with the
    # request budget, so that a minute of pacing takes no real time.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _hits: deque[float] = field(init=False, repr=False, default_factory=deque)

    def __post_init__(self) -> None:
        if self.rate_limit is not None:
            check_int("rate_limit", self.rate_limit, minimum=0)
        check_number("rate_limit_window", self.rate_limit_window, minimum=0.001, maximum=86400)
        for name in ("fail_rate", "drop_rate", "malformed_rate"):
            check_rate(name, getattr(self, name))
        check_number("latency", self.latency, minimum=0.0, maximum=LATENCY_MAX)
        self.fail_statuses = tuple(self.fail_statuses)
        if not self.fail_statuses or not all(
            isinstance(s, int) and s in HTTPStatus._value2member_map_ and s >= 400
            for s in self.fail_statuses
        ):
            raise ValueError(
                "fail_statuses must be HTTP error statuses (400 to 599), e.g. (500, 502, 503), "
                f"not {self.fail_statuses!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, not {self.seed!r}")
        self._rng = random.Random(self.seed)

    def roll(self, rate: float) -> bool:
        """True with probability ``rate`` (no RNG draw when it is 0 or 1)."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._lock:
            return self._rng.random() < rate

    def failure_status(self) -> int:
        with self._lock:
            return self._rng.choice(self.fail_statuses)

    def admit(self, now: float | None = None) -> int | None:
        """Count a request against the rate limit: None if allowed, else the seconds
        (rounded up, at least 1) until the window has room again."""
        limit = self.rate_limit
        if limit is None:
            return None
        now = self.clock() if now is None else now
        window = self.rate_limit_window
        with self._lock:
            hits = self._hits
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                if not hits:  # a limit of 0 refuses everything
                    return max(math.ceil(window), 1)
                return max(math.ceil(hits[0] + window - now), 1)
            hits.append(now)
            return None

    def reset_rate_limit(self) -> None:
        """Forget the requests counted so far."""
        with self._lock:
            self._hits.clear()

    def clear(self) -> None:
        """No faults at all (the route set is restored too)."""
        self.rate_limit = None
        self.fail_rate = self.latency = self.drop_rate = self.malformed_rate = 0.0
        self.balance_route = True
        self.reset_rate_limit()
