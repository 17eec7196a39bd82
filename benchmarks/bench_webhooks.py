"""How many Polar webhook deliveries per second does polar_sync ingest? Verify, store, process.

    .venv/bin/python benchmarks/bench_webhooks.py [--deliveries 1000] [--postgres URL]

Each delivery is signed beforehand (Polar's side of the work) and posted through Django's
test client to the real endpoint: middleware, Standard Webhooks verification, the insert
keyed by webhook-id, then (Celery eager, after commit) the processing into the mirror.
Runs on SQLite (a file) and, when ``DATABASE_URL`` or ``--postgres`` names one, on
PostgreSQL; each database in a child process, in a throwaway test database.

Scenarios: ``customer.created`` for new customers; ``customer.state_changed`` with two
subscriptions, a grant and a meter (the whole state replaced each time); redeliveries of
already stored ids (verify and acknowledge only); the endpoint alone as with a real broker
(verify, store, 202; the task is not run) and then a worker processing those events; and
the signature check alone.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET = "polar_whs_benchmark_secret"


def signed(
    event_type: str, data: dict[str, Any], n: int, prefix: str = "msg"
) -> tuple[bytes, dict[str, str]]:
    from standardwebhooks import Webhook

    moment = datetime.now(UTC)
    body = json.dumps(
        {"type": event_type, "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "data": data}
    ).encode()
    webhook_id = f"{prefix}_{event_type}_{n}"
    signer = Webhook(base64.b64encode(SECRET.encode()).decode())
    return body, {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signer.sign(webhook_id, moment, body.decode()),
    }


def make_deliveries(n: int) -> dict[str, list[tuple[bytes, dict[str, str]]]]:
    """Signed deliveries made with the local Polar server's store (Polar's exact shapes)."""
    from polar_sync.testing import PolarStore

    store = PolarStore()
    customers = [store.add_customer() for _ in range(n)]
    # State changes go to a tenth as many customers: each gets about ten updates.
    stateful = customers[: max(n // 10, 1)]
    for customer in stateful:
        for amount in (900, 2900):
            store.start_subscription(customer["id"], amount=amount)
        store.grant_benefit(customer["id"], "license_keys")
        store.set_meter(customer["id"], consumed_units=12, credited_units=100)
    created = [signed("customer.created", c, i) for i, c in enumerate(customers)]
    states = [
        signed("customer.state_changed", store.get_state(stateful[i % len(stateful)]["id"]), i)
        for i in range(n)
    ]
    # Signed after every one of ``states``, so newer: the worker applies them, not skips them.
    queued = [
        signed(
            "customer.state_changed",
            store.get_state(stateful[i % len(stateful)]["id"]),
            i,
            prefix="queued",
        )
        for i in range(n)
    ]
    return {"created": created, "state": states, "queued": queued}


def child(n: int) -> dict[str, Any]:
    """Run in a child process: set Django up on this process's database and measure."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_SECRET": SECRET}
    database = connection.settings_dict
    # Tables straight from the models (like pytest --nomigrations), in a throwaway database
    # of its own name: never the test suite's, which a parallel run may be using.
    database["TEST"]["MIGRATE"] = False
    database["TEST"]["NAME"] = f"bench_webhooks_{os.getpid()}"
    scratch = tempfile.mkdtemp(prefix="bench_webhooks_")
    if connection.vendor == "sqlite":
        database["TEST"]["NAME"] = str(Path(scratch) / "bench_webhooks.sqlite3")
    setup_test_environment(debug=False)  # as in production: no query log
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from polar_sync.models import Customer, StateSubscription, WebhookEvent
        from polar_sync.services import webhooks as service

        deliveries = make_deliveries(n)
        web = Client()
        url = "/polar/webhooks/"
        figures: dict[str, Any] = {"vendor": connection.vendor}

        def ingest(name: str, batch: list[tuple[bytes, dict[str, str]]]) -> None:
            started = time.perf_counter()
            for body, headers in batch:
                response = web.post(url, body, content_type="application/json", headers=headers)
                if response.status_code != 202:
                    raise SystemExit(f"{name}: {response.status_code} {response.content[:200]!r}")
            figures[name] = len(batch) / (time.perf_counter() - started)

        ingest("customer.created (new customers)", deliveries["created"])
        ingest("customer.state_changed (state replaced)", deliveries["state"])
        ingest("redelivery of a stored id", deliveries["created"])
        # With a real broker the endpoint only stores and enqueues; a worker processes.
        dispatch = service.webhook_event_dispatch
        service.webhook_event_dispatch = lambda **kwargs: None
        try:
            ingest("endpoint only: verify, store, 202", deliveries["queued"])
        finally:
            service.webhook_event_dispatch = dispatch
        received = WebhookEvent.objects.filter(status="received").order_by("pk")
        pending = list(received.values_list("pk", flat=True))
        started = time.perf_counter()
        for pk in pending:
            service.webhook_event_process(event_id=pk)
        figures["worker only: process a stored state"] = len(pending) / (
            time.perf_counter() - started
        )
        ignored = WebhookEvent.objects.filter(webhook_id__startswith="queued", status="ignored")
        if ignored.exists():
            raise SystemExit("the worker scenario skipped events: it would not measure processing")
        started = time.perf_counter()
        for body, headers in deliveries["state"]:
            service.webhook_verify(body=body, headers=headers)
        figures["signature check alone"] = n / (time.perf_counter() - started)

        failed = WebhookEvent.objects.exclude(status__in=["processed", "ignored"]).count()
        if failed or Customer.objects.count() != n or not StateSubscription.objects.exists():
            raise SystemExit(f"the mirror is not what the deliveries say ({failed} not processed)")
        return figures
    finally:
        connection.creation.destroy_test_db(database["NAME"], verbosity=0)
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000, help="Per scenario.")
    parser.add_argument("--postgres", default=os.environ.get("DATABASE_URL"), help="A URL.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.deliveries)))
        return

    targets = [("SQLite", None)]
    if args.postgres and args.postgres.startswith("postgres"):
        targets.append(("PostgreSQL", args.postgres))
    print(f"Webhook deliveries ingested per second ({args.deliveries} per scenario; Django test")
    print("client -> verify -> store -> process after commit, Celery eager, one process)")
    print()
    print(f"{'database':<11} {'scenario':<42} {'deliveries/s':>12} {'ms each':>8}")
    for label, url in targets:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        if url:
            env["DATABASE_URL"] = url
        result = subprocess.run(
            [sys.executable, __file__, "--child", "--deliveries", str(args.deliveries)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            print(f"{label:<11} failed:\n{result.stdout}{result.stderr}")
            continue
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        figures.pop("vendor")
        for name, rate in figures.items():
            print(f"{label:<11} {name:<42} {rate:>12,.0f} {1000 / rate:>8.2f}")


if __name__ == "__main__":
    main()
