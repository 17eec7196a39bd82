"""``manage.py polar_webhooks``: stored webhook events, and reprocessing them.

manage.py polar_webhooks                          # counts by status
manage.py polar_webhooks --replay                 # reprocess every stored event
manage.py polar_webhooks --replay --failed        # only the failed ones
manage.py polar_webhooks --replay --since 2025-10-01T00:00:00Z
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from polar_sync import services
from polar_sync.models import WebhookEvent


def _since(value: str) -> datetime:
    """An ISO-8601 date or datetime (naive means UTC)."""
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            parsed = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(
            f"--since {value!r} is not an ISO-8601 date or datetime, e.g. 2025-10-01T12:00:00Z"
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Show stored Polar webhook events by status, or reprocess them with --replay."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--replay",
            action="store_true",
            help="Process the selected events again, oldest change first. Safe to repeat: "
            "an event older than what the mirror holds is ignored.",
        )
        parser.add_argument(
            "--failed", action="store_true", help="Select only the events whose processing failed."
        )
        parser.add_argument(
            "--since",
            metavar="ISO",
            help="Select only the events received at or after this date or datetime (UTC).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = _since(options["since"]) if options["since"] else None
        if not options["replay"]:
            if options["failed"]:
                raise CommandError("--failed selects events to replay: add --replay")
            counts = services.webhook_event_counts(since=since)
            for status, count in counts.items():
                self.stdout.write(f"{status:<10} {count}")
            return

        def progress(event: WebhookEvent) -> None:
            if event.status == WebhookEvent.Status.FAILED:
                self.stderr.write(f"{event.webhook_id} {event.event_type}: {event.error}")

        outcomes = services.webhook_events_replay(
            failed_only=options["failed"], since=since, progress=progress
        )
        total = sum(outcomes.values())
        summary = ", ".join(f"{outcomes[s]} {s}" for s in WebhookEvent.Status.values if outcomes[s])
        self.stdout.write(f"replayed {total} event(s)" + (f": {summary}" if summary else ""))
        if outcomes[WebhookEvent.Status.FAILED]:
            raise CommandError(
                f"{outcomes[WebhookEvent.Status.FAILED]} event(s) failed again (errors above)"
            )
