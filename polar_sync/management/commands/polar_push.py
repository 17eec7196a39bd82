"""``manage.py polar_push``: push the outbox's waiting user changes to Polar now.

manage.py polar_push                              # drain the outbox now
manage.py polar_push --user 42                    # push user 42 now, changed or not
manage.py polar_push --reconcile --dry-run        # what reconciling would queue, nothing written
manage.py polar_push --delete-external-id 42      # delete that Polar customer (asks first)
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from polar_sync import status_selectors
from polar_sync.conf import polar_settings
from polar_sync.exceptions import PolarError
from polar_sync.management import arguments
from polar_sync.models import PushOutbox
from polar_sync.services import push, remote
from polar_sync.services.customers import users_by_external_id

FAILURES_SHOWN = 20
# What the outbox and the mirror can store as an external ID.
EXTERNAL_ID = arguments.text(max_length=PushOutbox._meta.get_field("external_id").max_length or 255)


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
            type=EXTERNAL_ID,
            help="Push this one local user now (create or update), even if nothing changed. "
            "Refused when no local user has this external ID.",
        )
        parser.add_argument(
            "--delete-external-id",
            metavar="EXTERNAL_ID",
            type=EXTERNAL_ID,
            help="Delete the Polar customer with this external ID (cancels its subscriptions, "
            "revokes its benefits): shows the customer and asks for confirmation first.",
        )
        parser.add_argument(
            "--yes",
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="With --delete-external-id: do not ask for confirmation.",
        )
        parser.add_argument(
            "--reconcile",
            action="store_true",
            help="First compare every user with what Polar was last given, and queue "
            "those that differ (users from before polar_sync, QuerySet.update(), "
            "customers deleted in Polar).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="With --reconcile: say which users it would queue (and which are excluded); "
            "write and push nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["delete_external_id"] is not None:
            others = [f"--{n.replace('_', '-')}" for n in ("user", "reconcile", "retry_failed")
                      if options[n]]  # fmt: skip
            if others:
                raise CommandError(f"--delete-external-id cannot be combined with {others[0]}.")
            self._delete(options["delete_external_id"], interactive=options["interactive"])
            return
        if options["dry_run"] and not options["reconcile"]:
            raise CommandError("--dry-run goes with --reconcile.")
        if options["reconcile"]:
            if options["user"]:
                raise CommandError("--reconcile and --user cannot be combined.")
            reconciled = push.users_reconcile(enqueue=False, dry_run=options["dry_run"])
            if options["dry_run"]:
                self._dry_run(reconciled)
                return
            self.stdout.write(
                f"Reconciled {reconciled.checked} user(s): {reconciled.queued} queued, "
                + self._excluded(reconciled)
            )
        if options["user"]:
            result = push.customer_push(external_id=options["user"])
            if result.stopped and not result.requests:
                raise CommandError(self._refusal(options["user"], result))
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
        counts = status_selectors.outbox_counts()
        out.write(
            f"Outbox now: {counts['pending']} pending, {counts['failed']} failed"
            + (" (polar_push --retry-failed retries them)" if counts["failed"] else "")
            + "."
        )
        if counts["failed"] and not result.failed:
            for external_id, error in status_selectors.outbox_failures(limit=FAILURES_SHOWN):
                out.write(f"  {external_id}: {error}")
            if counts["failed"] > FAILURES_SHOWN:
                out.write(f"  ... and {counts['failed'] - FAILURES_SHOWN} more (see the admin)")
        if result.stopped:
            out.write(self.style.WARNING(f"Stopped: {result.stopped}"))
        if result.stopped and not result.pushed and not result.failed:
            raise CommandError(result.stopped)

    def _excluded(self, reconciled: push.ReconcileResult) -> str:
        staff = (
            "included (PUSH_STAFF is True)"
            if polar_settings().PUSH_STAFF
            else f"{reconciled.staff} not pushed (PUSH_STAFF is False)"
        )
        return f"staff and superusers: {staff}, {reconciled.skipped} excluded by USER_FILTER."

    def _dry_run(self, reconciled: push.ReconcileResult) -> None:
        if reconciled.stopped:
            raise CommandError(reconciled.stopped)
        ids = reconciled.would_queue
        self.stdout.write(
            f"Dry run: compared {reconciled.checked} user(s); would queue {len(ids)}; "
            + self._excluded(reconciled)
        )
        for external_id in ids[:FAILURES_SHOWN]:
            self.stdout.write(f"  would push external ID {external_id}")
        if len(ids) > FAILURES_SHOWN:
            self.stdout.write(f"  ... and {len(ids) - FAILURES_SHOWN} more")
        self.stdout.write("Nothing was written or pushed.")

    def _refusal(self, external_id: str, result: push.DrainResult) -> str:
        """Why ``--user`` pushed nothing; like the admin, a missing user deletes nothing."""
        if not result.no_user:
            return result.stopped
        return (
            f"{result.stopped[0].upper()}{result.stopped[1:]}. To delete the Polar customer "
            f"with this external ID, run: manage.py polar_push --delete-external-id {external_id}"
        )

    def _delete(self, external_id: str, *, interactive: bool) -> None:
        # Deleted by its Polar ID, the one shown and confirmed.
        try:
            customer = remote.customer_in_polar_get(external_id=external_id)
        except PolarError as exc:
            raise CommandError(f"Could not look up external ID {external_id!r}: {exc}") from exc
        if customer is None:
            raise CommandError(
                f"Polar has no live customer with external ID {external_id!r}: nothing to delete."
            )
        self.stdout.write(
            f"Polar customer {customer['id']} ({customer.get('email')}, external ID "
            f"{external_id!r}) will be deleted in Polar: its subscriptions are cancelled and "
            "its benefits revoked."
        )
        if users_by_external_id([external_id]):
            self.stdout.write(
                self.style.WARNING(
                    f"A local user still has external ID {external_id!r}: its next push "
                    "creates a new customer."
                )
            )
        if interactive and not self._confirmed():
            raise CommandError("Deletion cancelled: nothing was deleted.")
        try:
            existed = remote.customer_delete_in_polar(customer_id=customer["id"])
        except PolarError as exc:
            raise CommandError(f"Polar customer {customer['id']} was not deleted: {exc}") from exc
        self.stdout.write(
            f"Deleted Polar customer {customer['id']}."
            if existed
            else f"Polar customer {customer['id']} was already deleted; the mirror is updated."
        )

    def _confirmed(self) -> bool:
        try:
            answer = input("Type 'yes' to delete it, or anything else to cancel: ")
        except EOFError:  # no terminal to answer on: say no
            return False
        return answer.strip().lower() == "yes"
