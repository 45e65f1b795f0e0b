"""Delivery of patient messages to the workers: publishing a message's task, the leases that tell which
messages a queue or a worker holds, and re-queueing those that none holds.

No patient message is lost: the database says what still needs processing, Redis only carries it.
A message row is committed as `queued` before its task is published (services.messages.message_create). Everything
after that can fail: the publish (Redis down), Redis itself (restarted without its data), or the worker
holding the task (SIGKILL, OOM, a host that vanishes). Each case leaves a `queued` or `processing` row
that no queue will ever deliver again, so every worker runs a sweeper that re-publishes such rows.

Which rows are orphaned is told by a lease per message, a Redis key beside the broker's queue:
- set for MESSAGE_QUEUE_LEASE_S when the task is published (it waits in Redis),
- renewed for MESSAGE_LEASE_S when a worker starts on it (and for the countdown of a retry),
- deleted once the message is processed or failed.
A row still queued/processing whose lease is gone has lost its task: the publish failed, Redis lost its
data (the leases went with it), or the worker died and its lease ran out. The sweeper claims the lease
with SET NX before re-publishing, so that several workers sweeping at once publish once.

Re-publishing is safe because processing is idempotent (services.messages.message_process): a redelivered copy
of a processed message is a no-op, and a second concurrent run finds the message processed under the
consultation's row lock and writes nothing.
"""
from __future__ import annotations

import datetime
import functools
import logging
import threading

import redis
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Count
from django.utils import timezone

from config.celery_app import app
from consult.models import Entity, Message, TriageEvent

logger = logging.getLogger(__name__)

LEASE_KEY = "consult:message-lease:{message_id}"
# The task that processes a message (consult.tasks.message_process), published by name: the task imports
# this module for its leases, so this module does not import the task.
MESSAGE_PROCESS_TASK = "consult.tasks.message_process"
# Rows younger than this are left alone: their publish is still in flight on the web server.
SWEEP_GRACE_S = 2.0
UNFINISHED = (Message.Status.QUEUED, Message.Status.PROCESSING)


@functools.lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=3)


def _lease_redis() -> redis.Redis:
    # The broker's own Redis: a lease is meaningful exactly as long as the queue it describes survives.
    return _redis_client(app.conf.broker_url)


def message_lease_set(*, message_id: int, seconds: float, only_if_free: bool = False) -> bool:
    """Hold message `message_id` for `seconds`; with `only_if_free`, only when nobody holds it.
    False when not taken (held by another, or Redis unreachable: then the sweeper retries later)."""
    try:
        taken = _lease_redis().set(
            LEASE_KEY.format(message_id=message_id), "1", ex=max(1, round(seconds)), nx=only_if_free
        )
    except redis.RedisError as exc:
        logger.warning("Could not set the lease of message %s: %r", message_id, exc)
        return False
    return bool(taken)


def message_lease_release(*, message_id: int) -> None:
    try:
        _lease_redis().delete(LEASE_KEY.format(message_id=message_id))
    except redis.RedisError as exc:
        # Harmless: the lease expires and the sweeper then sees a finished message.
        logger.warning("Could not release the lease of message %s: %r", message_id, exc)


def message_publish(*, message_id: int) -> None:
    app.send_task(MESSAGE_PROCESS_TASK, args=[message_id], queue=settings.NER_QUEUE)


def message_enqueue(*, message_id: int) -> None:
    """Publish the message's task under a queue lease, so that the sweeper leaves it to the queue.
    The lease comes first so that a worker's own lease, taken once it starts, is never overwritten."""
    leased = message_lease_set(message_id=message_id, seconds=settings.MESSAGE_QUEUE_LEASE_S)
    try:
        message_publish(message_id=message_id)
    except Exception:
        # Without a lease the sweeper re-queues it once Redis answers again; the row stays queued.
        if leased:
            message_lease_release(message_id=message_id)
        raise


