"""A whole system of its own for fault tests: a redis-server on a fixed port (so that it can be stopped and
started again where the others expect it), Daphne, Celery workers with the real NER model, and one database
(a SQLite file, or a fresh PostgreSQL database when the suite runs with a postgres DATABASE_URL).

Faults are real: workers get SIGKILL, Redis is stopped (its queue is lost: it runs without persistence),
the database is locked from another connection, a worker gets a broken model folder. The sweeper runs
every second and leases last 5 s, so that recovery is observable in seconds rather than minutes.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from system_processes import SystemProcesses, Worker, log_tail, system_env

from tools.launcher import Supervisor, free_port, redis_command, redis_wait

PROCESS_TIMEOUT_S = 90
PATIENT_TEXTS = [
    "I've had a headache and fever for two days",
    "It is about 6 out of 10 and worse in the evening",
    "I also feel sick and tired",
    "I have asthma and use a salbutamol inhaler",
    "No, nothing else. I took paracetamol this morning",
]


@dataclass(kw_only=True)
class FaultSystem(SystemProcesses):
    redis_port: int
    database_url: str
    redis: subprocess.Popen | None = None
    workers: dict[str, Worker] = field(default_factory=dict)
    # Requests may wait out a locked database.
    api_timeout_s = 60

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    def logs(self) -> str:
        parts = [f"--- {name} log ---\n{log_tail(worker.log, 80)}" for name, worker in self.workers.items()]
        parts.append(f"--- web log ---\n{log_tail(self.web_log, 80)}")
        return "\n".join(parts)

    def start(self) -> None:
        self.redis_start()
        super().start()

    # Redis -------------------------------------------------------------------------------------------
    def redis_start(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            return
        self.redis = self.supervisor.start(
            "redis", redis_command(port=self.redis_port, data_dir=self.directory / "redis", persist=False),
            env=self.env, log_path=self.directory / "redis.log")
        redis_process = self.redis
        redis_wait(self.redis_url, alive=lambda: redis_process.poll() is None)

    def redis_stop(self) -> None:
        if self.redis is not None:
            Supervisor.stop_one(self.redis, timeout=10)
            self.redis = None

    # Workers -----------------------------------------------------------------------------------------
    def worker_start(self, name: str = "w1", **env_overrides: str) -> Worker:
        current = self.workers.get(name)
        if current is not None and current.process.poll() is None:
            return current
        worker = self.worker_launch(name, env={**self.env, **env_overrides})
        # Registered before it is ready, so that a worker that fails to start shows its log.
        self.workers[name] = worker
        self.worker_ready_wait(worker)
        return worker

    def worker_kill(self, name: str = "w1") -> None:
        """SIGKILL the worker's whole process group: no warm shutdown, no ack, no cleanup."""
        worker = self.workers.pop(name)
        try:
            os.killpg(worker.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.process.wait(timeout=10)

    def worker_stop(self, name: str = "w1") -> None:
        worker = self.workers.pop(name, None)
        if worker is not None:
            Supervisor.stop_one(worker.process, timeout=30)

    def workers_stop_all(self) -> None:
        for name in list(self.workers):
            self.worker_stop(name)

    # Clients -----------------------------------------------------------------------------------------
    def message_send(self, consultation_id: str, token: str, text: str) -> int:
        status, body = self.api("POST", f"/api/consultations/{consultation_id}/messages/", token=token,
                                body={"text": text})
        assert status == 202, (status, body)
        return body["id"]

    # The database, read directly ---------------------------------------------------------------------
    @contextmanager
    def db(self) -> Iterator[Any]:
        if self.database_url.startswith("sqlite"):
            connection = sqlite3.connect(self.database_url.removeprefix("sqlite:///"), timeout=30)
        else:
            import psycopg

            connection = psycopg.connect(self.database_url, autocommit=True)
        try:
            yield connection
        finally:
            connection.close()

    def query(self, sql: str) -> list[tuple]:
        with self.db() as connection:
            return list(connection.execute(sql).fetchall())

    def statuses(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = self.query(f"SELECT id, status FROM consult_message WHERE id IN ({','.join(map(str, ids))})")
        return dict(rows)

    def wait_finished(self, ids: list[int], *, timeout: float = PROCESS_TIMEOUT_S,
                      finished: tuple[str, ...] = ("processed", "failed")) -> dict[int, str]:
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.statuses(ids)
            if len(statuses) == len(ids) and all(status in finished for status in statuses.values()):
                return statuses
            if time.monotonic() > deadline:
                raise AssertionError(f"not finished within {timeout:.0f} s: {statuses}\n{self.logs()}")
            time.sleep(0.2)

    @contextmanager
    def database_locked(self) -> Iterator[None]:
        """Every writer waits while this is open: SQLite's exclusive transaction, or PostgreSQL's
        ACCESS EXCLUSIVE lock on the message table (readers of it wait too)."""
        if self.database_url.startswith("sqlite"):
            connection = sqlite3.connect(self.database_url.removeprefix("sqlite:///"), timeout=30,
                                         isolation_level=None)
            connection.execute("BEGIN EXCLUSIVE")
        else:
            import psycopg

            connection = psycopg.connect(self.database_url)
            connection.execute("LOCK TABLE consult_message IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.rollback()
            connection.close()

    def assert_processed_exactly_once(self, ids: list[int]) -> None:
        """Every message processed, one reply each, no mention or triage event written twice."""
        id_list = ",".join(map(str, ids))
        statuses = self.statuses(ids)
        assert set(statuses) == set(ids), f"messages missing from the database: {set(ids) - set(statuses)}"
        assert all(s == "processed" for s in statuses.values()), statuses
        replies = dict(self.query(
            f"SELECT reply_to_id, COUNT(*) FROM consult_message WHERE reply_to_id IN ({id_list}) GROUP BY reply_to_id"))
        assert all(replies.get(i) == 1 for i in ids), f"replies per message: {replies}"
        duplicates = self.query(
            f"SELECT message_id, type, start, \"end\", COUNT(*) FROM consult_entity WHERE message_id IN ({id_list}) "
            "GROUP BY message_id, type, start, \"end\" HAVING COUNT(*) > 1")
        assert duplicates == [], f"entities written twice: {duplicates}"
        duplicate_events = self.query(
            f"SELECT message_id, rule_id, COUNT(*) FROM consult_triageevent WHERE message_id IN ({id_list}) "
            "GROUP BY message_id, rule_id HAVING COUNT(*) > 1")
        assert duplicate_events == [], f"triage events written twice: {duplicate_events}"
        orphans = self.query(
            "SELECT r.id FROM consult_recorditem r LEFT JOIN consult_entity e ON e.record_item_id = r.id "
            "WHERE e.id IS NULL")
        assert orphans == [], f"record items no mention supports: {orphans}"


def _database_for(directory: Path) -> tuple[str, callable]:
    """(DATABASE_URL for the system, cleanup): PostgreSQL when the suite runs on it, else a SQLite file."""
    given = os.environ.get("DATABASE_URL", "")
    if not given.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{directory / 'db.sqlite3'}", lambda: None
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    name = f"reliability_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(given)
    with psycopg.connect(given, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(given, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment)), drop


@pytest.fixture(scope="session")
def fault_system(tmp_path_factory) -> Iterator[FaultSystem]:
    from consult.extraction import model_unavailable_reason

    reason = model_unavailable_reason()
    if reason:
        pytest.skip(f"the real NER model is needed for fault tests: {reason}")

    directory = tmp_path_factory.mktemp("faults")
    database_url, database_drop = _database_for(directory)
    redis_port = free_port()
    env = system_env(
        directory=directory,
        database_url=database_url,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        CONSULTATION_CREATE_RATE="100000/hour",
        PATIENT_MESSAGE_RATE="100000/minute",
        MESSAGE_SWEEP_INTERVAL_S="1",
        MESSAGE_LEASE_S="5",
        MESSAGE_PROCESS_MAX_RETRIES="2",
        # These tests start workers again and again (about 8 starts); loading every vocabulary at each start
        # took the suite from 1.5 to 2.7 minutes. test_worker_start.py starts a worker that does load them.
        NER_WARM_CONTEXT="0",
    )
    system = FaultSystem(directory=directory, env=env, redis_port=redis_port, web_port=free_port(),
                         database_url=database_url)
    try:
        with system.running():
            yield system
    finally:
        database_drop()


@pytest.fixture
def faults(fault_system) -> Iterator[FaultSystem]:
    """The fault system with Redis up and exactly one healthy worker, before and after each test."""
    fault_system.redis_start()
    for name in [n for n in fault_system.workers if n != "w1"]:
        fault_system.worker_stop(name)
    fault_system.worker_start("w1")
    yield fault_system
    fault_system.redis_start()
    for name in [n for n in fault_system.workers if n != "w1"]:
        fault_system.worker_stop(name)
    fault_system.worker_start("w1")


def pytest_runtest_makereport(item, call):
    if call.when == "call" and call.excinfo is not None:
        system = item.funcargs.get("faults") if hasattr(item, "funcargs") else None
        if system is not None:
            item.add_report_section("call", "system logs", system.logs())
