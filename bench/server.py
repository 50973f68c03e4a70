"""The servers of the benchmark, as ``make serve`` runs them: gunicorn and the wait server (uvicorn
``config.asgi``), with production settings, on 127.0.0.1 and free ports; their processes' RSS."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class HttpSession:
    """The served benchmark's client: one sequential HTTP/1.1 client on ``http.client`` with fixed headers.
    Not ``requests``: its own overhead per call is larger than a bare gunicorn app's answer
    (docs/benchmarks.md) and would be counted against ARM. A gunicorn sync worker closes each connection
    after its response, so a closed connection is reopened (that connect is part of every figure, as it
    is for a real client)."""

    def __init__(self, base: str, headers: dict | None = None):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {**self.headers, **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self._conn.request(method, path, body=payload, headers=all_headers)
                response = self._conn.getresponse()
                content = response.read()
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close" or response.will_close:
                self._conn.close()
                self._conn = None
            return response.status, content
        raise RuntimeError("unreachable")


def serving_env(database_url: str) -> dict:
    """Production settings for a served process of the benchmark."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "ARM_SECRET_KEY": os.environ.get("ARM_SECRET_KEY") or secrets.token_urlsafe(50),
        "ARM_DEBUG": "false",
        "ARM_ALLOWED_HOSTS": "127.0.0.1",
        "ARM_LOGIN_THROTTLE": "false",
    }


def wait_until_ready(process: subprocess.Popen, base: str, name: str, stop) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        try:
            if requests.get(base + "/api/health/", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop()  # never leave a server behind
    raise SystemExit(f"{name} did not answer /api/health/ within 60 s")


def raise_open_file_limit() -> int:
    """This process's (and so its children's) open-file limit raised to the hard limit, as ``make serve``
    does; returns the limit now."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Gunicorn:
    """gunicorn ``config.wsgi``; a uvicorn worker class (``uvicorn.workers.UvicornWorker``) serves
    ``config.asgi`` instead, to measure the whole API over ASGI."""

    def __init__(self, database_url: str, workers: int, worker_class: str = "sync", profile_dir: str = ""):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = serving_env(database_url)
        if profile_dir:
            env["ARM_PROFILE_DIR"] = profile_dir
        app = "config.asgi" if "uvicorn" in worker_class.lower() else "config.wsgi"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
        ]
        self.process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)
        self.peak_rss_kib: dict[int, int] = {}
        self._stop = threading.Event()
        self._wait_ready()
        self._monitor = threading.Thread(target=self._sample, daemon=True)
        self._monitor.start()

    def _wait_ready(self) -> None:
        wait_until_ready(self.process, self.base, "gunicorn", self.stop)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for pid in children(self.process.pid):
                self.peak_rss_kib[pid] = max(self.peak_rss_kib.get(pid, 0), rss_kib(pid))

    def worker_rss_mib(self) -> dict:
        for pid in children(self.process.pid):
            self.peak_rss_kib[pid] = max(self.peak_rss_kib.get(pid, 0), rss_kib(pid))
        return {str(pid): round(kib / 1024, 1) for pid, kib in sorted(self.peak_rss_kib.items())}

    def stop(self) -> None:
        self._stop.set()
        terminate(self.process)


# The wait server's command line after ``uvicorn``: the Makefile's ``serve`` target runs the same (WAIT_ARGS).
WAIT_SERVER_ARGS = (
    "config.asgi:application",
    "--backlog",
    "4096",
    "--timeout-graceful-shutdown",
    "5",
    "--lifespan",
    "on",
)


class WaitServer:
    """The wait server as ``make serve`` runs it: one uvicorn process serving ``config.asgi`` (it answers
    ``GET /api/v1/approvals/{id}/wait/``, and anything else through Django's ASGI handler)."""

    def __init__(self, database_url: str):
        raise_open_file_limit()  # every held wait is a socket, here (the client) and in the server
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            *WAIT_SERVER_ARGS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        self.process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=serving_env(database_url))
        self.peak_rss_kib = 0
        self._stop = threading.Event()
        wait_until_ready(self.process, self.base, "the wait server (uvicorn)", self.stop)
        self._monitor = threading.Thread(target=self._sample, daemon=True)
        self._monitor.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_rss_kib = max(self.peak_rss_kib, rss_kib(self.process.pid))

    def peak_rss_mib(self) -> float:
        self.peak_rss_kib = max(self.peak_rss_kib, rss_kib(self.process.pid))
        return round(self.peak_rss_kib / 1024, 1)

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._stop.set()
        terminate(self.process)
