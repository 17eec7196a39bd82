"""``manage.py polar_sync`` and the demo main job."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from polar_sync.models import Customer, CustomerBalance, CustomerState, SyncRun

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def run_command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("polar_sync", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_all_pulls_customers_states_and_balances_and_prints_a_summary(live_polar_2025):
    live_polar_2025.store.seed(150, seed=9)
    out, err = run_command("--all")
    assert Customer.objects.count() == 150
    assert CustomerState.objects.count() == 150 == CustomerBalance.objects.count()
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("kind"))
    rows = [line.split() for line in lines[header + 2 : header + 5]]
    assert [r[:3] for r in rows] == [
        ["customers", "succeeded", "2"],
        ["states", "succeeded", "0"],
        ["balances", "succeeded", "0"],
    ]
    assert rows[0][3] == "150"  # created
    assert "customers:" in err and "150/150" in err  # the progress line, with the total
    assert "API version served: 2025-10 (API_VERSION: none (a server of the 2025-10 era))" in out


def test_all_at_a_2026_version_says_why_balances_are_not_refreshed(live_polar):
    live_polar.store.seed(30, seed=9)
    out, _ = run_command("--all")
    assert CustomerState.objects.count() == 30 and CustomerBalance.objects.count() == 0
    assert "balances: not refreshed: API version 2026-04 has no /balance" in out
    assert "API version served: 2026-04 (API_VERSION: 2026-04)" in out
    kinds = [r.kind for r in SyncRun.objects.order_by("started_at")]
    assert kinds == ["customers", "states", "catalog", "members"]
    assert not [r for r in live_polar.store.requests if r.path.endswith("/balance")]
    out, _ = run_command("--balances", "--dry-run")
    assert "balances: not refreshed" in out


def test_default_is_customers_only(live_polar):
    live_polar.store.seed(10)
    run_command()
    assert Customer.objects.count() == 10 and CustomerState.objects.count() == 0


def test_dry_run_writes_nothing_and_reports_what_is_due(live_polar):
    live_polar.store.seed(20)
    out, _ = run_command("--all", "--dry-run")
    assert Customer.objects.count() == 0
    assert "states: 0 due" in out  # nothing mirrored yet, so nothing due


def test_failure_is_a_clear_error_and_a_nonzero_exit(live_polar):
    live_polar.store.seed(10)
    live_polar.faults.fail_rate = 1.0
    with pytest.raises(CommandError, match="customers sync failed") as info:
        run_command("--all")
    assert "run again" in str(info.value)
    assert SyncRun.objects.get().status == "failed"
    assert CustomerState.objects.count() == 0  # states were not attempted after the failure


def test_missing_token_is_a_clear_error(settings):
    settings.POLAR_SYNC = {"SERVER": "sandbox"}
    with pytest.raises(CommandError, match="ACCESS_TOKEN"):
        run_command()


@pytest.mark.slow
def test_the_demo_main_job_runs_end_to_end(tmp_path):
    """scripts/demo's work, in a fresh SQLite file: migrate, then project.demo."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    env.pop("POLAR_ACCESS_TOKEN", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0", "--skip-checks"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    result = subprocess.run(
        [sys.executable, "-m", "project.demo", "--customers", "120"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Local Polar server at http://127.0.0.1:" in result.stdout
    assert "customers  succeeded" in result.stdout
    assert "balances: not refreshed: API version 2026-04 has no /balance" in result.stdout
    assert "API version served: 2026-04" in result.stdout
    assert "/admin/" in result.stdout and "demo" in result.stdout
    counts = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup();"
            "from polar_sync.models import Customer, CustomerState;"
            "print(Customer.objects.count(), CustomerState.objects.count(),"
            " Customer.objects.filter(email='demo@example.com', user__username='demo').count())",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # The 120 seeded customers; the demo superuser is staff: not pushed (PUSH_STAFF False).
    assert counts.stdout.split() == ["120", "120", "0"]


def test_a_configuration_error_leaves_no_run_holding_the_lock(settings):
    settings.POLAR_SYNC = {"SERVER": "sandbox"}
    with pytest.raises(CommandError):
        run_command("--all")
    assert not SyncRun.objects.filter(status="running").exists()
