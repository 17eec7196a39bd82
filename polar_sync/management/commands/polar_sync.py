"""``manage.py polar_sync``: pull customers, states, balances, members and the catalogue."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import reset_queries

from polar_sync import services
from polar_sync.conf import polar_settings
from polar_sync.exceptions import PolarConfigurationError
from polar_sync.management import arguments
from polar_sync.models import Benefit, Customer, Product, SyncRun
from polar_sync.services.budget import budget_duration
from polar_sync.services.catalog import catalog_available
from polar_sync.services.members import members_available, members_forbidden
from polar_sync.services.states import balances_unavailable, customers_due

COLUMNS = ("kind", "status", "pages", "created", "updated", "unchanged", "deleted", "failed")


class Progress:
    """A one-line progress bar on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: Any, kind: str) -> None:
        self.stream = stream
        self.kind = kind
        self.started = time.monotonic()
        self.last_print = 0.0
        self.tty = stream.isatty()

    def __call__(self, run: SyncRun) -> None:
        if settings.DEBUG:
            # With DEBUG, Django keeps every query's SQL (up to 9,000 of them):
            # a large pull would hold gigabytes of INSERT text for nothing.
            reset_queries()
        now = time.monotonic()
        if now - self.last_print < (0.1 if self.tty else 5.0):
            return
        self.last_print = now
        # ``ending=""``: Django's OutputWrapper would otherwise end every line with "\n".
        self.stream.write(self.line(run) + ("\r" if self.tty else "\n"), ending="")
        self.stream.flush()

    def line(self, run: SyncRun) -> str:
        done = work = run.created + run.updated + run.unchanged + run.deleted + run.failed
        if run.resumed_from_page:  # the pages before it were read by earlier runs
            done += (run.resumed_from_page - 1) * polar_settings().PAGE_SIZE
        rate = work / max(time.monotonic() - self.started, 1e-6)
        total = run.total_count or 0
        parts = [f"{self.kind}:"]
        if total:
            filled = min(24, int(24 * done / total))
            parts.append(f"[{'#' * filled}{'.' * (24 - filled)}] {done}/{total} {self.kind}")
        else:
            parts.append(f"{done} {self.kind}")
        if run.kind == SyncRun.Kind.CUSTOMERS:
            parts.append(f"{run.pages} pages")
        parts.append(f"{rate:,.0f}/s")
        if total and rate > 0 and done < total:
            parts.append(f"ETA {(total - done) / rate:,.0f}s")
        return "  ".join(parts)

    def finish(self, run: SyncRun | None) -> None:
        if run is not None:
            self.stream.write(self.line(run) + "\n", ending="")
            self.stream.flush()


