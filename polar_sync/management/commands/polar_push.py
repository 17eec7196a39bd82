"""``manage.py polar_push``: push the outbox's waiting user changes to Polar now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from polar_sync.services import push

FAILURES_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Push local user changes waiting in the outbox to Polar now (ignoring backoff), "
        "and print what was done."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="Also retry rows Polar refused (e.g. after fixing the data in Polar).",
        )
        parser.add_argument(
            "--user",
            metavar="EXTERNAL_ID",
            help="Push this one user now (create/update, or delete if no such user), "
            "even if nothing changed.",
        )
        parser.add_argument(
            "--reconcile",
            action="store_true",
            help="First compare every user with what Polar was last given, and queue "
            "those that differ (users from before polar_sync, QuerySet.update(), "
            "customers deleted in Polar).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["reconcile"]:
            if options["user"]:
                raise CommandError("--reconcile and --user cannot be combined.")
            reconciled = push.users_reconcile(enqueue=False)
            self.stdout.write(
                f"Reconciled {reconciled.checked} user(s): {reconciled.queued} queued, "
                f"{reconciled.skipped} excluded by USER_FILTER."
            )
        if options["user"]:
            result = push.customer_push(external_id=options["user"])
        else:
            result = push.outbox_drain(retry_failed=options["retry_failed"], force=True)
        out = self.stdout
        out.write(
            f"Pushed {result.pushed} change(s) to Polar: {result.created} created, "
            f"{result.updated} updated, {result.adopted} adopted (existing customer with "
            f"that email), {result.deleted} deleted, {result.already_gone} already gone; "
            f"{result.requests} API request(s)."
            + (f" {result.unchanged} already in Polar as pushed." if result.unchanged else "")
        )
        if result.failed:
            out.write(self.style.ERROR(f"Refused by Polar: {len(result.failed)}"))
            for external_id, error in result.failed:
                out.write(f"  {external_id}: {error}")
        if result.postponed:
            out.write(
                self.style.WARNING(
                    f"Postponed: {result.postponed} (transient errors; retried with backoff)"
                )
            )
        if result.busy:
            out.write(f"Skipped: {result.busy} (being pushed by a worker)")
        counts = push.outbox_counts()
        out.write(
            f"Outbox now: {counts['pending']} pending, {counts['failed']} failed"
            + (" (polar_push --retry-failed retries them)" if counts["failed"] else "")
            + "."
        )
        if counts["failed"] and not result.failed:
            for external_id, error in push.outbox_failures(limit=FAILURES_SHOWN):
                out.write(f"  {external_id}: {error}")
            if counts["failed"] > FAILURES_SHOWN:
                out.write(f"  ... and {counts['failed'] - FAILURES_SHOWN} more (see the admin)")
        if result.stopped:
            out.write(self.style.WARNING(f"Stopped: {result.stopped}"))
        if result.stopped and not result.pushed and not result.failed:
            raise CommandError(result.stopped)
