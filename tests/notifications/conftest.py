"""End-to-end fixtures for notifications: a real HTTP receiver, real worker processes, and a database both
this process and the workers reach (issue 25: "through a real worker process against a real local HTTP
receiver ... on SQLite and PostgreSQL"). Shared with the chaos test and the benchmark's tests.

- ``receiver``: an ``http.server`` on 127.0.0.1 in a thread, recording every request (``Received``);
  ``receiver.respond`` decides each answer (status, delay); ``receiver.wait_for(n)``.
- ``world``: the database the processes share; a test using it is marked
  ``pytest.mark.django_db(transaction=True)``. On PostgreSQL the test database itself (rows are
  committed, and flushed after). On SQLite a file copy of the migrated
  test database (SQLite's backup API; the in-memory test database is out of other processes' reach), so
  code runs against it in a subprocess: ``world.run(code)`` (a Python snippet with Django set up, which
  prints its result as JSON) — on PostgreSQL too, so one test body serves both.
- ``workers``: ``workers.start(n=1, **env)`` starts ``manage.py worker`` processes on the world's
  database; ``WorkerProcess.stop()`` sends SIGTERM and returns the exit status, ``kill()`` SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
WAIT_SECONDS = 60  # the longest a fixture waits for something that normally takes milliseconds


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float  # time.time() when it arrived
    peer: tuple = ()  # the client's (address, port): one per connection

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local webhook receiver. ``respond(received) -> (status, delay_seconds[, headers[, body]])``; 200 at
    once by default."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    respond: object = None
    hang_up: bool = False  # close each connection after its answer without saying so (a server's idle timeout)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            raise AssertionError(f"the receiver got {len(self.received)} request(s), expected {count}")

    def by_webhook_id(self) -> dict[str, list[Received]]:
        with self.lock:
            grouped: dict[str, list[Received]] = {}
            for item in self.received:
                grouped.setdefault(item.headers.get("webhook-id", ""), []).append(item)
            return grouped


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            item = Received("POST", self.path, headers, body, time.time(), self.client_address)
            status, delay, *more = (200, 0.0) if receiver.respond is None else receiver.respond(item)
            headers, payload = (more + [{}, b"ok"][len(more) :])[:2]
            if delay:
                time.sleep(delay)
            with receiver.lock:
                receiver.received.append(item)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if receiver.hang_up:
                self.close_connection = True

        def log_message(self, format, *args):  # quiet
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that went away first (a timeout or a capped read in a test) is expected, not a failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def receiver():
    state = Receiver()
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/arm"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------- the shared database

SNIPPET_PREAMBLE = """
import json, os, sys
import django
django.setup()
from django.db import transaction
"""


@dataclass
class World:
    database_url: str
    env: dict

    def run(self, code: str, *, timeout: float = 120):
        """Run ``code`` (which sets ``result``) in a fresh process on this database; returns ``result``."""
        program = SNIPPET_PREAMBLE + code + "\nprint('@@RESULT@@' + json.dumps(result, default=str))\n"
        done = subprocess.run(
            [sys.executable, "-c", program],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(f"snippet failed ({done.returncode}):\n{done.stderr[-4000:]}")
        line = [ln for ln in done.stdout.splitlines() if ln.startswith("@@RESULT@@")][-1]
        return json.loads(line[len("@@RESULT@@") :])


def postgres_url() -> str:
    db = connection.settings_dict
    user = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def world_env(database_url: str, **extra) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(BASE_DIR),
        # The receiver is on loopback over plain http: allowed here, refused by default.
        "ARM_OUTBOUND_ALLOW_PRIVATE": "true",
        "ARM_OUTBOUND_ALLOW_HTTP": "true",
        "ARM_PUBLIC_URL": "https://arm.test",
        "ARM_WORKER_POLL_SECONDS": "0.05",
        "ARM_LOG_LEVEL": "WARNING",
    }
    env.pop("ARM_DEBUG", None)
    env.update({key: str(value) for key, value in extra.items()})
    return env


@pytest.fixture
def world(tmp_path, django_db_setup, django_db_blocker):
    if connection.vendor == "postgresql":
        url = postgres_url()
    else:
        target = tmp_path / "world.sqlite3"
        with django_db_blocker.unblock():
            connection.ensure_connection()
            with sqlite3.connect(target) as copy:
                connection.connection.backup(copy)
            copy.close()
        url = f"sqlite:///{target}"
    return World(url, world_env(url))


# ---------------------------------------------------------------- worker processes


class WorkerProcess:
    def __init__(self, env: dict, args: list[str]):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "-v", "1", *args],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_started(self, timeout: float = WAIT_SECONDS) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(" started on " in line for line in self.lines):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"the worker did not start:\n{self.output}")

    def stop(self, sig=signal.SIGTERM, timeout: float = WAIT_SECONDS) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT_SECONDS)


@dataclass
class Workers:
    world: World
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, n: int = 1, *args: str, **env) -> list[WorkerProcess]:
        """Start ``n`` workers (extra command-line ``args``, extra environment ``env``), waiting until each
        has started (connected and, on PostgreSQL, listening)."""
        processes = [
            WorkerProcess({**self.world.env, **{k: str(v) for k, v in env.items()}}, list(args)) for _ in range(n)
        ]
        self.started.extend(processes)
        return [p.wait_started() for p in processes]


@pytest.fixture
def workers(world):
    pool = Workers(world)
    yield pool
    for process in pool.started:
        process.kill()
