"""The fleet mix ``manage.py bench --load`` drives with locust (headless, 127.0.0.1 only).

Configured by the JSON file named in ``ARM_BENCH_LOAD_CONFIG`` (written by ``bench.load``):
``agents`` agents each heartbeat every 30 s and evaluate one tool call a minute (1 in 20 needs an
approval), spread over a few locust users each pacing its share; a few operators read the directory
page and decide pending approvals. With ``heartbeat_batch`` N > 1 the agents run on runtime hosts of N
agents each, and a host sends its agents' heartbeats in one batch (``POST /api/v1/instances/heartbeats/``)
every 30 s instead of one request per agent. Every user starts at a random point of its pacing interval
(a fleet's agents do not all start in the same millisecond). Every 2xx write is logged to ``log`` so the
run can be checked for lost writes afterwards. Not imported by Django."""

import itertools
import json
import os
import random

import gevent
from locust import FastHttpUser, constant_pacing, events, task

CONFIG = json.load(open(os.environ["ARM_BENCH_LOAD_CONFIG"]))
AGENTS = CONFIG["agents"]
INSTANCES = CONFIG["instances"]
HB_USERS, EVAL_USERS, OPERATORS = CONFIG["heartbeat_users"], CONFIG["evaluate_users"], CONFIG["operators"]
BATCH = CONFIG.get("heartbeat_batch", 1)
# What sends one heartbeat request: an agent (BATCH 1), or a runtime host and the BATCH agents it runs.
SENDERS = [range(first, min(first + BATCH, AGENTS)) for first in range(0, AGENTS, BATCH)]
LOG: list = []
_agent_counter = itertools.count()
_eval_counter = itertools.count()


def _instance_of(agent: int) -> str:
    return INSTANCES[agent % len(INSTANCES)]


def _stagger(pacing: float) -> None:
    gevent.sleep(random.uniform(0, pacing))


class Heartbeats(FastHttpUser):
    """Each user beats for len(SENDERS) / HB_USERS senders in turn: one request every
    30 * HB_USERS / len(SENDERS) s."""

    fixed_count = HB_USERS
    pacing = 30 * HB_USERS / len(SENDERS)
    wait_time = constant_pacing(pacing)

    def on_start(self):
        self.senders = itertools.cycle(range(next(_agent_counter), len(SENDERS), HB_USERS))
        self.headers = {"Authorization": f"Bearer {CONFIG['runtime_key']}"}
        _stagger(self.pacing)

    @task
    def beat(self):
        agents = SENDERS[next(self.senders)]
        if BATCH > 1:
            return self.beat_batch([_instance_of(agent) for agent in agents])
        instance = _instance_of(agents[0])
        with self.client.post(
            f"/api/v1/instances/{instance}/heartbeat/",
            json={"status": {"ok": True}},
            headers=self.headers,
            name="heartbeat",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                LOG.append({"kind": "heartbeat", "id": instance, "at": response.json()["last_heartbeat_at"]})
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    def beat_batch(self, instances: list[str]):
        with self.client.post(
            "/api/v1/instances/heartbeats/",
            json={"instances": instances, "status": {"ok": True}},
            headers=self.headers,
            name="heartbeat batch",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            body = response.json()
            refused = [row for row in body["results"] if row["result"] != "ok"]
            if refused:
                response.failure(f"{len(refused)} of {len(instances)} not beaten, e.g. {refused[0]}")
                return
            for row in body["results"]:
                LOG.append({"kind": "heartbeat", "id": row["id"], "at": body["last_heartbeat_at"]})
            response.success()


class Evaluations(FastHttpUser):
    """Each user evaluates for AGENTS / EVAL_USERS agents in turn: one call a minute per agent."""

    fixed_count = EVAL_USERS
    pacing = 60 * EVAL_USERS / AGENTS
    wait_time = constant_pacing(pacing)

    def on_start(self):
        self.agents = itertools.cycle(range(random.randrange(EVAL_USERS), AGENTS, EVAL_USERS))
        self.headers = {"Authorization": f"Bearer {CONFIG['runtime_key']}"}
        _stagger(self.pacing)

    @task
    def evaluate(self):
        n = next(_eval_counter)
        instance = _instance_of(next(self.agents))
        if n % 20 == 0:
            tool, params, name = (
                "email.send",
                {"to": f"load-{CONFIG['run']}-{n}@example.com"},
                "evaluate NEEDS_APPROVAL",
            )
        else:
            tool, params, name = "crm.lookup", {"customer_id": n}, "evaluate ALLOW"
        with self.client.post(
            "/api/v1/policy/evaluate/",
            json={"instance": instance, "tool": tool, "params": params},
            headers=self.headers,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                body = response.json()
                LOG.append(
                    {
                        "kind": "evaluate",
                        "decision_id": body["decision_id"],
                        "decision": body["decision"],
                        "approval": body["approval"],
                    }
                )
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class Operators(FastHttpUser):
    """A few people: read the directory, look at the pending approvals, approve the oldest."""

    fixed_count = OPERATORS
    wait_time = constant_pacing(5)

    def on_start(self):
        self.ui = {"Cookie": f"sessionid={CONFIG['session']}"}
        self.api = {"Authorization": f"Bearer {CONFIG['approver_key']}"}
        _stagger(5)

    @task
    def work(self):
        self.client.get("/directory/versions/?page_size=50", headers=self.ui, name="directory page")
        with self.client.get(
            "/api/v1/approvals/?status=PENDING&ordering=requested_at&page_size=5",
            headers=self.api,
            name="approvals pending",
            catch_response=True,
        ) as response:
            rows = response.json().get("results", []) if response.status_code == 200 else []
        if rows:
            approval = rows[random.randrange(len(rows))]["id"]
            with self.client.post(
                f"/api/v1/approvals/{approval}/approve/",
                json={"note": "load"},
                headers=self.api,
                name="approval decision",
                catch_response=True,
            ) as response:
                if response.status_code == 200:
                    LOG.append({"kind": "approve", "id": approval})
                    response.success()
                elif response.status_code == 409:  # another operator decided it first: not an error
                    response.success()
                else:
                    response.failure(f"{response.status_code}: {response.text[:200]}")


@events.quitting.add_listener
def _write_log(environment, **kwargs):
    with open(CONFIG["log"], "w") as handle:
        for entry in LOG:
            handle.write(json.dumps(entry) + "\n")
