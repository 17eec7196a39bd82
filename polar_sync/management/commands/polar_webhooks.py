"""``manage.py polar_webhooks``: stored webhook events by status, ``--sweep`` those left
behind, ``--replay`` them (all, ``--failed``, ``--since``); examples in the README."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from polar_sync import services
from polar_sync.management import arguments
from polar_sync.models import WebhookEvent

Status = WebhookEvent.Status


class Command(BaseCommand):
    help = (
        "Show stored Polar webhook events by status, process those left behind with --sweep, "
        "or reprocess them with --replay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--replay",
            action="store_true",
            help="Process the selected events again, oldest change first (safe to repeat).",
        )
        parser.add_argument(
            "--sweep",
            action="store_true",
            help="Process the events left received (their task was lost) and the retrying "
            "ones that are due, as the periodic polar_sync.sweep_webhooks task does.",
        )
        parser.add_argument(
            "--failed", action="store_true", help="Select only the events whose processing failed."
        )
        parser.add_argument(
            "--since",
            metavar="ISO",
            type=arguments.iso_datetime,
            help="Select only the events received at or after this date or datetime (UTC).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = options["since"]
        if options["sweep"]:
            if options["replay"] or options["failed"] or since:
                raise CommandError("--sweep selects its own events: drop --replay/--failed/--since")
            outcomes = services.webhook_events_sweep(progress=self._progress)
            self.stdout.write(_summary("swept", outcomes))
            return
        if not options["replay"]:
            if options["failed"]:
                raise CommandError("--failed selects events to replay: add --replay")
            counts = services.webhook_event_counts(since=since)
            for status, count in counts.items():
                self.stdout.write(f"{status:<10} {count}")
            return

        outcomes = services.webhook_events_replay(
            failed_only=options["failed"], since=since, progress=self._progress
        )
        self.stdout.write(_summary("replayed", outcomes))
        if failed := outcomes[Status.FAILED]:
            raise CommandError(f"{failed} event(s) failed again (errors above)")

    def _progress(self, event: WebhookEvent) -> None:
        if event.status in (Status.FAILED, Status.RETRYING):
            self.stderr.write(f"{event.webhook_id} {event.event_type}: {event.error}")


def _summary(done: str, outcomes: Counter[str]) -> str:
    """``replayed 3 event(s): 2 processed, 1 ignored``."""
    summary = ", ".join(f"{outcomes[s]} {s}" for s in Status.values if outcomes[s])
    return f"{done} {sum(outcomes.values())} event(s)" + (f": {summary}" if summary else "")
