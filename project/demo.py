"""The demo main job: a full sync from a local Polar server into SQLite.

Run through ``scripts/demo`` (which creates the environment and migrates):
it starts the local Polar server (today's default API version, 2026-04) with seeded
customers, syncs customers and states (balances only exist on a server of the 2025-10
era) with progress shown, prints the summary and the API version served, and creates a
demo superuser. ``--serve`` then keeps both servers running for the admin.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000, help="customers to seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--polar-port", type=int, default=0, help="local Polar server port")
    parser.add_argument("--serve", action="store_true", help="then serve the admin")
    parser.add_argument("--port", type=int, default=8000, help="admin port with --serve")
    args = parser.parse_args(argv)

    # The local server speaks real HTTP; polar_sync talks to it like to Polar.
    from polar_sync.testing import LocalPolarServer

    # Today's default API version (2026-04): individual and team customers, no /balance.
    server = LocalPolarServer(port=args.polar_port, customers=args.customers, seed=args.seed)
    server.start()
    print(
        f"Local Polar server at {server.url} with {args.customers} customers "
        f"(API version {server.api_version})"
    )
    os.environ.update(
        POLAR_ACCESS_TOKEN=server.token,
        POLAR_SERVER=server.url,
        # The local server has no rate limit; Polar's would make the demo take minutes.
        POLAR_RATE_LIMIT=os.environ.get("POLAR_RATE_LIMIT", "1000000"),
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError, call_command

    try:
        call_command("polar_sync", "--all")
    except CommandError as exc:
        print(f"Sync failed: {exc}", file=sys.stderr)
        server.stop()
        return 1

    user_model = get_user_model()
    if not user_model.objects.filter(username="demo").exists():
        user_model.objects.create_superuser("demo", "demo@example.com", "demo")
        print("Created the demo superuser: user 'demo', password 'demo' (demo only).")
    if not args.serve:
        print(
            "\nTo browse the mirror in the admin: scripts/demo --serve, then open "
            f"http://127.0.0.1:{args.port}/admin/ (user demo, password demo)."
        )
        server.stop()
        return 0
    print(f"\nAdmin: http://127.0.0.1:{args.port}/admin/ (demo / demo). Ctrl-C stops both.")
    try:
        call_command("runserver", f"127.0.0.1:{args.port}", use_reloader=False)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
