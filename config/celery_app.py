"""Celery app `config.celery_app:app`; configured from Django settings (CELERY_* names). Configuration only:
the tasks are consult/tasks.py, and what a worker process does at start and stop (torch threads, the model's
warm-up, the message sweeper) is consult/worker.py, which settings.CELERY_IMPORTS loads in workers alone."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("consult")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["consult"])
