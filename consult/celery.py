"""Celery app `consult.celery:app`; configured from Django settings (CELERY_* names)."""
import logging
import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")

app = Celery("consult")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["consult"])

logger = logging.getLogger(__name__)


@worker_process_init.connect
def extractor_warm_up(**kwargs) -> None:
    # Load the model when the worker process starts rather than on the patient's first message.
    # A failure here is logged, not fatal: the task retries the load and reports a clear error.
    from consult import extraction

    try:
        extraction.extractor_get()
    except Exception:
        logger.exception("Could not load the NER model at worker start; will retry on first message")


@worker_ready.connect
def sweeper_start(**kwargs) -> None:
    # Every worker sweeps (no single beat process to lose): at start-up, which re-queues what a crashed
    # predecessor or a Redis restart left behind, and then periodically.
    from consult import reliability

    reliability.sweeper_start()


@worker_shutdown.connect
def sweeper_stop(**kwargs) -> None:
    from consult import reliability

    reliability.sweeper_stop()
