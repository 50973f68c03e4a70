"""Configuration from the environment and the instance and run a call is made for."""

import time

import httpx
import pytest

import arm_sdk
from arm_sdk import Client, ConfigurationError, Heartbeats

from fake_arm import Recorder, allow, body


def test_the_client_reads_arm_url_key_and_instance_from_the_environment(monkeypatch):
    monkeypatch.setenv("ARM_URL", "https://arm.example.com/")
    monkeypatch.setenv("ARM_API_KEY", "k-1")
    monkeypatch.setenv("ARM_INSTANCE_ID", "i-1")
    monkeypatch.setenv("ARM_WAIT_URL", "https://arm.example.com:8001/")
    with Client() as client:
        assert client.config.wait_url == "https://arm.example.com:8001"
        assert (client.config.url, client.config.api_key, client.config.instance) == (
            "https://arm.example.com",
            "k-1",
            "i-1",
        )
        assert client._http.headers["Authorization"] == "Bearer k-1"
    with Client(api_key="k-2", instance="i-2", timeout=3) as client:
        assert (client.config.api_key, client.config.instance, client.config.timeout) == ("k-2", "i-2", 3)


@pytest.mark.parametrize("missing", ["ARM_URL", "ARM_API_KEY"])
def test_a_missing_url_or_key_is_a_configuration_error(monkeypatch, missing):
    monkeypatch.setenv("ARM_URL", "https://arm.example.com")
    monkeypatch.setenv("ARM_API_KEY", "k")
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError, match=missing):
        Client()


def test_the_instance_is_the_calls_else_the_contexts_else_the_configured_one():
    arm = Recorder(lambda request: httpx.Response(200, json=allow()))
    client = arm.client()  # configured for inst-1
    client.evaluate("crm_lookup", {})
    with arm_sdk.context(instance="inst-ctx", run_id="run-1"):
        client.evaluate("crm_lookup", {})
        client.evaluate("crm_lookup", {}, instance="inst-arg")
        keyed = client.evaluate("crm_lookup", {"a": 1})
    assert [body(r)["instance"] for r in arm.requests] == ["inst-1", "inst-ctx", "inst-arg", "inst-ctx"]
    assert keyed.idempotency_key == arm_sdk.derive_idempotency_key(
        instance="inst-ctx", tool="crm_lookup", params={"a": 1}, run_id="run-1"
    )
    client.config = client.config.__class__(url="http://arm.test", api_key="k")
    with pytest.raises(ConfigurationError, match="instance"):
        client.evaluate("crm_lookup", {})


def test_heartbeats_keep_going_through_an_outage_and_say_so_once(caplog):
    answers = iter([503, 503, 200])

    def handler(request):
        status = next(answers, 200)
        if status == 503:
            return httpx.Response(503, json={"code": "database_unavailable", "message": "down"})
        ids = body(request)["instances"]
        return httpx.Response(
            200,
            json={"ok": len(ids), "not_found": 0, "retired": 0, "results": [{"id": i, "result": "ok"} for i in ids]},
        )

    arm = Recorder(handler)
    beats = Heartbeats(arm.client(retries=0), ["a", "b"], every=0.01)
    with caplog.at_level("INFO", logger="arm_sdk.heartbeats"):
        beats.start()
        give_up = time.monotonic() + 30
        while beats.beats < 2 and time.monotonic() < give_up:
            time.sleep(0.01)
        beats.stop()
    assert beats.beats >= 2 and not beats._thread.is_alive()
    assert caplog.text.count("Heartbeat failed") == 1 and "answers heartbeats again" in caplog.text
    assert body(arm.requests[-1])["instances"] == ["a", "b"]
