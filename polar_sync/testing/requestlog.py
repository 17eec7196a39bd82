"""What the stand-in's HTTP API served: a bounded log plus counters that never reset by
themselves."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestRecord:
    """One request. ``status`` is 0 when the connection was dropped without an answer;
    ``operation`` is the contract's operationId (``"customers:list"``...) or None."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    status: int = 0
    operation: str | None = None


class RequestLog:
    def __init__(self, maxlen: int | None = 100_000) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._operations: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()

    def record(self, entry: RequestRecord) -> None:
        with self._lock:
            self._records.append(entry)
            self._operations[entry.operation or "unknown"] += 1
            self._statuses[entry.status] += 1

    @property
    def requests(self) -> list[RequestRecord]:
        """The most recent requests, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    @property
    def request_counts(self) -> Counter[str]:
        """Requests by operationId (``"unknown"`` for routes outside the contract)."""
        with self._lock:
            return Counter(self._operations)

    @property
    def status_counts(self) -> Counter[int]:
        """Requests by HTTP status (0 = dropped connection)."""
        with self._lock:
            return Counter(self._statuses)

    @property
    def request_total(self) -> int:
        with self._lock:
            return sum(self._statuses.values())

    def reset_requests(self) -> None:
        with self._lock:
            self._records.clear()
            self._operations.clear()
            self._statuses.clear()
