"""Real processes for end-to-end tests: Daphne, Celery workers and their environment, started with the
launcher's own commands (tools/launcher.py), and a REST client that talks to them as any client does.

Shared by the live system of tests/conftest.py and the fault system of tests/reliability/conftest.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Mapping

from tools.launcher import (
    DEMO_ACCOUNTS,
    ROOT,
    WORKER_READY,
    LaunchError,
    Supervisor,
    demo_logins,
    http_wait,
    log_wait,
    manage_command,
    web_command,
    worker_command,
)

WORKER_START_TIMEOUT_S = float(os.environ.get("TEST_WORKER_START_TIMEOUT_S", "240"))
MESSAGE_PROCESS_TIMEOUT_S = 120  # generous: the worker shares 2 cores with whatever else the machine runs
# Settings that would point the system somewhere else than the test's own database, Redis and cache.
ENV_NOT_INHERITED = frozenset({
    "DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_VAR_DIR", "DJANGO_SETTINGS_MODULE", "DJANGO_DEBUG",
    "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SECURE_COOKIES",
})


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def system_env(*, directory: Path, database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    """This process's environment for a system of its own in `directory`, plus `settings` (e.g. rate limits)."""
    from django.conf import settings as django_settings

    env = {key: value for key, value in os.environ.items() if key not in ENV_NOT_INHERITED}
    env.update(
        DJANGO_ENV="test",
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_VAR_DIR=str(directory / "var"),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        NER_MODEL=str(django_settings.NER_MODEL),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
    )
    env.update(settings)
    return env


def api_request(base_url: str, method: str, path: str, *, token: str | None = None, body: Any = None,
                timeout: float) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body, or the text when it is not JSON) of one REST call as the patient."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base_url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload or b"null")
        except ValueError:
            return error.code, payload.decode(errors="replace")


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path
    log_offset: int = 0  # where this run's output starts in `log` (a restarted worker appends)


@dataclass(kw_only=True)
class SystemProcesses:
    """A web server and Celery workers of a test session, in `directory`, stopped together by `supervisor`."""

    directory: Path
    env: dict[str, str]
    web_port: int
    supervisor: Supervisor = field(default_factory=Supervisor)
    web: subprocess.Popen | None = None
    api_timeout_s: ClassVar[float] = 30

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}"

    @property
    def web_log(self) -> Path:
        return self.directory / "web.log"

    def logs(self) -> str:
        return f"--- web log ---\n{log_tail(self.web_log)}"

    def worker_start(self) -> Any:
        raise NotImplementedError

    def start(self) -> None:
        """Migrate, then start the web server and a first worker, and return once both are ready."""
        self.database_migrate()
        self.web_start()
        self.worker_start()
        self.web_wait()

    @contextmanager
    def running(self) -> Iterator[None]:
        """The system started; every process stopped on exit; what they said printed if starting failed."""
        try:
            self.start()
            yield
        except Exception:
            sys.stderr.write(self.logs() + "\n")
            raise
        finally:
            self.supervisor.stop(timeout=30)

    def database_migrate(self) -> None:
        subprocess.run(manage_command("migrate", "--noinput", "-v", "0"), env=self.env, cwd=ROOT, check=True)

    def web_start(self) -> None:
        """Start Daphne; `web_wait` returns once it answers (start a worker in between: both take a while)."""
        self.web = self.supervisor.start("web", web_command(host="127.0.0.1", port=self.web_port), env=self.env,
                                         log_path=self.web_log)

    def web_wait(self) -> None:
        web = self.web
        http_wait(self.base_url + "/", timeout=60, alive=lambda: web is not None and web.poll() is None)

    def worker_launch(self, name: str, *, env: Mapping[str, str]) -> Worker:
        """Start a Celery worker on the `ner` queue, its output in <directory>/<name>.log; see `worker_ready_wait`."""
        log = self.directory / f"{name}.log"
        offset = log.stat().st_size if log.exists() else 0
        process = self.supervisor.start(name, worker_command(name=name), env=env, log_path=log)
        return Worker(name=name, process=process, log=log, log_offset=offset)

    def worker_ready_wait(self, worker: Worker) -> None:
        # The model loads in worker_process_init, before the worker reports ready.
        try:
            log_wait(worker.log, WORKER_READY, offset=worker.log_offset, timeout=WORKER_START_TIMEOUT_S,
                     alive=lambda: worker.process.poll() is None)
        except LaunchError as exc:
            raise RuntimeError(f"worker {worker.name} did not start: {exc}\n{self.logs()}") from None

    def api(self, method: str, path: str, *, token: str | None = None, body: Any = None,
            timeout: float | None = None) -> tuple[int, Any]:
        return api_request(self.base_url, method, path, token=token, body=body,
                           timeout=self.api_timeout_s if timeout is None else timeout)

    def consultation_start(self) -> tuple[str, str]:
        status, body = self.api("POST", "/api/consultations/")
        assert status == 201, (status, body)
        return body["id"], body["patient_token"]

    def message_processed_wait(self, consultation_id: str, token: str, message_id: int, *,
                               pause: Callable[[float], Any] = time.sleep) -> tuple[dict, dict]:
        """(consultation state, message) once a worker has processed the message, read over REST as the
        patient's page does; fails if the message failed or is not processed within
        MESSAGE_PROCESS_TIMEOUT_S. `pause(seconds)` waits between reads (a browser test passes one that lets
        Playwright run meanwhile)."""
        deadline = time.monotonic() + MESSAGE_PROCESS_TIMEOUT_S
        while time.monotonic() < deadline:
            status, state = self.api("GET", f"/api/consultations/{consultation_id}/", token=token)
            assert status == 200, (status, state)
            [message] = [m for m in state["messages"] if m["id"] == message_id]
            if message["status"] in {"processed", "failed"}:
                assert message["status"] == "processed", message
                return state, message
            pause(0.2)
        raise AssertionError(f"message {message_id} was not processed within {MESSAGE_PROCESS_TIMEOUT_S} s")

    def patient_says(self, text: str, consultation: tuple[str, str] | None = None) -> tuple[str, str, dict]:
        """(consultation id, token, message) once a patient's `text`, sent through the REST API, is processed;
        in a new consultation unless given one's (id, token)."""
        consultation_id, token = consultation or self.consultation_start()
        status, body = self.api("POST", f"/api/consultations/{consultation_id}/messages/", token=token,
                                body={"text": text})
        assert status == 202, (status, body)
        _, message = self.message_processed_wait(consultation_id, token, body["id"])
        return consultation_id, token, message

    def demo_accounts_create(self) -> tuple[dict[str, str], dict[str, str]]:
        """The demo accounts `clinician` and `admin` in this system's database, created as `make run` creates
        them (manage.py load_defaults, which also seeds the prompt templates): ({username: password}, the
        environment that names those passwords, for further manage.py commands)."""
        logins = demo_logins(Path(self.env["DJANGO_VAR_DIR"]), self.env)
        env = {**self.env, **{password_env: logins[username] for username, password_env, _ in DEMO_ACCOUNTS}}
        subprocess.run(manage_command("load_defaults"), env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return logins, env
