"""The demo project's Celery app, configured from Django settings (``CELERY_*``).

Settings route polar_sync's tasks to three queues (``polar_sync.schedule.TASK_ROUTES``),
so give the workers those queues (a worker started without ``-Q`` reads only ``celery``)::

    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 celery -A project worker \\
        -Q polar_sync.push,polar_sync.webhooks --hostname fast@%h --loglevel=INFO
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 celery -A project worker \\
        -Q polar_sync.sync,celery --hostname sync@%h --loglevel=INFO
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 celery -A project beat --loglevel=INFO
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
