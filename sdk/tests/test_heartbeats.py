"""Heartbeats for a host of many agents against a live ARM: one batch request beats every registered
instance; the thread and the asyncio task run until stopped; a retired instance is dropped."""

from __future__ import annotations

import time
import uuid

import pytest

from arm_sdk import AsyncClient, AsyncHeartbeats, Client, Deployer, Heartbeats


@pytest.fixture
def host(arm):
    with arm.admin() as admin:
        key = admin.api(
            "POST", "/api/v1/api-keys/", json={"name": f"host {uuid.uuid4().hex[:6]}", "roles": ["runtime"]}
        )["key"]
    return key


def last_beats(arm, *instances) -> dict:
    with arm.admin() as admin:
        return {i: admin.api("GET", f"/api/v1/instances/{i}/")["last_heartbeat_at"] for i in instances}


def wait_until(predicate, deadline=30.0):
    give_up = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def test_one_request_beats_every_instance_and_a_retired_one_is_dropped(arm, host, caplog):
    agents = [arm.agent() for _ in range(3)]
    ids = [a.instance for a in agents]
    with Client(arm.url, host) as client:
        beats = Heartbeats(client, ids[:2], every=60, status={"host": "h-1"})
        beats.add(ids[2])
        answer = beats.beat()
        assert answer["ok"] == 3 and {r["id"] for r in answer["results"]} == set(ids)
        assert all(last_beats(arm, *ids).values())
        with arm.admin() as admin:
            Deployer(admin).retire(ids[0])
        answer = beats.beat()
        assert (answer["ok"], answer["retired"]) == (2, 1)
        assert beats.instances == ids[1:] and "retired" in caplog.text


def test_the_thread_beats_until_stopped(arm, host):
    agent = arm.agent()
    with Client(arm.url, host) as client, Heartbeats(client, [agent.instance], every=0.05) as beats:
        wait_until(lambda: beats.beats >= 2)
    assert not beats._thread.is_alive()
    assert last_beats(arm, agent.instance)[agent.instance]


@pytest.mark.anyio
async def test_the_asyncio_task_beats_until_stopped(arm, host):
    agent = arm.agent()
    async with AsyncClient(arm.url, host) as client:
        async with AsyncHeartbeats(client, [agent.instance], every=0.05) as beats:
            import asyncio

            give_up = time.monotonic() + 30
            while beats.beats < 2:
                assert time.monotonic() < give_up
                await asyncio.sleep(0.05)
        assert beats._task is None
    assert last_beats(arm, agent.instance)[agent.instance]
