"""Pytest fixtures serving a local Polar customers API in-process.

Enable them in your project's root ``conftest.py``::

    pytest_plugins = ["polar_sync.testing.pytest_plugin"]

Fixtures:

``polar_server``
    A :class:`~polar_sync.testing.LocalPolarServer`, started on a free loopback port for
    one test, empty, without faults, stopped afterwards. Point your code at
    ``polar_server.url`` with ``polar_server.token``, arrange the world with
    ``polar_server.store`` and break it with ``polar_server.faults``::

        def test_pull(polar_server, settings):
            settings.POLAR_SYNC = {"SERVER": polar_server.url,
                                   "ACCESS_TOKEN": polar_server.token}
            customer = polar_server.store.add_customer(email="ada@example.com")
            polar_server.store.start_subscription(customer["id"], amount=2900)
            ...
            assert polar_server.store.request_counts["customers:list"] == 1

``polar_server_factory``
    A function taking the same keyword arguments as ``LocalPolarServer`` (``customers``,
    ``seed``, ``rate_limit``, ``fail_rate``, ``latency``, ``drop_rate``, ``malformed_rate``,
    ``balance_route``, ``token``, ``api_version`` (default ``"2026-04"``, the version
    polar_sync speaks by default; ``"2025-10"`` for a server of that era, with
    ``API_VERSION=None``)...) and returning a started server; every server it made is
    stopped when the test ends::

        def test_survives_outage(polar_server_factory):
            polar = polar_server_factory(customers=250, seed=3, rate_limit=100)
            polar.stop()   # outage
            polar.start()  # back, same port, same customers
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from polar_sync.testing import LocalPolarServer

ServerFactory = Callable[..., LocalPolarServer]


@pytest.fixture
def polar_server_factory() -> Iterator[ServerFactory]:
    """Make started :class:`LocalPolarServer` instances; all are stopped at teardown."""
    servers: list[LocalPolarServer] = []

    def make(**options: Any) -> LocalPolarServer:
        server = LocalPolarServer(**options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def polar_server(polar_server_factory: ServerFactory) -> LocalPolarServer:
    """An empty, fault-free local Polar server for this test."""
    return polar_server_factory()
