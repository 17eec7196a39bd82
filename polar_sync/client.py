"""The one place that speaks HTTP to Polar.

``PolarClient`` owns the base URL, the token, the session, timeouts, retries
with backoff (honouring ``Retry-After``), pagination, and the translation of
HTTP failures into :mod:`polar_sync.exceptions`. It knows nothing of Django
models: it takes and returns plain JSON-shaped dicts, keeping every field
Polar sends, known or not.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import requests

from . import __version__, wire
from .conf import WAIT_SLICE, polar_settings, resolve_server
from .exceptions import (
    PolarConfigurationError,
    PolarError,
    PolarNetworkError,
    PolarResponseError,
    PolarTimeoutError,
    PolarTransientError,
)
from .operations import CustomerOperations

logger = logging.getLogger("polar_sync.client")

JSON = dict[str, Any]
MAX_PAGE_SIZE = 100
USER_AGENT = f"polar_sync/{__version__} python-requests/{requests.__version__}"
# The export answers CSV (text/csv in the 2026 documents); its errors are JSON.
EXPORT_ACCEPT = "text/csv, application/json;q=0.5"


class PolarClient(CustomerOperations):
    """A client for Polar's customer API (the 12 operations of the 2025-10 contract).

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
        api_version: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        session: requests.Session | None = None,
        before_request: Callable[[], None] | None = None,
        organization_id: str | None = None,
        on_wait: Callable[[], None] | None = None,
        wait_slice: float = WAIT_SLICE,
    ) -> None:
        if not access_token:
            raise PolarConfigurationError("PolarClient needs an access_token.")
        self.base_url = resolve_server(server)
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.page_size = max(1, min(MAX_PAGE_SIZE, int(page_size)))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        # Called before every HTTP attempt: the hook a shared rate budget plugs into.
        self.before_request = before_request
        # Called in the caller's thread before every request and at least every
        # ``wait_slice`` seconds while the client waits (retry backoff, Retry-After,
        # a prefetched page, the request budget via :meth:`waiting`): the hook a
        # long-running caller uses to show it is alive (a sync run's heartbeat).
        # It may raise to stop the client.
        self.on_wait = on_wait
        self.wait_slice = max(0.01, float(wait_slice))
        self.request_count = 0
        # Needed with a user token only (an organization token implies it): used
        # as the default filter of list/export and the organization of creates.
        self.organization_id = organization_id
        self._token = access_token
        self._session = session or requests.Session()
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if api_version:
            self._headers["Polar-Version"] = api_version

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
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"<PolarClient {self.base_url} token=***>"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> PolarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter_pages(
        self,
        *,
        start_page: int = 1,
        limit: int | None = None,
        prefetch: bool = False,
        transform: Callable[[JSON], Any] | None = None,
        **filters: Any,
    ) -> Generator[Any, None, None]:
        """Every page from ``start_page`` on, as returned by :meth:`list`.

        With ``prefetch``, the next page is fetched in a background thread while
        the caller works on the current one, so that writing a page and waiting
        for the network overlap. ``before_request`` is then still called in the
        caller's thread, once per page, before that page is asked for. With
        ``transform``, ``transform(page)`` is yielded instead of the page, and
        computed in that thread too: pure work on the next page (mapping it,
        say) overlaps with the caller's work on the current one.
        """
        limit = limit or self.page_size
        transform = transform or _same

        def fetch(page: int) -> tuple[JSON, Any]:
            result = self.list(page=page, limit=limit, **filters)
            return result, transform(result)

        if not prefetch:
            page = start_page
            while True:
                result, transformed = fetch(page)
                yield transformed
                if wire.is_last_page(result, page):
                    return
                page += 1
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="polar-prefetch") as pool:

            def prefetch_page(page: int) -> tuple[JSON, Any]:
                _hooks.off = True  # the caller's thread ran the hook for this page
                return fetch(page)

            page = start_page
            self._run_hook()
            pending = pool.submit(prefetch_page, page)
            while True:
                result, transformed = self._wait_for(pending)
                last = wire.is_last_page(result, page)
                if not last:
                    self._run_hook()
                    pending = pool.submit(prefetch_page, page + 1)
                yield transformed
                if last:
                    return
                page += 1

    # ---------------------------------------------------------------- export

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
        params = wire.list_params(organization_id=organization_id or self.organization_id)
        response = self._request(
            "customers:export",
            "GET",
            "/v1/customers/export",
            params=params,
            stream=True,
            # The answer is CSV; an error answer is still JSON.
            accept=EXPORT_ACCEPT,
        )
        try:
            yield from response.iter_content(chunk_size=chunk_size)
        except requests.RequestException as exc:
            raise PolarNetworkError(
                f"export interrupted: {type(exc).__name__}", operation="customers:export"
            ) from exc
        finally:
            response.close()

    # -------------------------------------------------------------- plumbing

    def _json(self, operation: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(operation, method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            snippet = response.text[:80]
            raise PolarResponseError(
                f"the response body is not valid JSON ({exc}); it starts with {snippet!r}",
                operation=operation,
                status_code=response.status_code,
            ) from exc
        except requests.RequestException as exc:
            raise PolarNetworkError(
                f"the connection broke while reading the response ({type(exc).__name__})",
                operation=operation,
            ) from exc

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json: Any = None,
        stream: bool = False,
        retry: bool = True,
        accept: str | None = None,
    ) -> requests.Response:
        """Send one request, retrying transient failures when ``retry`` is true."""
        attempt = 0
        while True:
            try:
                return self._send_once(
                    operation, method, path, params=params, json=json, stream=stream, accept=accept
                )
            except PolarTransientError as exc:
                if not retry or attempt >= self.max_retries:
                    raise
                self._backoff(operation, attempt, exc)
                attempt += 1

    def _send_once(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None,
        json: Any,
        stream: bool,
        accept: str | None = None,
    ) -> requests.Response:
        if not getattr(_hooks, "off", False):
            self._run_hook()
        self.request_count += 1
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                headers=self._headers if accept is None else {**self._headers, "Accept": accept},
                timeout=self.timeout,
                stream=stream,
            )
        except requests.Timeout as exc:
            raise PolarTimeoutError(f"no answer within {self.timeout}s", operation=operation) from (
                None if _leaks(exc, self._token) else exc
            )
        except requests.RequestException as exc:
            raise PolarNetworkError(
                f"could not reach {self.base_url} ({type(exc).__name__})", operation=operation
            ) from None if _leaks(exc, self._token) else exc
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug(
            "%s %s %s -> %s in %.0f ms", operation, method, path, response.status_code, elapsed_ms
        )
        if response.status_code < 400:
            return response
        try:
            raise wire.error_for(
                operation,
                response.status_code,
                _json_or_none(response),
                response.headers.get("Retry-After"),
            )
        finally:
            response.close()

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
        """Sleep, calling ``on_wait`` at least every ``wait_slice`` seconds."""
        if self.on_wait is None or getattr(_hooks, "off", False):
            time.sleep(seconds)
            return
        while seconds > 0:
            self.waiting()
            step = min(seconds, self.wait_slice)
            time.sleep(step)
            seconds -= step

    def _wait_for(self, pending: Future[tuple[JSON, Any]]) -> tuple[JSON, Any]:
        """The prefetched page, calling ``on_wait`` every ``wait_slice`` seconds meanwhile."""
        if self.on_wait is None:
            return pending.result()
        while True:
            try:
                return pending.result(timeout=self.wait_slice)
            except FutureTimeout:
                self.waiting()

    def _backoff(self, operation: str, attempt: int, exc: PolarError) -> None:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            delay = float(retry_after)
        else:
            # Full jitter keeps many workers from retrying in lockstep.
            delay = random.uniform(0, min(self.backoff_max, self.backoff_base * (2**attempt)))
        # str(exc) already names the operation.
        logger.warning(
            "%s; retry %d/%d in %.2fs",
            exc,
            attempt + 1,
            self.max_retries,
            delay,
        )
        self._sleep(delay)


# ---------------------------------------------------------------------------
# helpers


# Set in a prefetch thread: its requests' hook already ran in the caller's thread.
_hooks = threading.local()


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _leaks(exc: BaseException, token: str) -> bool:
    return bool(token) and token in str(exc)


# ---------------------------------------------------------------------------
# one client per thread, rebuilt when the settings change

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


def _same(value: Any) -> Any:
    return value