class Command(BaseCommand):
    help = (
        "Pull customers (default), states, balances and/or products and benefits from Polar "
        "into the local mirror, "
        "within the request budget shared with the Celery workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", action="store_true", help="Pull every customer.")
        parser.add_argument("--states", action="store_true", help="Refresh stale states.")
        parser.add_argument("--balances", action="store_true", help="Refresh stale balances.")
        parser.add_argument(
            "--catalog", action="store_true", help="Pull every product and benefit (names)."
        )
        parser.add_argument(
            "--members", action="store_true", help="Pull the members of team customers."
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help="Customers, states, balances; catalogue and members if the API version has them.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Walk the customers without writing; report what states/balances are due.",
        )
        parser.add_argument(
            "--max-requests",
            type=arguments.integer(minimum=1),
            default=None,
            help="At most this many requests (1 or more) for each of states and balances.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kinds = [k for k in ("customers", "states", "balances") if options[k] or options["all"]]
        if options["catalog"] or (options["all"] and catalog_available()):
            kinds.append("catalog")
        # Last: members need their customers, and a 403 on them must not stop the rest.
        if options["members"] or (options["all"] and members_available()):
            kinds.append("members")
        kinds = kinds or ["customers"]
        if options["max_requests"] is not None and kinds == ["customers"]:
            raise CommandError(
                "--max-requests limits --states and --balances (or --all); a customers pull "
                "walks every page"
            )
        try:
            conf = polar_settings()
            self.stdout.write(f"Syncing {', '.join(kinds)} from {conf.base_url}")
            self.stdout.write(f"Budget: {conf.rate_limit_display}")
            runs = self._sync(kinds, options)
        except PolarConfigurationError as exc:
            raise CommandError(f"{exc} Set POLAR_ACCESS_TOKEN (and POLAR_SERVER).") from exc
        self._summary(runs)
        failed = [r for r in runs if r.status == SyncRun.Status.FAILED and not members_forbidden(r)]
        if failed:
            raise CommandError(
                "; ".join(f"{r.kind} sync failed: {r.error}" for r in failed)
                + " (the mirror keeps what was written; run again to continue)"
            )

    def _sync(self, kinds: list[str], options: dict[str, Any]) -> list[SyncRun]:
        runs: list[SyncRun] = []
        for kind in kinds:
            unavailable = balances_unavailable() if kind == "balances" else ""
            if unavailable:
                self.stdout.write(f"balances: not refreshed: {unavailable}")
                continue
            if kind == "members" and not members_available():
                self._skipped(kind, "API_VERSION is None: the 2025-10 API has no members")
                continue
            if kind == "catalog" and not catalog_available():
                self._skipped(kind, "API_VERSION is None: the 2025-10 API has no catalogue")
                continue
            if options["dry_run"] and kind in ("catalog", "members"):
                self.stdout.write(f"{kind}: not pulled in a dry run")
                continue
            if options["dry_run"] and kind != "customers":
                self._report_due(kind)
                continue
            self._announce(kind, options)
            run = self._run(kind, options)
            if run is None:
                self._skipped(kind, "another run is in progress")
                continue
            runs.append(run)
            if run.status == SyncRun.Status.FAILED:
                break  # later kinds build on this one
        return runs

    def _skipped(self, kind: str, why: str) -> None:
        self.stdout.write(self.style.WARNING(f"{kind}: skipped: {why}"))

    def _run(self, kind: str, options: dict[str, Any]) -> SyncRun | None:
        progress = Progress(self.stderr, kind)
        if kind == "customers":
            run = services.customers_pull(dry_run=options["dry_run"], progress=progress)
        elif kind == "members":
            run = services.members_pull(progress=progress)
        elif kind == "catalog":
            run = services.catalog_pull(progress=progress)
        elif kind == "states":
            run = services.states_refresh(max_requests=options["max_requests"], progress=progress)
        else:
            run = services.balances_refresh(max_requests=options["max_requests"], progress=progress)
        progress.finish(run)
        return run

    def _report_due(self, kind: str) -> None:
        due = customers_due(kind=SyncRun.Kind(kind)).count()
        self.stdout.write(f"{kind}: {due:,} due; {self._pace(due, kind)}")

    def _announce(self, kind: str, options: dict[str, Any]) -> None:
        """Before long work, what it costs in requests and time within the budget."""
        if kind in ("states", "balances"):
            due = customers_due(kind=SyncRun.Kind(kind)).count()
            if options["max_requests"] is not None:
                due = min(due, options["max_requests"])
            self.stdout.write(f"{kind}: {due:,} to refresh; {self._pace(due, kind)}")
        elif kind == "customers":
            mirrored = Customer.objects.count()
            if mirrored:
                pages = -(-mirrored // polar_settings().PAGE_SIZE)
                self.stdout.write(
                    f"customers: about {pages:,} pages ({mirrored:,} in the mirror); "
                    + self._pace(pages, kind)
                )

    def _pace(self, requests: int, kind: str) -> str:
        rate = polar_settings().rate_limit
        where = "no budget" if rate is None else f"{rate} requests/min"
        return f"{where}: {budget_duration(requests=requests)} for the {kind}"

    def _summary(self, runs: list[SyncRun]) -> None:
        if not runs:
            return
        header = (*COLUMNS, "requests", "seconds")
        rows = [
            (*(str(getattr(r, c)) for c in COLUMNS), str(r.requests), f"{r.duration or 0:.1f}")
            for r in runs
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
        self.stdout.write("")
        self.stdout.write(line)
        self.stdout.write("  ".join("-" * w for w in widths))
        for row in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        served = sorted({r.api_version for r in runs if r.api_version})
        wanted = polar_settings().API_VERSION or "none (a server of the 2025-10 era)"
        self.stdout.write(f"API version served: {', '.join(served) or '-'} (API_VERSION: {wanted})")
        for run in runs:
            if run.resumed_display:
                self.stdout.write(f"{run.kind}: {run.resumed_display} (a failed run left it)")
            if (run.failed or run.kind == SyncRun.Kind.MEMBERS) and run.error:
                self.stdout.write(self.style.WARNING(f"{run.kind}: {run.error}"))
            if run.kind == SyncRun.Kind.CATALOG:
                self._catalog_summary(run)

    def _catalog_summary(self, run: SyncRun) -> None:
        products = Product.objects.filter(is_archived=False).count()
        benefits = Benefit.objects.filter(is_deleted=False).count()
        self.stdout.write(f"catalog: {products} products, {benefits} benefits in the mirror")
        if run.error and not run.failed:
            self.stdout.write(self.style.WARNING(f"catalog: {run.error}"))
