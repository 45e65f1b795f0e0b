"""Faults against real processes; after each, every message is processed exactly once into the record.

See conftest.py for the system: its own Redis (no persistence: a restart loses the queue), Daphne,
Celery workers with the real model, the sweeper every second and 5 s leases.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tools.launcher import ROOT, manage_command

from .conftest import PATIENT_TEXTS, FaultSystem

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]


def send_burst(system: FaultSystem, *, patients: int, messages: int) -> list[int]:
    ids = []
    for _ in range(patients):
        consultation_id, token = system.consultation_start()
        for number in range(messages):
            ids.append(system.message_send(consultation_id, token, PATIENT_TEXTS[number % len(PATIENT_TEXTS)]))
    return ids


def wait_for_status(system: FaultSystem, ids: list[int], status: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message_id, current in system.statuses(ids).items():
            if current == status:
                return message_id
        time.sleep(0.02)
    raise AssertionError(f"no message reached {status!r} within {timeout} s: {system.statuses(ids)}")


def test_worker_killed_mid_message_then_restarted(faults):
    ids = send_burst(faults, patients=3, messages=2)
    in_flight = wait_for_status(faults, ids, "processing")
    faults.worker_kill("w1")
    statuses = faults.statuses(ids)
    # The kill came before the commit: the message is still someone's job, not lost and not done.
    assert statuses[in_flight] in {"processing", "processed"}
    assert any(s != "processed" for s in statuses.values()), "the burst finished before the kill"

    worker = faults.worker_start("w1")
    faults.wait_finished(ids)
    faults.assert_processed_exactly_once(ids)
    # Its lease ran out with the dead worker, and the new worker's sweeper put it back in the queue.
    assert requeued_by_sweeper(worker, in_flight), worker.log.read_text(errors="replace")[-3000:]


def requeued_by_sweeper(worker, message_id: int) -> bool:
    import re

    for line in worker.log.read_text(errors="replace").splitlines():
        if "Re-queued" in line and re.search(rf"[\[ ]{message_id}[,\]]", line):
            return True
    return False


def test_redis_stopped_and_restarted(faults):
    # Some messages are queued in Redis when it stops (the worker is away): Redis loses them with its data.
    faults.worker_stop("w1")
    before = send_burst(faults, patients=2, messages=2)
    faults.redis_stop()
    # While Redis is down the web server still takes messages: stored as queued, the publish fails.
    during = send_burst(faults, patients=2, messages=1)
    assert set(faults.statuses(before + during).values()) == {"queued"}

    faults.redis_start()
    worker = faults.worker_start("w1")
    faults.wait_finished(before + during)
    faults.assert_processed_exactly_once(before + during)
    assert all(requeued_by_sweeper(worker, message_id) for message_id in before + during)


def test_redis_restarted_under_a_running_worker(faults):
    ids = send_burst(faults, patients=2, messages=2)
    faults.redis_stop()
    # These cannot have been processed: their tasks never reached any queue.
    ids += send_burst(faults, patients=1, messages=2)
    time.sleep(1)
    faults.redis_start()
    # The same worker reconnects by itself; the sweeper puts back whatever the restart dropped.
    faults.wait_finished(ids)
    faults.assert_processed_exactly_once(ids)
    assert faults.workers["w1"].process.poll() is None


def test_database_locked_for_a_few_seconds(faults):
    consultation_id, token = faults.consultation_start()
    ids = [faults.message_send(consultation_id, token, PATIENT_TEXTS[0])]
    sent_during_lock: list[int] = []
    errors: list[BaseException] = []
    # Each writer has a consultation of its own: in one consultation, triage may close it (all slots
    # answered) between two of the writes, which is not what this test is about.
    others = [faults.consultation_start() for _ in range(3)]

    def send(other_id, other_token) -> None:
        try:
            sent_during_lock.append(faults.message_send(other_id, other_token, PATIENT_TEXTS[2]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    with faults.database_locked():
        senders = [threading.Thread(target=send, args=other) for other in others]
        for sender in senders:
            sender.start()
        time.sleep(4)
    for sender in senders:
        sender.join(timeout=60)
    # Writers waited for the lock (SQLite's busy timeout, PostgreSQL's lock queue) instead of failing.
    assert errors == []
    ids += sent_during_lock
    assert len(ids) == 4
    faults.wait_finished(ids)
    faults.assert_processed_exactly_once(ids)


def test_model_that_fails_to_load(faults, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not a model")
    faults.worker_stop("w1")
    worker = faults.worker_start("broken", NER_MODEL=str(broken))

    consultation_id, token = faults.consultation_start()
    message_id = faults.message_send(consultation_id, token, PATIENT_TEXTS[0])
    faults.wait_finished([message_id], timeout=60)

    [(status, error, text)] = faults.query(f"SELECT status, error, text FROM consult_message WHERE id = {message_id}")
    assert status == "failed"
    assert "language model is not available" in error
    assert text == PATIENT_TEXTS[0], "the patient's message is kept"
    log = worker.log.read_text(errors="replace")
    assert f"The NER model '{broken}' could not be loaded" in log
    status, state = faults.api("GET", f"/api/consultations/{consultation_id}/", token=token)
    [shown] = [m for m in state["messages"] if m["id"] == message_id]
    assert shown["status"] == "failed" and "language model is not available" in shown["error"]

    # Once the model is fixed, the failed messages go through again, once.
    faults.worker_stop("broken")
    faults.worker_start("w1")
    subprocess_run_requeue(faults)
    faults.wait_finished([message_id], finished=("processed",))
    faults.assert_processed_exactly_once([message_id])


def subprocess_run_requeue(system: FaultSystem) -> None:
    import subprocess

    result = subprocess.run(manage_command("requeue_messages", "--failed"), env=system.env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "re-queued 1 failed message(s)" in result.stdout, result.stdout


def test_two_workers_share_a_burst_and_redeliveries_are_harmless(faults):
    faults.worker_start("w2")
    from celery import Celery

    ids = send_burst(faults, patients=6, messages=2)
    # Every task published a second time, as a broker redelivery would: both workers may run the same
    # message at once, and the record must still hold it once.
    publisher = Celery(broker=faults.redis_url)
    try:
        for message_id in ids:
            publisher.send_task("consult.tasks.message_process", args=[message_id], queue="ner")
    finally:
        publisher.close()
    faults.wait_finished(ids)
    faults.assert_processed_exactly_once(ids)
    worked = [name for name in ("w1", "w2")
              if "consult.tasks.message_process" in Path(faults.workers[name].log).read_text(errors="replace")]
    assert worked == ["w1", "w2"], "both workers took messages from the queue"
