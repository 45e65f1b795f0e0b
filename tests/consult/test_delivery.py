"""No message lost, none processed twice: queueing, leases, the sweeper, retries and concurrent runs.

The extractor is replaced by a fixed fake here (these tests are about delivery, not the model); the
real-process versions of the same faults are in tests/reliability/.
"""
from __future__ import annotations

import threading

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery_app import app
from consult import delivery, extraction
from consult.models import Entity, Message, RecordItem, TriageEvent
from consult.tasks import message_process as message_process_task
from consult.services.messages import message_create, message_process

TEXT = "I have a headache and a fever"


def fake_result(text: str = TEXT) -> extraction.ExtractionResult:
    entities = []
    for phrase in ("headache", "fever"):
        start = text.find(phrase)
        if start >= 0:
            entities.append({"start": start, "end": start + len(phrase), "type": "SYMPTOM", "text": phrase,
                             "score": 0.9, "attributes": {}})
    return extraction.ExtractionResult(entities=entities, model_version="fake-1", template_version="builtin")


@pytest.fixture
def fake_extractor(monkeypatch):
    calls = []

    def extract(*, text):
        calls.append(text)
        return fake_result(text)

    monkeypatch.setattr(extraction, "entities_extract", extract)
    return calls


@pytest.fixture
def broker(celery_broker_for_tests, test_redis_url):
    """The test Redis with an empty `ner` queue and no leases; yields a client."""
    client = redis.Redis.from_url(test_redis_url)

    def clean() -> None:
        client.delete("ner")
        for key in client.scan_iter("consult:message-lease:*"):
            client.delete(key)

    clean()
    yield client
    clean()


def queue_length(client) -> int:
    return client.llen("ner")


def lease(client, message_id: int) -> bytes | None:
    return client.get(delivery.LEASE_KEY.format(message_id=message_id))


def patient_message(consultation, text: str = TEXT, status: str = Message.Status.QUEUED) -> Message:
    return Message.objects.create(consultation=consultation, role=Message.Role.PATIENT, text=text, status=status)


def assert_processed_once(message: Message) -> None:
    message.refresh_from_db()
    assert message.status == Message.Status.PROCESSED
    assert Message.objects.filter(reply_to=message).count() == 1
    keys = list(Entity.objects.filter(message=message).values_list("type", "start", "end"))
    assert len(keys) == len(set(keys)) == 2
    assert RecordItem.objects.filter(consultation=message.consultation).count() == 2
    rule_ids = list(TriageEvent.objects.filter(message=message).values_list("rule_id", flat=True))
    assert len(rule_ids) == len(set(rule_ids))


# Configuration ----------------------------------------------------------------------------------------


def test_tasks_are_acknowledged_late_and_handed_back_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert message_process_task.acks_late is True


# Queueing and leases ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_message_is_published_under_a_queue_lease(consultation, broker):
    message = message_create(consultation=consultation, text=TEXT)
    assert queue_length(broker) == 1
    assert lease(broker, message.id) is not None
    assert broker.ttl(delivery.LEASE_KEY.format(message_id=message.id)) > settings.MESSAGE_LEASE_S


@pytest.mark.django_db(transaction=True)
def test_failed_publish_keeps_the_message_and_the_sweeper_requeues_it(consultation, broker, monkeypatch):
    def broker_down(*, message_id):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(delivery, "message_publish", broker_down)
    message = message_create(consultation=consultation, text=TEXT)
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert lease(broker, message.id) is None, "no lease for a task that was never published"
    monkeypatch.undo()

    assert delivery.messages_requeue_orphaned(grace_s=0) == [message.id]
    assert queue_length(broker) == 1
    assert lease(broker, message.id) is not None
    # The next sweep sees the new lease: one copy in the queue, not one per sweep.
    assert delivery.messages_requeue_orphaned(grace_s=0) == []
    assert queue_length(broker) == 1


