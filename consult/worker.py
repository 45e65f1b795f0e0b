"""What a Celery worker process does besides running tasks: its torch threads and the model's warm-up before it
reports ready, and the message sweeper (consult.delivery) while it runs. Loaded by workers only
(settings.CELERY_IMPORTS), never by the web server."""
from __future__ import annotations

import logging
import time

import torch
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from django.conf import settings

from consult import delivery, extraction

logger = logging.getLogger(__name__)


def torch_threads_set(threads: int) -> None:
    """Give this process's torch `threads` intra-op threads.

    Done here rather than through OMP_NUM_THREADS in whatever starts the worker, so that every worker gets
    it however it is started. One short message gains little from a second thread, and threads that share
    busy cores with the web server or another worker spin and wait for each other: on a loaded 2-core
    machine one extraction took 0.2 s with 1 thread and 2.5-6.7 s with 2. Scale with worker processes.
    """
    torch.set_num_threads(threads)
    logger.info("torch uses %d thread(s) in this worker process", torch.get_num_threads())


def extractor_warm_up(*, context: bool) -> None:
    """Load the model, and with `context` the clinical-context vocabularies, before the first message.

    Both would otherwise load on first use, and a patient would wait for them: the vocabularies alone take
    8-26 s on a busy 2-core machine. A failure is logged, not fatal: the task loads again on its first
    message and reports a clear error if that fails too.
    """
    try:
        extractor = extraction.extractor_get()
    except Exception:
        logger.exception("Could not load the NER model at worker start; will retry on first message")
        return
    pipeline = getattr(extractor, "context", None)
    if not context or pipeline is None:
        return
    started = time.perf_counter()
    try:
        pipeline.warm()
    except Exception:
        logger.exception("Could not load the clinical-context vocabularies at worker start; they load on first use")
        return
    logger.info("Clinical-context vocabularies loaded in %.1f s", time.perf_counter() - started)


@worker_process_init.connect
def worker_process_prepare(**kwargs) -> None:
    # Runs in each process that executes tasks (the solo pool's only process), before the worker reports ready.
    torch_threads_set(settings.NER_TORCH_THREADS)
    extractor_warm_up(context=settings.NER_WARM_CONTEXT)


@worker_ready.connect
def sweeper_start(**kwargs) -> None:
    # Every worker sweeps (no single beat process to lose): at start-up, which re-queues what a crashed
    # predecessor or a Redis restart left behind, and then periodically.
    delivery.sweeper_start()


@worker_shutdown.connect
def sweeper_stop(**kwargs) -> None:
    delivery.sweeper_stop()
