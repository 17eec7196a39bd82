"""The beat schedule as django-celery-beat's periodic tasks (``manage.py polar_beat_install``).

django-celery-beat keeps the schedule in the database (``PeriodicTask`` rows, edited in
the admin) and its ``DatabaseScheduler`` reads them. Installing writes one row per
entry, keyed by the entry's name: running it again changes only what differs, and
never touches a row's ``enabled`` flag (an operator may have paused a task). No queue
is written on the rows: ``CELERY_TASK_ROUTES`` routes the tasks when beat sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import transaction

from ..exceptions import PolarConfigurationError


@dataclass
class BeatInstallResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def beat_available() -> bool:
    return apps.is_installed("django_celery_beat")


def beat_schedule_install(
    *, schedule: dict[str, dict[str, Any]], dry_run: bool = False
) -> BeatInstallResult:
    """Create or update a ``PeriodicTask`` per entry of ``schedule`` (a
    ``CELERY_BEAT_SCHEDULE``-shaped dict: a number of seconds, a timedelta or a crontab)."""
    if not beat_available():
        raise PolarConfigurationError(
            "django-celery-beat is not installed: pip install 'polar-sync[beat]' and add "
            '"django_celery_beat" to INSTALLED_APPS, then run manage.py migrate'
        )
    from django_celery_beat.models import PeriodicTask

    result = BeatInstallResult()
    with transaction.atomic():
        for name, entry in schedule.items():
            wanted = {"task": entry["task"], **_schedule_fields(entry["schedule"])}
            task = PeriodicTask.objects.select_for_update().filter(name=name).first()
            if task is None:
                result.created.append(name)
                if not dry_run:
                    PeriodicTask.objects.create(name=name, **wanted)
                continue
            changed = {k: v for k, v in wanted.items() if getattr(task, k) != v}
            if not changed:
                result.unchanged.append(name)
                continue
            result.updated.append(name)
            if not dry_run:
                for key, value in changed.items():
                    setattr(task, key, value)
                task.save()
    return result


def _schedule_fields(schedule: Any) -> dict[str, Any]:
    """The row's schedule: an interval (seconds) or a crontab, the other cleared."""
    from celery.schedules import crontab
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule

    if isinstance(schedule, crontab):
        cron = CrontabSchedule.from_schedule(schedule)
        cron, _ = CrontabSchedule.objects.get_or_create(
            minute=cron.minute,
            hour=cron.hour,
            day_of_week=cron.day_of_week,
            day_of_month=cron.day_of_month,
            month_of_year=cron.month_of_year,
            timezone=cron.timezone,
        )
        return {"crontab": cron, "interval": None}
    seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else float(schedule)
    if seconds < 1 or seconds != int(seconds):
        raise PolarConfigurationError(
            f"a beat interval must be a whole number of seconds, at least 1, not {schedule!r}"
        )
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=int(seconds), period=IntervalSchedule.SECONDS
    )
    return {"interval": interval, "crontab": None}
