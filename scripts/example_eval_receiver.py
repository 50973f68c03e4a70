#!/usr/bin/env python3
"""An example evaluation harness for ARM's ``evaluation.requested`` event (docs/notifications.md).

It receives ARM's webhooks, verifies each with the Standard Webhooks reference library, ignores a
webhook id it has already handled (ARM delivers at least once), answers 204 at once and runs the
evaluation in the background, then POSTs the result to the signed, single-use callback URL the event
carries. The "evaluation" here is a stand-in: replace ``run_suite`` with your own.

    pip install standardwebhooks
    ARM_WEBHOOK_SECRET=whsec_... python scripts/example_eval_receiver.py --port 9000
    # then add a webhook endpoint in ARM (Notifications) for http://<this host>:9000/ subscribed to
    # evaluation.requested, and move a version to TESTING.

Only the standard library and ``standardwebhooks`` are needed.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20


def run_suite(version: dict) -> dict:
    """A stand-in evaluation: a real harness would fetch the version's genome (``version["api_url"]``,
    with an API key), check it against ``genome_hash`` and run its test suite against it."""
    genome_hash = version["genome_hash"]
    ok = len(genome_hash) == 64 and all(c in "0123456789abcdef" for c in genome_hash)
    return {
        "result": "PASS" if ok else "FAIL",
        "score": 1.0 if ok else 0.0,
        "details": {"suite": "example", "checked": ["genome_hash"]},
    }


def post_result(callback: dict, result: dict) -> tuple[int, dict]:
    """POST the result to the callback URL: 201 recorded; 400 a field is wrong (fix and post again: the
    URL is not used up); 403 expired; 404 not a URL ARM issued; 409 a result was already recorded."""
    request = urllib.request.Request(
        callback["url"],
        data=json.dumps(result).encode(),
        headers={"Content-Type": "application/json"},
        method=callback.get("method", "POST"),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Receiver(BaseHTTPRequestHandler):
    webhook: Webhook
    seen: set[str] = set()
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._answer(413)
        body = self.rfile.read(length)
        try:
            event = self.webhook.verify(body, dict(self.headers))
        except WebhookVerificationError:
            return self._answer(401)  # not from ARM (or too old): ARM never sees this answer for its own
        webhook_id = self.headers["webhook-id"]
        with self.lock:  # deduplicate by webhook id: a redelivery of a handled event is acknowledged only
            duplicate = webhook_id in self.seen
            self.seen.add(webhook_id)
        self._answer(204)  # acknowledge first: ARM waits for the answer only, not for the evaluation
        if not duplicate and event["type"] == "evaluation.requested":
            threading.Thread(target=self.evaluate, args=(event["data"],), daemon=True).start()

    @staticmethod
    def evaluate(data: dict) -> None:
        result = run_suite(data["version"])
        status, answer = post_result(data["callback"], result)
        label = f"{data['version']['template']['name']}@{data['version']['label']}"
        print(f"evaluated {label}: {result['result']} -> {status} {answer}", flush=True)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):  # quiet: one line per evaluation is printed instead
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    secret = os.environ.get("ARM_WEBHOOK_SECRET")
    if not secret:
        raise SystemExit("Set ARM_WEBHOOK_SECRET to the endpoint's signing secret (whsec_...).")
    Receiver.webhook = Webhook(secret)
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{server.server_port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