@pytest.mark.django_db
def test_sweeper_requeues_only_unfinished_messages_nobody_holds(consultation, broker):
    held = patient_message(consultation, status=Message.Status.PROCESSING)
    delivery.message_lease_set(message_id=held.id, seconds=60)
    orphaned_processing = patient_message(consultation, status=Message.Status.PROCESSING)
    orphaned_queued = patient_message(consultation)
    patient_message(consultation, status=Message.Status.PROCESSED)
    patient_message(consultation, status=Message.Status.FAILED)
    Message.objects.create(consultation=consultation, role=Message.Role.ASSISTANT, text="reply",
                           status=Message.Status.QUEUED)
    too_new = patient_message(consultation)

    requeued = delivery.messages_requeue_orphaned(grace_s=0)
    assert sorted(requeued) == sorted([orphaned_processing.id, orphaned_queued.id, too_new.id])
    assert queue_length(broker) == 3

    # Within the grace period a row may still be on its way to the queue: left alone.
    fresh = patient_message(consultation)
    assert fresh.id not in delivery.messages_requeue_orphaned(grace_s=60)


@pytest.mark.django_db
def test_two_sweepers_at_once_publish_once(consultation, broker):
    message = patient_message(consultation)
    results = [delivery.messages_requeue_orphaned(grace_s=0) for _ in range(2)]
    assert sorted(results, key=len) == [[], [message.id]]
    assert queue_length(broker) == 1


@pytest.mark.django_db
def test_requeue_failed_messages_after_an_outage(consultation, broker):
    failed = patient_message(consultation, status=Message.Status.FAILED)
    Message.objects.filter(pk=failed.pk).update(error="The assistant could not process this message")
    assert delivery.messages_requeue_failed() == [failed.id]
    failed.refresh_from_db()
    assert failed.status == Message.Status.QUEUED and failed.error == ""
    assert queue_length(broker) == 1


# Processing: idempotent, retried, failed with a reason ------------------------------------------------


@pytest.mark.django_db
def test_a_task_run_twice_writes_the_record_once(consultation, broker, fake_extractor):
    message = patient_message(consultation)
    message_process_task.apply(args=[message.id])
    message_process_task.apply(args=[message.id])
    assert_processed_once(message)
    assert fake_extractor == [TEXT], "a processed message is not extracted again"
    assert lease(broker, message.id) is None, "the lease is released once the message is done"


@pytest.mark.django_db
def test_a_redelivery_after_a_crash_mid_message_replaces_instead_of_adding(consultation, broker, fake_extractor):
    message = patient_message(consultation)
    message_process_task.apply(args=[message.id])
    # As if the worker had died after an earlier run wrote everything but before anyone saw it done.
    Message.objects.filter(pk=message.pk).update(status=Message.Status.PROCESSING)
    message_process_task.apply(args=[message.id])
    assert_processed_once(message)


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_of_one_message_write_it_once(consultation, broker, monkeypatch):
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(("file:memorydb", ":memory:")):
        pytest.skip("threads need a database they can share (file SQLite or PostgreSQL)")
    message = patient_message(consultation)
    both_extracting = threading.Barrier(2, timeout=30)

    def extract(*, text):
        both_extracting.wait()  # both runs are past the "already processed?" check
        return fake_result(text)

    monkeypatch.setattr(extraction, "entities_extract", extract)
    errors = []

    def run() -> None:
        try:
            message_process(message_id=message.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert_processed_once(message)


@pytest.mark.django_db
def test_retries_then_fails_with_a_visible_reason(consultation, broker, monkeypatch, caplog):
    attempts = []

    def unavailable(*, text):
        attempts.append(text)
        raise extraction.ModelUnavailable("The NER model '/nowhere' could not be loaded (FileNotFoundError)")

    monkeypatch.setattr(extraction, "entities_extract", unavailable)
    message = patient_message(consultation)
    message_process_task.apply(args=[message.id])
    message.refresh_from_db()
    assert len(attempts) == settings.MESSAGE_PROCESS_MAX_RETRIES + 1
    assert message.status == Message.Status.FAILED
    assert f"after {len(attempts)} attempts (its language model is not available)" in message.error
    assert message.text == TEXT, "the patient's words are kept"
    assert "could not be loaded" in caplog.text
    # Exponential backoff between the attempts.
    for retry in range(settings.MESSAGE_PROCESS_MAX_RETRIES):
        assert f"retrying in {2 ** retry} s" in caplog.text
    assert lease(broker, message.id) is None
