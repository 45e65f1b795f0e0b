"""What a worker does before it reports ready (consult/worker.py), read from real workers' logs: it sets its
torch threads (NER_TORCH_THREADS) and, unless NER_WARM_CONTEXT is off, loads the clinical-context
vocabularies, so that a patient's first message does not wait for them.

The fault system's workers run with NER_WARM_CONTEXT=0 (see conftest.py); the default is on.
"""
from __future__ import annotations

import pytest

from .conftest import FaultSystem

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

TORCH_THREADS = "torch uses {} thread(s) in this worker process"
VOCABULARIES_LOADED = "Clinical-context vocabularies loaded in"
READY = " ready."


def latest_start(system: FaultSystem, name: str) -> list[str]:
    """The log lines of worker `name`'s latest start, up to the line that says it is ready."""
    worker = system.workers[name]
    with open(worker.log, errors="replace") as log:
        log.seek(worker.log_offset)
        lines = log.read().splitlines()
    return lines[:next(i for i, line in enumerate(lines) if READY in line) + 1]


def test_worker_with_default_threads_and_no_warm_context(faults):
    lines = latest_start(faults, "w1")
    assert any(TORCH_THREADS.format(1) in line for line in lines), lines
    assert not any(VOCABULARIES_LOADED in line for line in lines), lines


def test_worker_sets_its_torch_threads_and_loads_the_vocabularies_before_it_is_ready(faults):
    faults.worker_start("w2", NER_TORCH_THREADS="2", NER_WARM_CONTEXT="1")
    lines = latest_start(faults, "w2")
    assert any(TORCH_THREADS.format(2) in line for line in lines), lines
    assert any(VOCABULARIES_LOADED in line for line in lines), lines