def messages_requeue_orphaned(*, grace_s: float = SWEEP_GRACE_S) -> list[int]:
    """Re-publish every unfinished patient message that no queue or worker holds; returns their ids."""
    cutoff = timezone.now() - datetime.timedelta(seconds=grace_s)
    candidates = list(
        Message.objects.filter(role=Message.Role.PATIENT, status__in=UNFINISHED, created_at__lte=cutoff)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    if not candidates:
        return []
    client = _lease_redis()
    keys = [LEASE_KEY.format(message_id=message_id) for message_id in candidates]
    held = client.mget(keys)
    requeued = []
    for message_id, lease in zip(candidates, held):
        if lease is not None:
            continue
        if not message_lease_set(message_id=message_id, seconds=settings.MESSAGE_QUEUE_LEASE_S, only_if_free=True):
            continue  # another worker's sweep got there first
        try:
            message_publish(message_id=message_id)
        except Exception:
            message_lease_release(message_id=message_id)
            raise
        requeued.append(message_id)
    if requeued:
        logger.warning("Re-queued %d message(s) that no queue held: %s", len(requeued), requeued[:50])
    return requeued


def messages_requeue_failed(*, since: datetime.datetime | None = None) -> list[int]:
    """Put failed patient messages back in the queue (after an outage is fixed); returns their ids."""
    failed = Message.objects.filter(role=Message.Role.PATIENT, status=Message.Status.FAILED)
    if since is not None:
        failed = failed.filter(created_at__gte=since)
    ids = list(failed.order_by("created_at", "id").values_list("id", flat=True))
    for message_id in ids:
        updated = Message.objects.filter(pk=message_id, status=Message.Status.FAILED).update(
            status=Message.Status.QUEUED, error=""
        )
        if updated:
            message_lease_set(message_id=message_id, seconds=settings.MESSAGE_QUEUE_LEASE_S)
            message_publish(message_id=message_id)
    return ids


class Sweeper(threading.Thread):
    """Runs messages_requeue_orphaned at start and then every MESSAGE_SWEEP_INTERVAL_S, in the worker."""

    def __init__(self, *, interval_s: float) -> None:
        super().__init__(name="message-sweeper", daemon=True)
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                close_old_connections()
                messages_requeue_orphaned()
            except Exception as exc:
                # Redis or the database may be down right now: the next round tries again.
                logger.warning("Message sweep failed: %r", exc)
            finally:
                close_old_connections()
            self.stopped.wait(self.interval_s)

    def stop(self) -> None:
        self.stopped.set()


_sweeper: Sweeper | None = None


def sweeper_start() -> Sweeper | None:
    """Start this process's sweeper once; MESSAGE_SWEEP_INTERVAL_S <= 0 turns it off."""
    global _sweeper
    if settings.MESSAGE_SWEEP_INTERVAL_S <= 0:
        return None
    if _sweeper is None or not _sweeper.is_alive():
        _sweeper = Sweeper(interval_s=settings.MESSAGE_SWEEP_INTERVAL_S)
        _sweeper.start()
    return _sweeper


def sweeper_stop() -> None:
    if _sweeper is not None:
        _sweeper.stop()


def messages_delivery_audit(*, message_ids: list[int]) -> dict[str, object]:
    """What became of these patient messages: stored, processed, failed or unfinished, and anything written
    twice (entities at the same offsets, triage events of one rule, replies). Used by bench/load.py."""
    ids = set(message_ids)
    stored = dict(Message.objects.filter(pk__in=ids).values_list("id", "status"))
    by_status: dict[str, int] = {}
    for status in stored.values():
        by_status[status] = by_status.get(status, 0) + 1
    replies = dict(
        Message.objects.filter(reply_to_id__in=ids).values("reply_to_id").annotate(n=Count("id")).values_list("reply_to_id", "n")
    )
    processed = [i for i, status in stored.items() if status == Message.Status.PROCESSED]
    duplicate_entities = (
        Entity.objects.filter(message_id__in=ids).values("message_id", "type", "start", "end")
        .annotate(n=Count("id")).filter(n__gt=1).count()
    )
    duplicate_events = (
        TriageEvent.objects.filter(message_id__in=ids).values("message_id", "rule_id")
        .annotate(n=Count("id")).filter(n__gt=1).count()
    )
    return {
        "sent": len(ids),
        "stored": len(stored),
        "lost": sorted(ids - set(stored)),
        "by_status": by_status,
        "processed_without_reply": sum(1 for i in processed if replies.get(i, 0) == 0),
        "extra_replies": sum(n - 1 for n in replies.values() if n > 1),
        "duplicate_entities": duplicate_entities,
        "duplicate_triage_events": duplicate_events,
        "entities": Entity.objects.filter(message_id__in=ids).count(),
    }
