"""The one place that speaks HTTP to Polar.

``PolarClient`` owns the base URL, the token, the session, timeouts, retries with
backoff (honouring ``Retry-After``), pagination and the translation of HTTP failures
into :mod:`polar_sync.exceptions`; :mod:`polar_sync.wire` says what each answer must
look like. It knows nothing of Django models: it takes and returns plain JSON-shaped
dicts, keeping every field Polar sends, known or not.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NoReturn

import requests

from . import __version__, wire
from .catalog_operations import CatalogOperations
from .conf import DEFAULT_API_VERSION, ERA_2025, WAIT_SLICE, polar_settings, resolve_server
from .exceptions import (
    PolarConfigurationError,
    PolarError,
    PolarNetworkError,
    PolarResponseError,
    PolarTimeoutError,
    PolarTransientError,
)
from .operations import CustomerOperations
from .operations_members import MemberOperations

logger = logging.getLogger("polar_sync.client")

JSON = dict[str, Any]
MAX_PAGE_SIZE = 100
USER_AGENT = f"polar_sync/{__version__} python-requests/{requests.__version__}"
# The export answers CSV (text/csv in the 2026 documents); its errors are JSON.
EXPORT_ACCEPT = "text/csv, application/json;q=0.5"


class PolarClient(CustomerOperations, MemberOperations, CatalogOperations):
    """A client for Polar's customer API, speaking ``api_version`` (sent as the
    ``Polar-Version`` header; None sends none: a server of the 2025-10 era).

    >>> client = PolarClient(access_token="polar_oat_...", server="sandbox")
    >>> for customer in client.iter_customers(sorting=["created_at"]):
    ...     ...
    """

    def __init__(
        self,
        *,
        access_token: str,
        server: str = "production",
        timeout: float = 10.0,
        max_retries: int = 3,
        api_version: str | None = DEFAULT_API_VERSION,
        page_size: int = MAX_PAGE_SIZE,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        before_request: Callable[[], None] | None = None,
        organization_id: str | None = None,
        on_wait: Callable[[], None] | None = None,
        wait_slice: float = WAIT_SLICE,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not access_token:
            raise PolarConfigurationError("PolarClient needs an access_token.")
        self.base_url = resolve_server(server)
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.page_size = max(1, min(MAX_PAGE_SIZE, int(page_size)))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.before_request = before_request  # before every attempt: the request budget
        # In the caller's thread before every request and at least every ``wait_slice``
        # seconds of a wait: a long run's heartbeat. It may raise to stop the client.
        self.on_wait = on_wait
        self.wait_slice = max(0.01, float(wait_slice))
        self.sleep = sleep  # None: time.sleep, looked up when sleeping
        self.request_count = 0
        # For a user token: the default filter of list/export, the creates' organization.
        self.organization_id = organization_id
        self._token = access_token
        self._session = requests.Session()
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self.api_version = api_version or None
        if self.api_version:
            self._headers["Polar-Version"] = self.api_version
        # The version the last answer said it was served in (no header: the 2025-10
        # era); None until an answer is read.
        self.served_api_version: str | None = None
        self._warned_versions: set[str] = set()

    @classmethod
    def from_settings(cls, **overrides: Any) -> PolarClient:
        """Build a client from ``settings.POLAR_SYNC`` (read now, not at import)."""
        conf = polar_settings()
        if not conf.ACCESS_TOKEN:
            raise PolarConfigurationError(
                "POLAR_SYNC['ACCESS_TOKEN'] is not set: polar_sync cannot talk to Polar."
            )
        kwargs: dict[str, Any] = {
            "access_token": conf.ACCESS_TOKEN,
            "server": conf.SERVER,
            "timeout": conf.TIMEOUT,
            "max_retries": conf.MAX_RETRIES,
            "api_version": conf.API_VERSION,
            "page_size": conf.PAGE_SIZE,
            "backoff_base": conf.BACKOFF_BASE,
            "backoff_max": conf.BACKOFF_MAX,
            "organization_id": conf.ORGANIZATION_ID,
        }
        return cls(**{**kwargs, **overrides})

    def __repr__(self) -> str:
        return f"<PolarClient {self.base_url} token=***>"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> PolarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ pages, export

    def iter_pages(
        self,
        *,
        start_page: int = 1,
        limit: int | None = None,
        prefetch: bool = False,
        transform: Callable[[JSON], Any] | None = None,
        lister: Callable[..., JSON] | None = None,
        **filters: Any,
    ) -> Generator[Any, None, None]:
        """Every page from ``start_page`` on, as :meth:`list` (or ``lister``: another
        list operation) returns it, or ``transform(page)``.

        With ``prefetch``, the next page is fetched and transformed in a background
        thread while the caller works on the current one (mapping a page overlaps with
        writing the last one); ``before_request`` still runs in the caller's thread.
        """

        def fetch(page: int) -> tuple[JSON, Any]:
            result = (lister or self.list)(page=page, limit=limit or self.page_size, **filters)
            return result, transform(result) if transform else result

        def fetch_ahead(page: int) -> tuple[JSON, Any]:
            _hooks.off = True  # the caller's thread ran the hook for this page
            return fetch(page)

        # Its thread starts on the first submit: none without ``prefetch``.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="polar-prefetch") as pool:

            def ask_ahead(page: int) -> Future[tuple[JSON, Any]]:
                self._run_hook()
                return pool.submit(fetch_ahead, page)

            page = start_page
            pending = ask_ahead(page) if prefetch else None
            while True:
                result, transformed = self._wait_for(pending) if pending else fetch(page)
                last = not result["items"] or page >= result["pagination"]["max_page"]
                if prefetch and not last:
                    pending = ask_ahead(page + 1)
                yield transformed
                if last:
                    return
                page += 1

    def export(self, *, organization_id: str | Iterable[str] | None = None) -> str:
        """Polar's CSV export of all customers, as text."""
        return b"".join(self.export_stream(organization_id=organization_id)).decode("utf-8")

    def export_stream(
        self,
        *,
        organization_id: str | Iterable[str] | None = None,
        chunk_size: int = 64 * 1024,
    ) -> Iterator[bytes]:
        """Polar's CSV export as byte chunks, for streaming it through to a browser."""
        op = "customers:export"
        params = wire.query_params({"organization_id": organization_id or self.organization_id})
        response = self._request(
            op, "GET", "/v1/customers/export", params=params, stream=True, accept=EXPORT_ACCEPT
        )
        try:
            yield from response.iter_content(chunk_size=chunk_size)
        except requests.RequestException as exc:
            self._raise_network_error(op, exc, "export interrupted")
        finally:
            response.close()

    # --------------------------------------------------------------- plumbing

    def _json(self, operation: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(operation, method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:  # first: requests' JSONDecodeError is both
            raise PolarResponseError(
                f"the response body is not valid JSON ({exc}); "
                f"it starts with {response.text[:80]!r}",
                operation=operation,
                status_code=response.status_code,
            ) from exc
        except requests.RequestException as exc:
            self._raise_network_error(
                operation, exc, "the connection broke while reading the response"
            )

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        retry: bool = True,
        accept: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request (``kwargs`` go to requests), retrying transient failures."""
        headers = self._headers if accept is None else {**self._headers, "Accept": accept}
        attempt = 0
        while True:
            try:
                return self._send(operation, method, path, headers=headers, **kwargs)
            except PolarTransientError as exc:
                if not retry or attempt >= self.max_retries:
                    raise
                self._backoff(attempt, exc)
                attempt += 1

    def _send(self, operation: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        if not getattr(_hooks, "off", False):
            self._run_hook()
        self.request_count += 1
        started = time.monotonic()
        try:
            response = self._session.request(
                method, self.base_url + path, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            self._raise_network_error(operation, exc, f"could not reach {self.base_url}")
        elapsed_ms = (time.monotonic() - started) * 1000
        status = response.status_code
        logger.debug("%s %s %s -> %s in %.0f ms", operation, method, path, status, elapsed_ms)
        if status < 400:
            self._record_version(response.headers.get("Polar-Version"))
            return response
        with response:
            raise wire.error_for(
                operation,
                status,
                _json_or_none(response),
                response.headers.get("Retry-After"),
                api_version=self.api_version,
            )

    def _record_version(self, header: str | None) -> None:
        """Remember the version served; a mismatch is a warning, once per version seen."""
        served = (header or "").strip() or ERA_2025
        self.served_api_version = served
        if served == (self.api_version or ERA_2025) or served in self._warned_versions:
            return
        self._warned_versions.add(served)
        logger.warning(
            "Polar served API version %s, but POLAR_SYNC['API_VERSION'] is %r: answers may "
            "not have the shapes polar_sync expects",
            served,
            self.api_version,
        )

    def forget_served_version(self) -> None:
        """Start a new run: its own served version, its own mismatch warning."""
        self.served_api_version = None
        self._warned_versions.clear()

    def _raise_network_error(
        self, operation: str, exc: requests.RequestException, what: str
    ) -> NoReturn:
        """Raise the app's error for a failed transport; its cause is hidden if it shows
        the token."""
        error: PolarNetworkError
        if isinstance(exc, requests.Timeout):
            error = PolarTimeoutError(f"no answer within {self.timeout}s", operation=operation)
        else:
            error = PolarNetworkError(f"{what} ({type(exc).__name__})", operation=operation)
        raise error from None if self._token in str(exc) else exc

    def _run_hook(self) -> None:
        self.waiting()
        if self.before_request is not None:
            self.before_request()

    def waiting(self) -> None:
        """Call ``on_wait``, if any, unless in the prefetch thread (the caller's thread
        calls it while it waits for that thread's page)."""
        if self.on_wait is not None and not getattr(_hooks, "off", False):
            self.on_wait()

    def _sleep(self, seconds: float) -> None:
        """Sleep, calling ``on_wait`` (if any) at least every ``wait_slice`` seconds."""
        while seconds > 0:
            self.waiting()
            step = min(seconds, self.wait_slice) if self.on_wait else seconds
            (self.sleep or time.sleep)(step)
            seconds -= step

    def _wait_for(self, pending: Future[tuple[JSON, Any]]) -> tuple[JSON, Any]:
        """The prefetched page, calling ``on_wait`` every ``wait_slice`` seconds meanwhile."""
        while True:
            try:
                return pending.result(timeout=self.wait_slice)
            except FutureTimeout:
                self.waiting()

    def _backoff(self, attempt: int, exc: PolarError) -> None:
        delay = getattr(exc, "retry_after", None)
        if delay is None:
            # Full jitter keeps many workers from retrying in lockstep.
            delay = random.uniform(0, min(self.backoff_max, self.backoff_base * (2**attempt)))
        # str(exc) already names the operation.
        logger.warning("%s; retry %d/%d in %.2fs", exc, attempt + 1, self.max_retries, delay)
        self._sleep(delay)


# Set in a prefetch thread: its requests' hook already ran in the caller's thread.
_hooks = threading.local()


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# One client per thread, rebuilt when the settings change.
_local = threading.local()


def get_client() -> PolarClient:
    """A client built from settings, reused by the calling thread (keep-alive)."""
    conf = polar_settings()
    cached: tuple[Any, PolarClient] | None = getattr(_local, "client", None)
    if cached is not None and cached[0] == conf:
        return cached[1]
    client = PolarClient.from_settings()
    _local.client = (conf, client)
    return client
