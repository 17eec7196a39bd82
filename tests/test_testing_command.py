"""``manage.py polar_server`` starts a working local Polar server and stops it on Ctrl-C."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from polar_sync.management.commands.polar_server import Command
from polar_sync.testing import LocalPolarServer


def test_serves_until_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def wait(self: Command, server: LocalPolarServer) -> None:
        response = server.request("GET", "/v1/customers/", params={"limit": 1})
        seen.update(server=server, status=response.status, body=response.json())
        balance = server.request("GET", f"/v1/customers/{response.json()['items'][0]['id']}"
                                 "/balance")  # fmt: skip
        seen["balance_status"] = balance.status
        raise KeyboardInterrupt

    monkeypatch.setattr(Command, "wait", wait)
    out = io.StringIO()
    call_command(
        "polar_server", "--port", "0", "--customers", "25", "--seed", "3", "--token",
        "polar_oat_cli", "--rate-limit", "500", "--fail-rate", "0", "--no-balance-route",
        stdout=out,
    )  # fmt: skip
    server = seen["server"]
    assert isinstance(server, LocalPolarServer)
    assert seen["status"] == 200
    assert seen["body"]["pagination"]["total_count"] == 25  # type: ignore[index]
    assert seen["balance_status"] == 404
    assert server.faults.rate_limit == 500 and not server.running
    text = out.getvalue()
    assert re.search(rf"listening on http://127\.0\.0\.1:{server.port}\b", text)
    assert "Access token: polar_oat_cli" in text
    assert "stopped" in text


@pytest.mark.parametrize(
    ("arguments", "served", "balance"),
    [([], "2026-04", 404), (["--api-version", "2026-10"], "2026-10", 404),
     (["--api-version", "2025-10"], None, 200)],
)  # fmt: skip
def test_api_version(
    monkeypatch: pytest.MonkeyPatch, arguments: list[str], served: str | None, balance: int
) -> None:
    seen: dict[str, object] = {}

    def wait(self: Command, server: LocalPolarServer) -> None:
        response = server.request("GET", "/v1/customers/", params={"limit": 1})
        customer_id = response.json()["items"][0]["id"]
        balance = server.request("GET", f"/v1/customers/{customer_id}/balance")
        seen.update(header=response.headers.get("polar-version"), balance=balance.status)
        raise KeyboardInterrupt

    monkeypatch.setattr(Command, "wait", wait)
    out = io.StringIO()
    call_command("polar_server", "--port", "0", "--customers", "3", *arguments, stdout=out)
    assert seen == {"header": served, "balance": balance}
    assert f"API version: {served or '2025-10'}" in out.getvalue()
