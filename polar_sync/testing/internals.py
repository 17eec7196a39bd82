"""What the test handle (:mod:`.arrange`) uses of the store, as a protocol.

The handle is a mixin of :class:`~polar_sync.testing.store.PolarStore` typed against
this, so that the store module imports the handle and not the other way round.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from . import state as st
from .records import CustomerRecord, StateRecord
from .requestlog import RequestLog

Event = tuple[str, dict[str, Any]]


class StoreInternals(Protocol):
    """What the handle uses of :class:`~polar_sync.testing.store.PolarStore`.

    The mixin is typed against this rather than the store, so that the store module
    imports this one and not the other way round.
    """

    _by_id: dict[str, CustomerRecord]
    _by_email: dict[str, CustomerRecord]
    _by_external: dict[str, CustomerRecord]
    _active: list[CustomerRecord]
    _catalog: st.Catalog | None
    _seq: int

    @property
    def lock(self) -> AbstractContextManager[Any]: ...
    @property
    def log(self) -> RequestLog: ...
    @property
    def organization_id(self) -> str: ...
    @property
    def balance_currency(self) -> str: ...
    def _next_seq(self) -> int: ...
    def _next_created_us(self) -> int: ...
    def _index(self, record: CustomerRecord) -> None: ...
    def _bulk_index(self, records: list[CustomerRecord]) -> None: ...
    def _live(self, customer_id: str) -> CustomerRecord: ...
    def _state(self, record: CustomerRecord) -> StateRecord | None: ...
    def _state_for_change(self, record: CustomerRecord) -> StateRecord: ...
    def _events(self, record: CustomerRecord, *types: str) -> list[Event]: ...
    def _dispatch(self, events: list[Event]) -> None: ...
    def _assign(self, record: CustomerRecord, values: dict[str, Any]) -> bool: ...
    def _soft_delete(self, record: CustomerRecord) -> list[Event]: ...
