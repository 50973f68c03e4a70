"""An in-process stand-in for ARM's HTTP answers (``httpx.MockTransport``), for what a live server cannot be
made to do on demand: answer 503, drop a connection, lack an endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from arm_sdk import AsyncClient, Client

Handler = Callable[[httpx.Request], httpx.Response]


def allow(key: str = "k", **extra) -> dict:
    return {
        "decision": "ALLOW",
        "risk": "low",
        "reasons": [{"code": "tier_allows", "message": "ok"}],
        "approval": None,
        "decision_id": "d-1",
        "policy": None,
        **extra,
    }


def body(request: httpx.Request) -> dict:
    return json.loads(request.content) if request.content else {}


class Recorder:
    """The requests a client sent, and the delays it slept. ``now`` is the clients' clock: sleeping
    advances it, and so may the handler (a wait the server held)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self, **options) -> Client:
        http = httpx.Client(base_url="http://arm.test", transport=httpx.MockTransport(self))
        client = Client("http://arm.test", "secret", "inst-1", http=http, **options)
        client._sleep = self.sleep
        client._clock = lambda: self.now
        return client

    def async_client(self, **options) -> AsyncClient:
        http = httpx.AsyncClient(base_url="http://arm.test", transport=httpx.MockTransport(self))
        client = AsyncClient("http://arm.test", "secret", "inst-1", http=http, **options)

        async def sleep(seconds: float) -> None:
            self.sleep(seconds)

        client._sleep = sleep
        client._clock = lambda: self.now
        return client


class ContractArm:
    """The runtime protocol's idempotency rules for evaluate, in memory, for adapters' resume paths before a
    live ARM has them: one key names one call; NEEDS_APPROVAL opens an approval; the same key then answers
    from the approval's state (PENDING: the same approval; APPROVED: ALLOW through it, once, then replays;
    DENIED: DENY approval_denied). Tools in ``needs_approval`` need a person; the rest are allowed."""

    def __init__(self, needs_approval=("email_send",)):
        self.needs_approval = set(needs_approval)
        self.calls: dict[str, dict] = {}  # key -> {"answer": ..., "approval": id}
        self.approvals: dict[str, dict] = {}
        self.evaluations: list[dict] = []

    def decide(self, approval_id: str, *, approve: bool) -> None:
        self.approvals[approval_id]["status"] = "APPROVED" if approve else "DENIED"

    def _answer(self, decision, reasons, approval=None, replay=False) -> dict:
        return {
            "decision": decision,
            "risk": "high",
            "reasons": [{"code": c, "message": c} for c in reasons],
            "approval": approval,
            "decision_id": f"d-{len(self.evaluations)}",
            "policy": None,
            "replay": replay,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/api/v1/approvals/"):
            return httpx.Response(200, json=self.approvals[path.split("/")[4]])
        call = body(request)
        self.evaluations.append(call)
        key = call["idempotency_key"]
        known = self.calls.get(key)
        if known is None:
            if call["tool"] in self.needs_approval:
                approval = f"ap-{len(self.approvals) + 1}"
                self.approvals[approval] = {"id": approval, "status": "PENDING", "used": False}
                answer = self._answer("NEEDS_APPROVAL", ["needs_approval"], approval)
            else:
                answer = self._answer("ALLOW", ["tier_allows"])
            self.calls[key] = {"answer": answer, "approval": answer["approval"]}
            return httpx.Response(200, json=answer)
        approval = self.approvals.get(known["approval"]) if known["approval"] else None
        if approval is None or known["answer"]["decision"] != "NEEDS_APPROVAL":
            return httpx.Response(200, json={**known["answer"], "replay": True})
        if approval["status"] == "PENDING":
            return httpx.Response(200, json={**known["answer"], "replay": True})
        if approval["status"] == "DENIED":
            return httpx.Response(200, json=self._answer("DENY", ["approval_denied"], approval["id"], replay=True))
        answer = self._answer("ALLOW", ["approval_granted"], approval["id"])
        approval["used"] = True
        known["answer"] = answer  # consumed once: the key replays this ALLOW from now on
        return httpx.Response(200, json=answer)
