"""A request budget shared by every worker process: a token bucket in the database.

Polar allows 500 requests a minute per organization (100 in the sandbox). By
default polar_sync spends 80% of that: the bucket refills at the budgeted rate
and holds at most the remaining 20%, so that even a full bucket spent at once
plus a minute of refill stays under Polar's limit in any 60-second window.

Each take is a single conditional ``UPDATE``, so two processes can never both
spend the last token, on any database.

A server on loopback (the local Polar server) has no limit to protect: unless
``RATE_LIMIT`` says otherwise, its budget is unlimited and costs no query.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from django.db.models import F, Value
from django.db.models.functions import Least

from ..client import PolarClient
from ..conf import WAIT_SLICE, polar_settings
from ..exceptions import PolarError, PolarRateLimitError
from ..models import RequestBudget

logger = logging.getLogger("polar_sync.budget")

BUDGET_NAME = "polar-api"


class Clock(Protocol):
    """The ``time`` module, or a test's fake."""

    def time(self) -> float: ...
    def sleep(self, seconds: float, /) -> None: ...


@dataclass(frozen=True)
class Budget:
    per_minute: float
    capacity: float
    name: str = BUDGET_NAME
    clock: Clock | None = field(default=None, compare=False, repr=False)  # None: real time

    @property
    def now(self) -> float:
        return (self.clock or time).time()

    def sleep(self, seconds: float) -> None:
        (self.clock or time).sleep(seconds)

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    @property
    def unlimited(self) -> bool:
        return math.isinf(self.per_minute)

    @classmethod
    def from_settings(cls, *, clock: Clock | None = None) -> Budget:
        limit = polar_settings().rate_limit
        if limit is None:
            return cls(per_minute=math.inf, capacity=math.inf, clock=clock)
        rate = float(limit)
        # Polar's limit is rate / 0.8 by default; keep the bucket to the rest.
        return cls(per_minute=rate, capacity=max(1.0, rate / 4), clock=clock)


def budget_try_take(*, budget: Budget, now: float | None = None, tokens: int = 1) -> float:
    """Take ``tokens`` if there are that many: 0.0, else the seconds until there are."""
    if budget.unlimited:
        return 0.0
    now = budget.now if now is None else now
    refilled = Least(
        Value(float(budget.capacity)),
        F("tokens") + (Value(float(now)) - F("updated_at")) * Value(float(budget.per_second)),
    )
    taken = (
        RequestBudget.objects.filter(name=budget.name)
        .alias(available=refilled)
        .filter(available__gte=tokens)
        .update(tokens=refilled - Value(float(tokens)), updated_at=float(now))
    )
    if taken:
        return 0.0
    row = RequestBudget.objects.filter(name=budget.name).first()
    if row is None:
        # First use: start full. A concurrent first use may win the insert; either is fine.
        RequestBudget.objects.get_or_create(
            name=budget.name, defaults={"tokens": budget.capacity, "updated_at": now}
        )
        return budget_try_take(budget=budget, now=now, tokens=tokens)
    available = min(budget.capacity, row.tokens + (now - row.updated_at) * budget.per_second)
    return max(0.001, (tokens - available) / budget.per_second)


def budget_take(
    *,
    budget: Budget,
    max_wait: float | None = None,
    tokens: int = 1,
    on_wait: Callable[[], None] | None = None,
) -> bool:
    """Wait for ``tokens`` (at most ``max_wait`` seconds); returns whether they were taken.

    With ``on_wait``, it is called at least every ``WAIT_SLICE`` seconds (a sync run's
    heartbeat: a 429's pause can outlast ``LOCK_TIMEOUT``); it may raise to give up.
    """
    waited = 0.0
    while True:
        wait = budget_try_take(budget=budget, tokens=tokens)
        if wait == 0.0:
            return True
        if max_wait is not None and waited + wait > max_wait:
            return False
        if on_wait is not None:
            on_wait()
            wait = min(wait, WAIT_SLICE)
        budget.sleep(wait)
        waited += wait


class BudgetReservoir:
    """Takes tokens from the shared budget ``batch`` at a time (one query per batch),
    hands them out one per request; a run may end with up to ``batch - 1`` unspent."""

    def __init__(
        self, budget: Budget, batch: int = 10, on_wait: Callable[[], None] | None = None
    ) -> None:
        self.budget = budget
        self.batch = max(1, min(batch, int(budget.capacity)))
        self.left = 0
        self.on_wait = on_wait

    def __call__(self) -> None:
        if self.left == 0:
            budget_take(budget=self.budget, tokens=self.batch, on_wait=self.on_wait)
            self.left = self.batch
        self.left -= 1


def budget_pause(*, budget: Budget, seconds: float, now: float | None = None) -> None:
    """Empty the bucket for ``seconds`` (after a 429), so every worker slows down."""
    if budget.unlimited:
        return  # no shared bucket: each client waits out its own Retry-After
    now = budget.now if now is None else now
    debt = -seconds * budget.per_second
    RequestBudget.objects.update_or_create(
        name=budget.name, defaults={"tokens": debt, "updated_at": now}
    )
    logger.warning("Polar rate limit hit: every worker pauses for %.1fs", seconds)


def budgeted_client(
    *, client: PolarClient | None = None, clock: Clock | None = None
) -> PolarClient:
    """A client whose every request first takes a token from the shared budget (calling
    its ``on_wait`` while it waits, so a sync run keeps its heartbeat)."""
    client = client or PolarClient.from_settings()
    budget = Budget.from_settings(clock=clock)
    if not budget.unlimited:
        client.before_request = BudgetReservoir(budget, on_wait=client.waiting)
    return client


def budget_pause_on_rate_limit(exc: PolarError) -> None:
    """After a 429 that said how long to wait, make every worker wait that long."""
    if isinstance(exc, PolarRateLimitError) and exc.retry_after:
        budget_pause(budget=Budget.from_settings(), seconds=exc.retry_after)


def budget_duration(*, requests: int, budget: Budget | None = None) -> str:
    """How long ``requests`` take within the budget, in words ("about 8 min"): the
    bucket's burst goes at once, the rest at the budgeted rate."""
    budget = budget or Budget.from_settings()
    if budget.unlimited:
        return "as fast as the server answers"
    seconds = max(0.0, requests - budget.capacity) / budget.per_second
    if seconds < 60:
        return "under a minute"
    return f"about {math.ceil(seconds / 60):,} min"
