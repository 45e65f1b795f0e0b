"""What the end-to-end benches (e2e_latency.py, load.py) share: the system they start, with the launcher's own
commands, and the patient's side of the REST API and the websocket.

Import it after putting the repository root on sys.path (both benches do, before importing consult).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from tools.launcher import (
    ROOT,
    WORKER_READY,
    Supervisor,
    free_port,
    http_wait,
    log_wait,
    manage_command,
    model_missing_reason,
    redis_command,
    redis_wait,
    web_command,
    worker_command,
)

PATIENT_MESSAGES = [
    "I've had a headache and fever for two days, no medications",
    "It is moderate, about 6 out of 10, and it gets worse in the evening",
    "I also feel sick and tired, and my neck is a bit stiff",
    "I have asthma and I use a salbutamol inhaler",
    "No, nothing else. I took paracetamol this morning",
    "My throat is sore and I have a cough since Monday",
    "The pain is in my lower back and it started after lifting boxes",
    "I feel dizzy when I stand up and I have had diarrhoea",
]
WORKER_START_TIMEOUT_S = 300
# Settings that would point the started system at something other than its own database, Redis and cache.
ENV_NOT_INHERITED = frozenset({"DATABASE_URL", "DJANGO_SETTINGS_MODULE", "ALLOWED_HOSTS", "REDIS_URL", "CACHE_URL"})


# The system under test -----------------------------------------------------------------------------------


@dataclass
class LocalSystem:
    base_url: str
    database_url: str
    env: dict[str, str]
    directory: Path
    supervisor: Supervisor
    workers: list[subprocess.Popen] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def worker_launch(self, index: int) -> tuple[subprocess.Popen, Path, int]:
        """Start worker `index`: (process, its log, where this run's output starts in the log)."""
        log = self.directory / f"worker{index}.log"
        offset = log.stat().st_size if log.exists() else 0
        process = self.supervisor.start(f"worker{index}", worker_command(name=f"bench{index}"), env=self.env,
                                        log_path=log)
        return process, log, offset

    def workers_start(self, count: int) -> None:
        """Start `count` workers together and return once each has loaded the model and consumes the queue."""
        launched = [self.worker_launch(index) for index in range(count)]
        for process, log, offset in launched:
            log_wait(log, WORKER_READY, offset=offset, timeout=WORKER_START_TIMEOUT_S,
                     alive=lambda p=process: p.poll() is None)
        self.workers = [process for process, _, _ in launched]

    def worker_kill_and_restart(self, index: int = 0) -> None:
        victim = self.workers[index]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at = time.perf_counter()
        process, log, offset = self.worker_launch(index)
        log_wait(log, WORKER_READY, offset=offset, timeout=WORKER_START_TIMEOUT_S, alive=lambda: process.poll() is None)
        self.workers[index] = process
        self.events.append(f"worker{index} SIGKILLed and restarted (ready again after "
                           f"{time.perf_counter() - killed_at:.1f} s)")


@contextmanager
def local_system(*, workers: int, settings: Mapping[str, str], database_url: str | None = None,
                 keep: bool = False, prefix: str = "bench-") -> Iterator[LocalSystem]:
    """Redis, `workers` Celery workers and Daphne in a temporary folder, stopped on exit.

    `settings` apply unless the environment sets them; the database is a fresh SQLite file unless
    `database_url` names one (e.g. an empty PostgreSQL database). Exits with status 2, saying why, when the
    NER model the workers would load is missing.
    """
    missing = model_missing_reason(os.environ)
    if missing:
        print(f"Cannot start the system: {missing}", file=sys.stderr)
        raise SystemExit(2)
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    supervisor = Supervisor()
    redis_port, web_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in ENV_NOT_INHERITED}
    env.update(
        DJANGO_ENV="test",
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_VAR_DIR=str(directory / "var"),
        DATABASE_URL=database_url or f"sqlite:///{directory / 'db.sqlite3'}",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
    )
    for key, value in settings.items():
        env.setdefault(key, value)
    system = LocalSystem(base_url=f"http://127.0.0.1:{web_port}", database_url=env["DATABASE_URL"], env=env,
                         directory=directory, supervisor=supervisor)
    try:
        redis = supervisor.start("redis", redis_command(port=redis_port, data_dir=directory / "redis", persist=False),
                                 env=env, log_path=directory / "redis.log")
        redis_wait(env["REDIS_URL"], alive=lambda: redis.poll() is None)
        subprocess.run(manage_command("migrate", "--noinput", "-v", "0"), env=env, cwd=ROOT, check=True)
        system.workers_start(workers)
        web = supervisor.start("web", web_command(host="127.0.0.1", port=web_port), env=env,
                               log_path=directory / "web.log")
        http_wait(system.base_url + "/", alive=lambda: web.poll() is None)
        yield system
    finally:
        supervisor.stop()
        if keep:
            print(f"logs kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


# The patient's client ------------------------------------------------------------------------------------


def consultation_start(base_url: str, *, timeout: float = 60) -> tuple[str, str]:
    """(consultation id, patient token) of a new consultation."""
    request = urllib.request.Request(base_url + "/api/consultations/", data=b"", method="POST",
                                     headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.loads(response.read())
    return body["id"], body["patient_token"]


async def socket_open(base_url: str, consultation_id: str, token: str, *, timeout: float = 60) -> tuple[Any, dict]:
    """An authenticated websocket to the consultation and the state it answered with; RuntimeError if refused."""
    import websockets

    url = base_url.replace("http", "ws", 1) + f"/ws/consultations/{consultation_id}/"
    # No keepalive pings: under load a pong can wait behind queued frames, and the socket would be closed.
    socket = await websockets.connect(url, origin=base_url, open_timeout=timeout, max_size=None, ping_interval=None)
    await socket.send(json.dumps({"type": "auth", "token": token}))
    first = json.loads(await asyncio.wait_for(socket.recv(), timeout=timeout))
    if first.get("type") != "consultation.update":
        await socket.close()
        raise RuntimeError(f"auth failed: {first}")
    return socket, first


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]
