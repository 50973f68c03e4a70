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
