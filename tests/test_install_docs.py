"""docs/install.md is the recipe scripts/check-install runs: its blocks are what the
issue asked for (the full run is scripts/check-install, in CI)."""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

from polar_sync import tasks
from polar_sync.schedule import BEAT_SCHEDULE, TASK_ROUTES

ROOT = Path(__file__).resolve().parent.parent


def load_snippets() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location(
        "docs_snippets", ROOT / "scripts/docs_snippets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.snippets((ROOT / "docs/install.md").read_text(encoding="utf-8"))


def test_the_page_has_every_block_check_install_takes():
    assert set(load_snippets()) >= {
        "Install",
        "mysite/settings.py (at the end)",
        "mysite/urls.py",
        "mysite/celery.py",
        "mysite/__init__.py",
        "Create the tables and check",
        "Run a worker and beat",
    }


def test_the_settings_read_the_environment_without_failing_and_import_what_they_use():
    blocks = load_snippets()
    settings = blocks["mysite/settings.py (at the end)"]
    ast.parse(settings)
    assert "import os\n" in settings and 'os.environ["' not in settings
    assert 'os.environ.get("POLAR_ACCESS_TOKEN", "")' in settings
    assert 'os.environ.get("POLAR_SERVER", "production")' in settings
    assert "from polar_sync.schedule import BEAT_SCHEDULE, TASK_ROUTES" in settings
    urls = blocks["mysite/urls.py"]
    assert "from django.urls import include, path" in urls
    assert blocks["Install"].strip() == 'pip install "polar-sync[redis]"'


def test_the_schedule_runs_every_periodic_task_and_routes_each_task():
    periodic = {entry["task"] for entry in BEAT_SCHEDULE.values()}
    assert {"polar_sync.drain_outbox", "polar_sync.reconcile_users"} <= periodic
    assert len(periodic) == 8
    names = {task.name for task in vars(tasks).values() if hasattr(task, "delay")}
    assert periodic <= names and set(TASK_ROUTES) == names


def test_the_redis_extra_brings_celerys_redis_transport():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("celery[redis]") for r in project["optional-dependencies"]["redis"])
