"""django-celery-beat: ``polar_beat_install`` writes BEAT_SCHEDULE as its periodic tasks,
idempotently; beat's DatabaseScheduler then reads every entry."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from celery.schedules import crontab
from django.core.management import call_command
from django.core.management.base import CommandError

from polar_sync.schedule import BEAT_SCHEDULE

beat = pytest.importorskip(
    "django_celery_beat.models",
    reason="django-celery-beat is not installed (pip install 'polar-sync[beat]')",
)
pytestmark = pytest.mark.django_db


def install(*args: str) -> str:
    out = StringIO()
    call_command("polar_beat_install", *args, stdout=out)
    return out.getvalue()


def test_the_schedule_is_installed_once_and_again_changes_nothing():
    assert f"{len(BEAT_SCHEDULE)} created" in install()
    tasks = {t.name: t for t in beat.PeriodicTask.objects.all()}
    assert set(tasks) == set(BEAT_SCHEDULE)
    for name, entry in BEAT_SCHEDULE.items():
        assert tasks[name].task == entry["task"]
        assert tasks[name].interval.every == entry["schedule"]
        assert tasks[name].interval.period == beat.IntervalSchedule.SECONDS
        assert tasks[name].enabled

    assert install() == f"{len(BEAT_SCHEDULE)} unchanged: {', '.join(BEAT_SCHEDULE)}\n"
    assert beat.PeriodicTask.objects.count() == len(BEAT_SCHEDULE)
    assert beat.IntervalSchedule.objects.count() == len(
        {e["schedule"] for e in BEAT_SCHEDULE.values()}
    )


def test_a_changed_interval_is_updated_and_a_paused_task_stays_paused(settings):
    install()
    beat.PeriodicTask.objects.filter(name="polar-reconcile-users").update(enabled=False)
    settings.CELERY_BEAT_SCHEDULE = {
        **BEAT_SCHEDULE,
        "polar-refresh-states": {"task": "polar_sync.refresh_states", "schedule": 120},
        "polar-reconcile-users": {
            "task": "polar_sync.reconcile_users",
            "schedule": crontab(minute=0, hour=3),
        },
        "polar-pull-customers": {
            "task": "polar_sync.pull_customers",
            "schedule": timedelta(minutes=15),
        },
        "someone-elses": {"task": "project.other", "schedule": 10},
    }
    assert "2 would be updated" in install("--from-settings", "--dry-run")
    assert beat.PeriodicTask.objects.get(name="polar-refresh-states").interval.every == 300

    out = install("--from-settings")
    assert "2 updated: polar-refresh-states, polar-reconcile-users" in out
    states = beat.PeriodicTask.objects.get(name="polar-refresh-states")
    assert states.interval.every == 120
    reconcile = beat.PeriodicTask.objects.get(name="polar-reconcile-users")
    assert (reconcile.crontab.minute, reconcile.crontab.hour) == ("0", "3")
    assert reconcile.interval is None
    assert not reconcile.enabled  # the operator's pause is kept
    assert not beat.PeriodicTask.objects.filter(name="someone-elses").exists()


def test_beats_database_scheduler_reads_every_entry():
    from celery import current_app
    from django_celery_beat.schedulers import DatabaseScheduler

    install()
    scheduler = DatabaseScheduler(app=current_app, lazy=True)
    entries = scheduler.all_as_schedule()
    assert {n for n, e in entries.items() if e.task.startswith("polar_sync.")} == set(BEAT_SCHEDULE)


def test_without_the_app_installed_the_command_says_what_to_do(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "django_celery_beat"]
    with pytest.raises(CommandError, match=r"polar-sync\[beat\]"):
        install()
