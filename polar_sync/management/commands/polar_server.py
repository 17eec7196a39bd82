"""``manage.py polar_server``: serve a local, in-memory Polar customers API until Ctrl-C.

    python manage.py polar_server --port 8111 --customers 5000 --seed 1 --rate-limit 500

``--api-version`` (default 2026-04) is the version served to requests without a
``Polar-Version`` header; 2025-10 plays Polar before dated versions (with ``/balance``).

Prints the base URL and the access token to put in ``POLAR_SYNC["SERVER"]`` and
``POLAR_SYNC["ACCESS_TOKEN"]``. The token is a throwaway for this local server only.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from polar_sync.management import arguments
from polar_sync.testing import LocalPolarServer, versions
from polar_sync.testing.params import CUSTOMERS_MAX, LATENCY_MAX


class Command(BaseCommand):
    help = "Serve a local, in-memory stand-in for Polar's customers API (until Ctrl-C)."
    # The stand-in needs neither the database nor a configured POLAR_SYNC.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        add = parser.add_argument
        add(
            "--host",
            type=arguments.host,
            default="127.0.0.1",
            help="Interface: an IPv4 address or a host name (default 127.0.0.1).",
        )
        add(
            "--port",
            type=arguments.port,
            default=8111,
            help="Port, 0 to 65535 (default 8111; 0: any free one).",
        )
        add(
            "--customers",
            type=arguments.integer(minimum=0, maximum=CUSTOMERS_MAX),
            default=0,
            help=f"Customers to seed, 0 to {CUSTOMERS_MAX:,}.",
        )
        add("--seed", type=int, default=0, help="Seed of the generated data (an integer).")
        add(
            "--token",
            type=arguments.token,
            default=None,
            help="Access token to accept: 1 to 255 visible ASCII characters (default: random).",
        )
        add(
            "--organization-id",
            type=arguments.uuid,
            default=None,
            help="Organization UUID of every customer.",
        )
        add(
            "--rate-limit",
            type=arguments.integer(minimum=0),
            default=None,
            help="Requests per minute before 429 (Polar: 500 production, 100 sandbox; "
            "0 refuses every request). Default: no limit.",
        )
        add(
            "--fail-rate",
            type=arguments.rate,
            default=0.0,
            help="Share of 500/502/503 answers, 0 to 1.",
        )
        add(
            "--latency",
            type=arguments.number(minimum=0, maximum=LATENCY_MAX),
            default=0.0,
            help=f"Seconds added per answer, 0 to {LATENCY_MAX:g}.",
        )
        add(
            "--drop-rate",
            type=arguments.rate,
            default=0.0,
            help="Share of connections dropped, 0 to 1.",
        )
        add(
            "--malformed-rate",
            type=arguments.rate,
            default=0.0,
            help="Share of truncated JSON answers, 0 to 1.",
        )
        add(
            "--no-balance-route",
            action="store_true",
            help="Answer /v1/customers/{id}/balance as an unknown route (404).",
        )
        add(
            "--api-version",
            choices=versions.CONFIGURABLE,
            default=versions.DEFAULT,
            help=f"Version served without a Polar-Version header (default {versions.DEFAULT}); "
            f"{versions.ERA_2025}: Polar before dated versions, with /balance.",
        )
        add("--verbose-requests", action="store_true", help="Log each request.")
        add(
            "--webhook-url",
            type=arguments.http_url,
            default=None,
            help="Send signed webhooks (customer.*; in 2026 versions also member.*, "
            "customer_seat.*, product.*, benefit.*) for every change to this http(s) URL, "
            "e.g. http://127.0.0.1:8000/polar/webhooks/.",
        )
        add(
            "--webhook-secret",
            type=arguments.text(max_length=1000),
            default=None,
            help="Secret to sign webhooks with (POLAR_SYNC['WEBHOOK_SECRET'] of the receiver).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["webhook_url"] and not options["webhook_secret"]:
            raise CommandError("--webhook-url needs --webhook-secret to sign the deliveries")
        if options["webhook_secret"] and not options["webhook_url"]:
            raise CommandError("--webhook-secret signs webhooks: add --webhook-url")
        started = time.perf_counter()
        if options["port"]:  # before seeding, which can take a while
            self._listen_check(options["host"], options["port"])
        try:
            server = self._server(options)
        except ValueError as exc:  # options passed to call_command() skip argparse's types
            raise CommandError(str(exc)) from exc
        try:
            server.start()
        except OSError as exc:
            raise self._listen_error(options["host"], options["port"], exc) from exc
        seconds = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(f"Local Polar server listening on {server.url}")
            + f" ({len(server.store)} customers, ready in {seconds:.1f}s)"
        )
        self.stdout.write(f"Access token: {server.token}")
        self.stdout.write(f"Organization: {server.organization_id}")
        self.stdout.write(f"API version: {server.api_version}")
        # polar_sync speaks 2026-04 by default; a server of the 2025-10 era needs None.
        era = ', "API_VERSION": None' if server.api_version == versions.ERA_2025 else ""
        self.stdout.write(
            f'POLAR_SYNC = {{"SERVER": "{server.url}", "ACCESS_TOKEN": "{server.token}"{era}}}'
        )
        if server.webhooks is not None:
            self.stdout.write(f"Webhooks: sent to {server.webhooks.url}")
        self.stdout.write("Quit with Ctrl-C.")
        try:
            self.wait(server)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            self.stdout.write("Local Polar server stopped.")

    def _server(self, options: dict[str, Any]) -> LocalPolarServer:
        return LocalPolarServer(
            host=options["host"],
            port=options["port"],
            token=options["token"],
            customers=options["customers"],
            seed=options["seed"],
            organization_id=options["organization_id"],
            rate_limit=options["rate_limit"],
            fail_rate=options["fail_rate"],
            latency=options["latency"],
            drop_rate=options["drop_rate"],
            malformed_rate=options["malformed_rate"],
            balance_route=not options["no_balance_route"],
            verbose=options["verbose_requests"],
            webhook_url=options["webhook_url"],
            webhook_secret=options["webhook_secret"],
            api_version=options.get("api_version") or versions.DEFAULT,
        )

    def _listen_check(self, host: str, port: int) -> None:
        """Bind and release ``host:port`` as the server will (address reuse included)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise self._listen_error(host, port, exc) from exc

    def _listen_error(self, host: str, port: int, exc: OSError) -> CommandError:
        if exc.errno == errno.EADDRINUSE:
            return CommandError(
                f"port {port} on {host} is in use: choose another --port (0: any free one)"
            )
        if isinstance(exc, socket.gaierror):
            return CommandError(f"--host {host} cannot be resolved: {exc.strerror}")
        why = exc.strerror or exc
        return CommandError(f"cannot listen on {host}:{port} (--host, --port): {why}")

    def wait(self, server: LocalPolarServer) -> None:
        """Block until interrupted (tests replace this)."""
        threading.Event().wait()
