from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tests import contract

# The fixtures host projects use too: polar_server, polar_server_factory.
pytest_plugins = ["polar_sync.testing.pytest_plugin"]


def pytest_configure(config: pytest.Config) -> None:
    """Django's own deprecation warnings fail a test, on every Django version.

    The class names change with each release (``RemovedInDjango61Warning`` on
    5.2, ``RemovedInNextVersionWarning`` on 6.1), so they come from
    tests/settings.py rather than pyproject.toml, where an unknown name is an error.
    """
    from tests.settings import DJANGO_DEPRECATIONS

    for category in DJANGO_DEPRECATIONS:
        config.addinivalue_line(
            "filterwarnings", f"error::{category.__module__}.{category.__qualname__}"
        )


FIXTURES = Path(__file__).parent / "fixtures"
BASE_URL = "http://polar.test"
TOKEN = "polar_oat_secret_token_never_shown"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A ``test_zz_*`` test checks what the rest of its module did: whatever the order
    (pytest-randomly shuffles), it runs after the other tests of its module."""
    checks = [item for item in items if item.name.startswith("test_zz_")]
    for item in checks:
        items.remove(item)
    for item in checks:
        end = max(i for i, other in enumerate(items) if other.module is item.module)
        items.insert(end + 1, item)


def load_fixture(name: str) -> Any:
    """A fresh copy of ``tests/fixtures/<name>.json``."""
    return copy.deepcopy(_read(name))


_cache: dict[str, Any] = {}


def _read(name: str) -> Any:
    if name not in _cache:
        _cache[name] = json.loads((FIXTURES / f"{name}.json").read_text())
    return _cache[name]


@pytest.fixture
def fixture_json():
    return load_fixture


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Patch the client's sleep: record the delays instead of waiting."""
    recorded: list[float] = []
    monkeypatch.setattr("polar_sync.client.time.sleep", recorded.append)
    return recorded


@pytest.fixture
def polar_http(sleeps: list[float]) -> Iterator[responses.RequestsMock]:
    """``responses`` mock for the Polar API at BASE_URL.

    On teardown, every request the code under test sent is checked against the
    document of the API version it named (when that document is available).
    """
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        for call in mock.calls:
            # The document of the version the request named (none: the 2025-10 era).
            version = call.request.headers.get("Polar-Version") or "2025-10"
            if contract.spec_path(version).is_file():
                contract.validate_request(
                    call.request.method, call.request.url, call.request.body, version=version
                )


@pytest.fixture
def client():
    """A client speaking today's default version (2026-04)."""
    from polar_sync.client import PolarClient

    with PolarClient(access_token=TOKEN, server=BASE_URL, max_retries=3, timeout=1.0) as c:
        yield c


@pytest.fixture
def client_2025():
    """A client for a server of the 2025-10 era (API_VERSION None: no header, /balance)."""
    from polar_sync.client import PolarClient

    with PolarClient(
        access_token=TOKEN, server=BASE_URL, max_retries=3, timeout=1.0, api_version=None
    ) as c:
        yield c


# API_VERSION setting -> the local server that plays it (None: a server of the 2025-10 era).
SERVED_BY = {None: "2025-10", "2026-04": "2026-04", "2026-10": "2026-10", "2027-01": "2027-01"}


def serve_polar(settings, api_version: str | None = "2026-04"):
    """A started local Polar server of ``api_version``'s era, POLAR_SYNC pointed at it
    (use it as a context: it stops on exit)."""
    from polar_sync.testing import LocalPolarServer

    server = LocalPolarServer(api_version=SERVED_BY[api_version]).start()
    settings.POLAR_SYNC = {
        "ACCESS_TOKEN": server.token,
        "SERVER": server.url,
        "API_VERSION": api_version,
        "TIMEOUT": 5.0,
        "MAX_RETRIES": 1,
        "BACKOFF_BASE": 0.01,
        "RATE_LIMIT": 100_000,
    }
    return server


@pytest.fixture
def live_polar(settings):
    """A local Polar server of today's default version (no customers), POLAR_SYNC pointed
    at it. Arrange the world through ``live_polar.store``; faults via ``live_polar.faults``.
    """
    with serve_polar(settings) as server:
        yield server


@pytest.fixture
def live_polar_2025(settings):
    """``live_polar`` of the 2025-10 era (with ``/balance``), API_VERSION None."""
    with serve_polar(settings, None) as server:
        yield server


def polar_in_use(request):
    """The local server fixture a test asked for: ``live_polar_any``, ``live_polar_2025``
    or (by default) ``live_polar``; for fixtures that arrange a world on any of them."""
    names = ("live_polar_any", "live_polar_2025")
    name = next((n for n in names if n in request.fixturenames), "live_polar")
    return request.getfixturevalue(name)


@pytest.fixture(params=list(SERVED_BY), ids=lambda v: v or "none-2025-10")
def live_polar_any(request, settings):
    """``live_polar`` at each API_VERSION polar_sync speaks (the test runs once for each)."""
    with serve_polar(settings, request.param) as server:
        yield server


@pytest.fixture
def dated_polar(settings):
    """``dated_polar("2026-04", customers=...)``: a started server speaking that version,
    and POLAR_SYNC (``API_VERSION`` too) pointed at it."""
    from polar_sync.testing import LocalPolarServer

    servers: list[LocalPolarServer] = []

    def make(version: str = "2026-04", *, api_version: Any = "same", **options):
        server = LocalPolarServer(api_version=version, **options).start()
        servers.append(server)
        settings.POLAR_SYNC = {
            "ACCESS_TOKEN": server.token,
            "SERVER": server.url,
            "API_VERSION": version if api_version == "same" else api_version,
            "TIMEOUT": 5.0,
            "MAX_RETRIES": 1,
            "BACKOFF_BASE": 0.01,
            "RATE_LIMIT": 100_000,
            "PAGE_SIZE": 2,
        }
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def polar_conf(settings):
    """Update POLAR_SYNC keys for one test: ``polar_conf(USER_FILTER=...)``."""

    def update(**values: Any) -> None:
        settings.POLAR_SYNC = {**settings.POLAR_SYNC, **values}

    return update


@pytest.fixture
def webhook_secret(polar_conf):
    """POLAR_SYNC["WEBHOOK_SECRET"] set to the secret the tests sign deliveries with."""
    from tests.webhook_helpers import SECRET  # it imports this module: not at the top

    polar_conf(WEBHOOK_SECRET=SECRET)
