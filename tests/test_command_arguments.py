"""Every argument of every management command is checked before anything runs: a bad value
is a CommandError naming the argument and the allowed range (never a traceback), and the
local server refuses the same values when constructed in code."""

from __future__ import annotations

import math
import socket
from datetime import UTC, datetime, timedelta, timezone
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from polar_sync.management import arguments
from polar_sync.management.commands.polar_server import Command as ServerCommand
from polar_sync.testing import Faults, LocalPolarServer, PolarStore

UUID = "1dbfc517-0bbf-4301-9ba8-555ca42b9737"


@pytest.fixture
def served(monkeypatch):
    """polar_server returns at once instead of serving until Ctrl-C; the servers it ran."""
    servers: list[LocalPolarServer] = []

    def wait(self, server: LocalPolarServer) -> None:
        servers.append(server)
        raise KeyboardInterrupt

    monkeypatch.setattr(ServerCommand, "wait", wait)
    return servers


BAD = [
    # polar_server
    (["polar_server", "--port", "-1"], "--port", "from 0 to 65,535"),
    (["polar_server", "--port", "70000"], "--port", "from 0 to 65,535"),
    (["polar_server", "--port", "http"], "--port", "from 0 to 65,535"),
    (["polar_server", "--host", "999.1.1.1"], "--host", "an IPv4 address or a host name"),
    (["polar_server", "--host", "bad host!"], "--host", "an IPv4 address or a host name"),
    (["polar_server", "--host", ""], "--host", "an IPv4 address or a host name"),
    (["polar_server", "--host", "::1"], "--host", "an IPv4 address or a host name"),
    (["polar_server", "--customers", "-5"], "--customers", "from 0 to 1,000,000"),
    (["polar_server", "--customers", "1000001"], "--customers", "from 0 to 1,000,000"),
    (["polar_server", "--token", "two words"], "--token", "visible ASCII characters"),
    (["polar_server", "--token", "t" * 256], "--token", "1 to 255"),
    (["polar_server", "--organization-id", "not-a-uuid"], "--organization-id", "a UUID"),
    (["polar_server", "--rate-limit", "-10"], "--rate-limit", "at least 0"),
    (["polar_server", "--fail-rate", "1.5"], "--fail-rate", "from 0 to 1"),
    (["polar_server", "--fail-rate", "-0.5"], "--fail-rate", "from 0 to 1"),
    (["polar_server", "--fail-rate", "nan"], "--fail-rate", "from 0 to 1"),
    (["polar_server", "--drop-rate", "2"], "--drop-rate", "from 0 to 1"),
    (["polar_server", "--malformed-rate", "-0.1"], "--malformed-rate", "from 0 to 1"),
    (["polar_server", "--latency", "-1"], "--latency", "from 0 to 60"),
    (["polar_server", "--latency", "inf"], "--latency", "from 0 to 60"),
    (["polar_server", "--webhook-url", "not-a-url"], "--webhook-url", "http:// or https://"),
    (["polar_server", "--webhook-url", "ftp://example.com/"], "--webhook-url", "http://"),
    (["polar_server", "--webhook-url", "http://"], "--webhook-url", "with a host"),
    (["polar_server", "--webhook-url", "http://h:99999/"], "--webhook-url", "http://"),
    (["polar_server", "--webhook-url", "http://h/", "--webhook-secret", ""],
     "--webhook-secret", "1 to 1,000 characters"),
    (["polar_server", "--webhook-secret", "s3cret"], "--webhook-secret", "--webhook-url"),
    # polar_sync
    (["polar_sync", "--states", "--max-requests", "-5"], "--max-requests", "at least 1"),
    (["polar_sync", "--balances", "--max-requests", "0"], "--max-requests", "at least 1"),
    (["polar_sync", "--all", "--max-requests", "many"], "--max-requests", "at least 1"),
    (["polar_sync", "--max-requests", "5"], "--max-requests", "--states and --balances"),
    # polar_push
    (["polar_push", "--user", "u" * 5000], "--user", "1 to 255 characters"),
    (["polar_push", "--user", ""], "--user", "1 to 255 characters"),
    (["polar_push", "--user", "a\x00b"], "--user", "without NUL"),
    (["polar_push", "--user", "\udcff"], "--user", "valid Unicode"),
    (["polar_push", "--delete-external-id", "d" * 256], "--delete-external-id", "1 to 255"),
    # polar_webhooks (a --since that is no date at all was refused already)
    (["polar_webhooks", "--since", "9999-12-31T23:59:59-05:00"], "--since", "ISO-8601"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "name", "allowed"),
    [pytest.param(*case, id=" ".join(case[0])[:60]) for case in BAD],
)
def test_a_bad_argument_is_a_command_error_naming_it(live_polar, db, served, argv, name, allowed):
    with pytest.raises(CommandError) as refused:
        call_command(*argv, stdout=StringIO(), stderr=StringIO())
    message = str(refused.value)
    assert name in message and allowed in message
    assert len(message) < 300  # a 5,000-character value is not echoed whole
    assert served == []  # nothing ran
    assert live_polar.store.log.request_total == 0


