"""A minimal standard-library HTTP helper for poking the stand-in from tests.

It sends exactly what it is given (no retries, no error translation), so tests can check
raw status codes, headers and bodies: ``server.request("GET", "/v1/customers/")``.
"""

from __future__ import annotations

import http.client
import json as jsonlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


def raw_request(
    base_url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    params: dict[str, Any] | list[tuple[str, Any]] | None = None,
    json: Any = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> RawResponse:
    """One request on a fresh connection. ``params`` values may be lists (repeated keys);
    ``json`` is serialised as the body unless ``body`` gives raw bytes."""
    parts = urlsplit(base_url)
    if params:
        path = f"{path}?{urlencode(params, doseq=True)}"
    send_headers = {"Accept": "application/json", **(headers or {})}
    if token is not None:
        send_headers["Authorization"] = f"Bearer {token}"
    if body is None and json is not None:
        body = jsonlib.dumps(json).encode()
    if body is not None:
        send_headers.setdefault("Content-Type", "application/json")
    if not parts.hostname:
        raise ValueError(f"no host in {base_url!r}")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=send_headers)
        response = connection.getresponse()
        data = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
        return RawResponse(response.status, found, data)
    finally:
        connection.close()
