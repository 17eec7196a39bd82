"""``manage.py polar_server``: serve a local, in-memory Polar customers API until Ctrl-C.

    python manage.py polar_server --port 8111 --customers 5000 --seed 1 --rate-limit 500

Prints the base URL and the access token to put in ``POLAR_SYNC["SERVER"]`` and
``POLAR_SYNC["ACCESS_TOKEN"]``. The token is a throwaway for this local server only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from polar_sync.testing import LocalPolarServer


class Command(BaseCommand):
    help = "Serve a local, in-memory stand-in for Polar's customers API (until Ctrl-C)."
    # The stand-in needs neither the database nor a configured POLAR_SYNC.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Interface (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8111, help="Port (0: any free one).")
        parser.add_argument("--customers", type=int, default=0, help="Customers to seed.")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the generated data.")
        parser.add_argument(
            "--token", default=None, help="Access token to accept (default: a random one)."
        )
        parser.add_argument(
            "--organization-id", default=None, help="Organization UUID of every customer."
        )
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=None,
            help="Requests per minute before 429 (Polar: 500 production, 100 sandbox).",
        )
        parser.add_argument(
            "--fail-rate", type=float, default=0.0, help="Share of 500/502/503 answers."
        )
        parser.add_argument("--latency", type=float, default=0.0, help="Seconds added per answer.")
        parser.add_argument(
            "--drop-rate", type=float, default=0.0, help="Share of connections dropped."
        )
        parser.add_argument(
            "--malformed-rate", type=float, default=0.0, help="Share of truncated JSON answers."
        )
        parser.add_argument(
            "--no-balance-route",
            action="store_true",
            help="Answer /v1/customers/{id}/balance as an unknown route (404).",
        )
        parser.add_argument("--verbose-requests", action="store_true", help="Log each request.")
        parser.add_argument(
            "--webhook-url",
            default=None,
            help="Send signed customer.* webhooks for every change to this URL, "
            "e.g. http://127.0.0.1:8000/polar/webhooks/.",
        )
        parser.add_argument(
            "--webhook-secret",
            default=None,
            help="Secret to sign webhooks with (POLAR_SYNC['WEBHOOK_SECRET'] of the receiver).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["webhook_url"] and not options["webhook_secret"]:
            raise CommandError("--webhook-url needs --webhook-secret to sign the deliveries")
        started = time.perf_counter()
        server = LocalPolarServer(
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
        )
        server.start()
        seconds = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(f"Local Polar server listening on {server.url}")
            + f" ({len(server.store)} customers, ready in {seconds:.1f}s)"
        )
        self.stdout.write(f"Access token: {server.token}")
        self.stdout.write(f"Organization: {server.organization_id}")
        self.stdout.write(
            f'POLAR_SYNC = {{"SERVER": "{server.url}", "ACCESS_TOKEN": "{server.token}"}}'
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

    def wait(self, server: LocalPolarServer) -> None:
        """Block until interrupted (tests replace this)."""
        threading.Event().wait()