def test_a_busy_port_is_a_command_error_naming_it(served):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=rf"^port {port} on 127\.0\.0\.1 is in use"):
            call_command("polar_server", "--port", str(port), "--customers", "5",
                         stdout=StringIO())  # fmt: skip
    assert served == []


def test_an_unresolvable_host_is_a_command_error_naming_it(served):
    with pytest.raises(CommandError, match=r"--host no-such-host\.invalid cannot be resolved"):
        call_command("polar_server", "--host", "no-such-host.invalid", stdout=StringIO())


def test_options_given_in_code_are_checked_too(served):
    with pytest.raises(CommandError, match=r"fail_rate must be a number from 0 to 1, not 1\.5"):
        call_command("polar_server", port=0, fail_rate=1.5, stdout=StringIO())


def test_good_values_at_the_edges_of_every_range_are_accepted(served):
    out = StringIO()
    call_command(
        "polar_server", "--host", "localhost", "--port", "0", "--customers", "3",
        "--seed", "-7", "--token", "polar_oat_!~", "--organization-id", UUID.upper(),
        "--rate-limit", "0", "--fail-rate", "1", "--drop-rate", "0", "--malformed-rate", "0.5",
        "--latency", "60", "--webhook-url", "https://receiver.example:8443/hooks/",
        "--webhook-secret", "s3cret", stdout=out,
    )  # fmt: skip
    (server,) = served
    assert (server.host, len(server.store), server.token) == ("localhost", 3, "polar_oat_!~")
    assert server.organization_id == UUID
    faults = server.faults
    assert (faults.rate_limit, faults.fail_rate, faults.drop_rate) == (0, 1.0, 0.0)
    assert (faults.malformed_rate, faults.latency) == (0.5, 60.0)
    assert server.webhooks.url == "https://receiver.example:8443/hooks/"


@pytest.mark.django_db
def test_good_values_of_the_other_commands_are_accepted(live_polar):
    out = StringIO()
    call_command("polar_sync", "--states", "--max-requests", "1", stdout=out, stderr=StringIO())
    assert "states" in out.getvalue()
    with pytest.raises(CommandError, match="No local user has external ID"):  # not an argument
        call_command("polar_push", "--user", "é" * 255, stdout=StringIO())
    call_command("polar_webhooks", "--since", "2025-10-01T12:00:00+02:00", stdout=StringIO())


@pytest.mark.parametrize(
    ("parse", "value", "expected"),
    [
        (arguments.integer(minimum=1), "1", 1),
        (arguments.integer(minimum=0, maximum=5), "5", 5),
        (arguments.number(minimum=0, maximum=60), "0.25", 0.25),
        (arguments.rate, "1", 1.0),
        (arguments.port, "65535", 65535),
        (arguments.host, "0.0.0.0", "0.0.0.0"),
        (arguments.host, "polar-stub.internal", "polar-stub.internal"),
        (arguments.http_url, "http://web:8000/polar/webhooks/", "http://web:8000/polar/webhooks/"),
        (arguments.uuid, UUID.upper(), UUID),
        (arguments.token, "polar_oat_abc", "polar_oat_abc"),
        (arguments.text(max_length=3), "abc", "abc"),
        (arguments.iso_datetime, "2025-10-01", datetime(2025, 10, 1, tzinfo=UTC)),
        (
            arguments.iso_datetime,
            "2025-10-01T12:00:00+02:00",
            datetime(2025, 10, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_each_validator_returns_a_good_value_parsed(parse, value, expected):
    assert parse(value) == expected


# -- the local server, constructed in code ------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"port": -1}, "port"),
        ({"port": 70000}, "port"),
        ({"host": "999.1.1.1"}, "host"),
        ({"customers": -5}, "customers"),
        ({"token": "has space"}, "token"),
        ({"organization_id": "not-a-uuid"}, "organization_id"),
        ({"rate_limit": -10}, "rate_limit"),
        ({"rate_limit_window": 0}, "rate_limit_window"),
        ({"fail_rate": 1.5}, "fail_rate"),
        ({"fail_rate": -0.5}, "fail_rate"),
        ({"fail_rate": math.nan}, "fail_rate"),
        ({"drop_rate": 2}, "drop_rate"),
        ({"malformed_rate": True}, "malformed_rate"),
        ({"latency": -1}, "latency"),
        ({"fail_statuses": (200,)}, "fail_statuses"),
        ({"fail_statuses": ()}, "fail_statuses"),
        ({"seed": "7"}, "seed"),
        ({"webhook_url": "not-a-url", "webhook_secret": "s"}, "webhook_url"),
    ],
)
def test_the_local_server_refuses_bad_values_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        LocalPolarServer(**kwargs)


def test_faults_and_store_check_their_values_too():
    with pytest.raises(ValueError, match=r"^drop_rate must be a number from 0 to 1, not 2"):
        Faults(drop_rate=2)
    with pytest.raises(ValueError, match=r"^organization_id must be a UUID"):
        PolarStore("acme")
    assert PolarStore(UUID.upper()).organization_id == UUID
