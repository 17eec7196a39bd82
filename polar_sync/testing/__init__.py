"""A local, in-memory, spec-faithful Polar customers API for demos, tests and benchmarks.

Polar's sandbox cannot be reached from CI, so this stand-in (like stripe-mock for Stripe)
serves Polar's customer operations over real HTTP on loopback, with Polar's validation,
soft delete, pagination, filters and error shapes, plus fault injection. It plays each
dated API version by the request's ``Polar-Version`` header (2026-04 by default: team
customers and members, products, benefits; see :mod:`.versions`), or the 2025-10 era
with ``api_version="2025-10"``::

    from polar_sync.testing import LocalPolarServer

    with LocalPolarServer(api_version="2025-10", customers=1000, seed=0) as polar:
        client = PolarClient(access_token=polar.token, server=polar.url)
        polar.store.start_subscription(customer_id, amount=2900)
        polar.faults.fail_rate = 1.0  # every request now fails with 500/502/503

The core (this package but ``pytest_plugin``) uses the standard library only.
Pytest fixtures: ``pytest_plugins = ["polar_sync.testing.pytest_plugin"]``.
"""

from .faults import Faults
from .raw import RawResponse, raw_request
from .records import NotFound
from .requestlog import RequestRecord
from .seed import seed_customers
from .server import LocalPolarServer
from .state import Catalog
from .store import DEFAULT_ORGANIZATION_ID, PolarStore
from .validation import ValidationFailed

__all__ = [
    "DEFAULT_ORGANIZATION_ID",
    "Catalog",
    "Faults",
    "LocalPolarServer",
    "NotFound",
    "PolarStore",
    "RawResponse",
    "RequestRecord",
    "ValidationFailed",
    "raw_request",
    "seed_customers",
]
