"""``manage.py polar_beat_install``: polar_sync's beat schedule as django-celery-beat's
periodic tasks (idempotent; ``--dry-run`` says what it would change)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from polar_sync.exceptions import PolarConfigurationError
from polar_sync.schedule import BEAT_SCHEDULE
from polar_sync.services.beat import beat_schedule_install


class Command(BaseCommand):
    help = (
        "Create or update a django-celery-beat periodic task for every entry of "
        "polar_sync.schedule.BEAT_SCHEDULE (or, with --from-settings, of the polar- entries "
        "of CELERY_BEAT_SCHEDULE). Safe to run again: only what differs changes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from-settings",
            action="store_true",
            help="Install the entries of settings.CELERY_BEAT_SCHEDULE whose task is "
            "polar_sync's (your intervals) instead of polar_sync's defaults.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would change; write nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        schedule = BEAT_SCHEDULE
        if options["from_settings"]:
            configured = getattr(settings, "CELERY_BEAT_SCHEDULE", None) or {}
            schedule = {
                name: entry
                for name, entry in configured.items()
                if str(entry.get("task", "")).startswith("polar_sync.")
            }
            if not schedule:
                raise CommandError("CELERY_BEAT_SCHEDULE has no polar_sync task")
        try:
            result = beat_schedule_install(schedule=schedule, dry_run=options["dry_run"])
        except PolarConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        would = "would be " if options["dry_run"] else ""
        for label, names in (
            (f"{would}created", result.created),
            (f"{would}updated", result.updated),
            ("unchanged", result.unchanged),
        ):
            if names:
                self.stdout.write(f"{len(names)} {label}: {', '.join(names)}")
