"""A request body sent with ``Transfer-Encoding: chunked`` (no Content-Length) is read, under a real
gunicorn: Django alone would read CONTENT_LENGTH (0) bytes of it and see an empty body. Over the limit
it answers 413 like a body with a Content-Length."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
LIMIT = 64 * 1024

SETUP = """
import io, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("create_tenant", "acme", stdout=io.StringIO())
out = io.StringIO()
call_command("create_api_key", "--tenant", "acme", "--role", "operator", stdout=out)
print(out.getvalue().strip().splitlines()[-1])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, api key) of a gunicorn serving config.wsgi over a scratch SQLite database."""
    db = tmp_path_factory.mktemp("chunked") / "db.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "ARM_MAX_BODY_BYTES": str(LIMIT),
        "ARM_SECRET_KEY": "test-only-secret-key-for-the-gunicorn-subprocess-0123456789",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    setup = subprocess.run(
        [sys.executable, "-c", SETUP], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert setup.returncode == 0, setup.stderr[-2000:]
    key = setup.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.skip(f"gunicorn could not start: {proc.stderr.read().decode()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("gunicorn did not start listening within 30 s")
                time.sleep(0.1)
        yield port, key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post(port: int, key: str, path: str, chunks, *, chunked: bool = True):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            conn.request("POST", path, body=iter(chunks), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", path, body=b"".join(chunks), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_chunked_json_post_is_read(server):
    port, key = server
    body = json.dumps({"name": "chunked-env", "tier": "dev", "description": "sent in chunks"}).encode()
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]

    status, data = post(port, key, "/api/v1/environments/", chunks)

    assert status == 201, data
    assert data["name"] == "chunked-env" and data["description"] == "sent in chunks"


def test_chunked_body_over_the_limit_is_413(server):
    port, key = server
    big = json.dumps({"name": "big", "tier": "dev", "description": "x" * LIMIT}).encode()

    status, data = post(port, key, "/api/v1/environments/", [big[:1000], big[1000:]])

    assert status == 413, data
    assert data["code"] == "payload_too_large"


def test_a_body_with_content_length_still_works(server):
    port, key = server
    body = json.dumps({"name": "plain-env", "tier": "staging"}).encode()

    status, data = post(port, key, "/api/v1/environments/", [body], chunked=False)

    assert status == 201, data
    assert data["name"] == "plain-env"
