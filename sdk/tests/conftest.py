"""Fixtures of the SDK's contract suite: ``arm`` (a live ARM, started once per session: see
``live_arm.py``), ``agent`` (a fresh instance, policy and runtime key per test), and ``needs(feature)``,
which skips a test when the server lacks that part of the runtime protocol (saying which)."""

from __future__ import annotations

import os

import pytest

from live_arm import LiveArm, Server

FEATURES = {
    "replay": "idempotency replay (an evaluate answered again for the same idempotency_key)",
    "wait": "GET /api/v1/approvals/{id}/wait/ held by the server (ARM's wait server)",
    "withdraw": "POST /api/v1/approvals/{id}/withdraw/",
    "runtime_context": "GET /api/v1/runtime/context/",
    "call_names": "tool call names in evaluate (email.send called as email_send)",
}


def pytest_report_header(config):
    return "live ARM database: " + (os.environ.get("ARM_SDK_DATABASE_URL") or "SQLite (a temporary file)")


@pytest.fixture(scope="session")
def arm():
    server = Server()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def agent(arm: LiveArm):
    return arm.agent()


@pytest.fixture
def needs(arm: LiveArm):
    def check(*features: str) -> None:
        missing = [FEATURES[f] for f in features if not arm.features.get(f)]
        if missing:
            pytest.skip("ARM lacks " + "; ".join(missing))

    return check
