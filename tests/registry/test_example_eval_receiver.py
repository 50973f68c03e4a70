"""The documented example harness (scripts/example_eval_receiver.py) works as docs/notifications.md says:
it refuses a request ARM did not sign, verifies ARM's signature, runs its stand-in evaluation and posts a
result ARM's callback view records, once per webhook id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from notifications.signing import new_secret
from registry.evaluation_requests import evaluation_requested_data
from registry.models import EvaluationRequest, EvaluationResult
from tests.factories import TemplateFactory, VersionFactory

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "example_eval_receiver.py"
DEADLINE = 60.0


def wait_until(condition, what: str):
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def harness():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = new_secret()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port)],
        env={**os.environ, "ARM_WEBHOOK_SECRET": secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert "listening" in process.stdout.readline()
    yield f"http://127.0.0.1:{port}/", secret, process
    process.kill()
    process.wait()


def send(url: str, body: bytes, headers: dict) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class CallbackCatcher:
    """Stands in for ARM's address: records what the harness posts (the test then hands it to ARM's view
    in this process, whose database the harness cannot reach) and answers 201."""

    def __init__(self):
        self.posts: list[tuple[str, bytes]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                catcher.posts.append((self.path, self.rfile.read(int(self.headers.get("Content-Length") or 0))))
                self.send_response(201)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.django_db
def test_the_example_harness_verifies_evaluates_and_posts_the_result_once(settings, tenant, harness):
    url, secret, process = harness
    catcher = CallbackCatcher()
    settings.ARM_PUBLIC_URL = catcher.url
    version = VersionFactory(template=TemplateFactory(tenant=tenant, name="support-agent"), lifecycle_state="TESTING")
    data = evaluation_requested_data(version)
    body = json.dumps({"type": "evaluation.requested", "timestamp": "2026-12-07T22:00:00Z", "data": data}).encode()
    signed = {"webhook-id": "msg_0123456789abcdef0123456789abcdef", "webhook-timestamp": str(int(time.time()))}
    signed["webhook-signature"] = Webhook(secret).sign(
        signed["webhook-id"], datetime.fromtimestamp(int(signed["webhook-timestamp"]), UTC), body
    )

    assert send(url, body, {**signed, "webhook-signature": "v1,Zm9yZ2Vk"}) == 401  # not ARM's signature
    assert send(url, body, signed) == 204
    wait_until(lambda: catcher.posts, "the harness's post")
    assert send(url, body, signed) == 204  # a redelivery of the same webhook id: acknowledged, not evaluated again
    wait_until(lambda: "evaluated support-agent@" in _output(process), "the harness's line")

    (path, posted), *others = catcher.posts
    assert not others and path == urlsplit(data["callback"]["url"]).path
    response = APIClient().post(path, posted, content_type="application/json")  # ARM's view takes it as sent
    assert response.status_code == 201, response.json()
    result = EvaluationResult.objects.get(version=version)
    version.refresh_from_db()
    assert result.status == version.eval_status == "PASS" and result.details["suite"] == "example"
    request = EvaluationRequest.objects.get(version=version)
    assert request.used_at is not None and result.created_by == f"evaluation-request:{request.pk}"
    assert _output(process).count("evaluated ") == 1


_lines: dict[int, list[str]] = {}


def _output(process) -> str:
    """What the harness printed so far (read without blocking)."""
    import selectors

    lines = _lines.setdefault(process.pid, [])
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    while selector.select(timeout=0.1):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
    selector.close()
    return "".join(lines)
