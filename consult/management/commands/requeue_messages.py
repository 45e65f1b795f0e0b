"""Re-queue patient messages by hand: those no queue holds (what each worker's sweeper does every
MESSAGE_SWEEP_INTERVAL_S), and with --failed those that failed, e.g. once a broken model is fixed."""
from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from consult import delivery


class Command(BaseCommand):
    help = "Re-queue unfinished patient messages that no queue holds; --failed also re-queues failed ones."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--failed", action="store_true", help="also re-queue messages marked failed")
        parser.add_argument("--since-hours", type=float, default=None,
                            help="with --failed: only messages sent in the last N hours")

    def handle(self, *args, failed: bool, since_hours: float | None, **options) -> None:
        if since_hours is not None and not failed:
            raise CommandError("--since-hours goes with --failed")
        requeued = delivery.messages_requeue_orphaned()
        self.stdout.write(f"re-queued {len(requeued)} message(s) that no queue held")
        if failed:
            since = timezone.now() - datetime.timedelta(hours=since_hours) if since_hours is not None else None
            ids = delivery.messages_requeue_failed(since=since)
            self.stdout.write(f"re-queued {len(ids)} failed message(s)")
