"""The HTTP face of the stand-in: Polar's 12 customer endpoints over real loopback HTTP.

Standard library only (``http.server``), HTTP/1.1 with keep-alive, one thread per
connection. Order of a request: faults (latency, drop, rate limit, failure), routing
(404/405), bearer auth (401), validation (422), the store (404/2xx), then the malformed-JSON
fault on successful answers.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import versions as v
from .faults import Faults
from .members import NotPermitted
from .params import CUSTOMERS_MAX, check_host, check_http_url, check_int, check_port, check_token
from .raw import RawResponse, raw_request
from .records import NotFound
from .requestlog import RequestRecord
from .routes import JSON, ROUTES, Answer, Operation, Routes, json_answer
from .routes26 import ROUTES_2026
from .store import PolarStore
from .validation import (
    ValidationFailed,
)
from .webhooks import WebhookSender

logger = logging.getLogger(__name__)

_TOKEN: Any = object()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "polar-sync-local-polar"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.polar.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, content_type: str, body: bytes | Iterator[bytes],
              headers: dict[str, str] | None = None) -> None:  # fmt: skip
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        if isinstance(body, bytes):
            if status != 204:
                lines.append(f"Content-Length: {len(body)}")
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            return
        lines.append("Transfer-Encoding: chunked")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for chunk in body:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self) -> None:
        polar = self.server.polar
        faults = polar.faults
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        body = self._read_body()
        record = polar.store.log.record
        if faults.latency > 0:
            polar.sleep(faults.latency)
        if faults.roll(faults.drop_rate):
            record(RequestRecord(self.command, path, query, 0, None))
            self._drop()
            return
        operation, answer, headers = polar._answer(self.command, path, query, body,
                                                   self.headers.get("Authorization"),
                                                   self.headers.get(v.HEADER))  # fmt: skip
        status, content_type, payload = answer
        if (200 <= status < 300 and content_type == JSON and isinstance(payload, bytes)
                and payload and faults.roll(faults.malformed_rate)):  # fmt: skip
            payload = payload[: len(payload) // 2]
        record(RequestRecord(self.command, path, query, status, operation))
        self._send(status, content_type, payload, headers)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], polar: LocalPolarServer) -> None:
        self.polar = polar
        self.connections: set[socket.socket] = set()
        super().__init__(address, _Handler)


class LocalPolarServer:
    """A local, in-memory, spec-faithful Polar customers API (a stripe-mock for Polar).

    ``LocalPolarServer(customers=1000).start()`` serves on a free loopback port; use
    ``url`` and ``token`` as the client's server and access token, ``store`` to arrange
    and inspect the world and ``faults`` to break things, at construction or at runtime.
    ``stop()`` closes every connection (an outage); ``start()`` again reuses the port and
    the same world. A value out of range (a port over 65535, a ``fail_rate`` over 1, an
    ``organization_id`` that is no UUID...) is a ``ValueError`` naming the parameter; a port
    in use is an ``OSError`` from ``start()``.

    ``api_version`` (default ``"2026-04"``, today's Polar) is the version served to a
    request without a ``Polar-Version`` header; ``"2025-10"`` plays Polar before dated
    versions (see :mod:`.versions`). With a given ``store``, the default is the store's.
    """

    #: How the latency fault waits (tests may replace it to observe the delay).
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        customers: int = 0,
        seed: int = 0,
        rate_limit: int | None = None,
        fail_rate: float = 0.0,
        latency: float = 0.0,
        drop_rate: float = 0.0,
        malformed_rate: float = 0.0,
        balance_route: bool = True,
        organization_id: str | None = None,
        fail_statuses: tuple[int, ...] = (500, 502, 503),
        rate_limit_window: float = 60.0,
        store: PolarStore | None = None,
        verbose: bool = False,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_duplicate: bool = False,
        webhook_reorder: bool = False,
        api_version: str | None = None,
    ) -> None:
        # Every value is checked (ValueError naming it) before anything is seeded or bound.
        self.host = check_host(host)
        self.port = check_port(port)
        check_int("customers", customers, minimum=0, maximum=CUSTOMERS_MAX)
        self.token = (
            check_token("token", token) if token else f"polar_oat_local_{secrets.token_urlsafe(24)}"
        )
        if webhook_url is not None:
            check_http_url("webhook_url", webhook_url)
        self.faults = Faults(
            rate_limit=rate_limit,
            rate_limit_window=rate_limit_window,
            fail_rate=fail_rate,
            fail_statuses=tuple(fail_statuses),
            latency=latency,
            drop_rate=drop_rate,
            malformed_rate=malformed_rate,
            balance_route=balance_route,
            seed=seed,
        )
        if api_version is not None:
            v.check_api_version(api_version)
        if store is None:
            store = PolarStore(organization_id, api_version=api_version or v.DEFAULT)
        elif api_version is not None and api_version != store.api_version:
            raise ValueError(
                f"api_version {api_version!r} differs from the store's {store.api_version!r}"
            )
        self.store = store
        self.api_version = store.api_version
        if customers:
            self.store.seed(customers, seed)
        self.verbose = verbose
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Signed webhooks for every change, like Polar's (see webhooks.py); None: not sent.
        self.webhooks: WebhookSender | None = None
        if webhook_url:
            self.webhooks = WebhookSender(
                webhook_url,
                webhook_secret or "",
                duplicate=webhook_duplicate,
                reorder=webhook_reorder,
                api_version=self.api_version if v.dated(self.api_version) else None,
            )
            self.store.subscribe(self.webhooks)

    def __repr__(self) -> str:  # the token stays out of reprs
        return (
            f"<LocalPolarServer {self.url} customers={len(self.store)} "
            f"api_version={self.api_version}>"
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def organization_id(self) -> str:
        return self.store.organization_id

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> LocalPolarServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.port), self)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LocalPolarServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        if self.webhooks is not None:
            self.webhooks.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection; the store is kept."""
        if self.webhooks is not None:
            self.webhooks.stop()  # undelivered events wait for the next start()
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        for connection in list(httpd.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def request(
        self, method: str, path: str, *, token: str | None = _TOKEN, **kwargs: Any
    ) -> RawResponse:
        """Send one raw request with the server's token (``token=None``: none at all);
        keyword arguments as :func:`~polar_sync.testing.raw.raw_request`."""
        token = self.token if token is _TOKEN else token
        return raw_request(self.url, method, path, token=token, **kwargs)

    def __enter__(self) -> LocalPolarServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _answer(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes,
        authorization: str | None, requested: str | None = None,
    ) -> tuple[str | None, Answer, dict[str, str]]:  # fmt: skip
        """The operationId, the answer and extra headers for one request."""
        version = v.served_version(self.api_version, requested)
        operation, answer, headers = self._answer_in(method, path, query, body, authorization,
                                                     version)  # fmt: skip
        if version is not None and v.dated(version):
            headers[v.HEADER] = version
        return operation, answer, headers

    def _answer_in(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes,
        authorization: str | None, version: str | None,
    ) -> tuple[str | None, Answer, dict[str, str]]:  # fmt: skip
        faults = self.faults
        retry_after = faults.admit()
        if retry_after is not None:
            detail = (
                f"Rate limit exceeded ({faults.rate_limit} requests per "
                f"{faults.rate_limit_window:g} seconds). Retry after {retry_after} seconds."
            )
            answer = json_answer(429, {"error": "TooManyRequests", "detail": detail})
            return None, answer, {"Retry-After": str(retry_after)}
        if faults.roll(faults.fail_rate):
            status = faults.failure_status()
            phrase = HTTPStatus(status).phrase
            return (
                None,
                json_answer(status, {"error": phrase.replace(" ", ""), "detail": phrase}),
                {},
            )
        if version is None:  # a version Polar does not serve: every route is unknown
            return None, json_answer(404, {"detail": "Not Found"}), {}
        operation, handler, params = self._route(method, path, version)
        if handler is None:
            status = 405 if operation == "405" else 404
            return None, json_answer(status, {"detail": HTTPStatus(status).phrase}), {}
        if not authorization or authorization != f"Bearer {self.token}":
            detail = "Missing or invalid access token." if authorization else "Not authenticated"
            answer = json_answer(401, {"error": "Unauthorized", "detail": detail})
            return operation, answer, {"WWW-Authenticate": "Bearer"}
        try:
            return operation, handler(self.store, params, query, body, version), {}
        except ValidationFailed as exc:
            return operation, json_answer(422, {"detail": exc.errors}), {}
        except NotFound:
            return (
                operation,
                json_answer(404, {"error": "ResourceNotFound", "detail": "Not found"}),
                {},
            )
        except NotPermitted as exc:
            return operation, json_answer(403, {"error": "NotPermitted", "detail": str(exc)}), {}
        except Exception:
            logger.exception("LocalPolarServer failed on %s %s", method, path)
            failure = {"error": "InternalServerError", "detail": "Internal Server Error"}
            return operation, json_answer(500, failure), {}

    def _route(
        self, method: str, path: str, version: str
    ) -> tuple[str | None, Operation | None, dict[str, str]]:
        routes: Routes = ROUTES_2026 if v.dated(version) else ROUTES
        for pattern, methods in routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if (
                not self.faults.balance_route
                and "GET" in methods
                and (methods["GET"][0] == "customers:get_balance")
            ):
                return None, None, {}
            if method not in methods:
                return "405", None, {}
            operation, handler = methods[method]
            return operation, handler, {k: unquote(v) for k, v in match.groupdict().items()}
        return None, None, {}
