"""The fleet mix ``manage.py bench --load`` drives with locust (headless, 127.0.0.1 only).

Configured by the JSON file named in ``ARM_BENCH_LOAD_CONFIG`` (written by ``bench.load``):
``agents`` agents each heartbeat every 30 s and evaluate one tool call a minute (1 in 20 needs an
approval), spread over a few locust users each pacing its share; a few operators read the directory
page and decide pending approvals. Every 2xx write is logged to ``log`` so the run can be checked for
lost writes afterwards. Not imported by Django."""

import itertools
import json
import os
import random

from locust import FastHttpUser, constant_pacing, events, task

CONFIG = json.load(open(os.environ["ARM_BENCH_LOAD_CONFIG"]))
AGENTS = CONFIG["agents"]
INSTANCES = CONFIG["instances"]
HB_USERS, EVAL_USERS, OPERATORS = CONFIG["heartbeat_users"], CONFIG["evaluate_users"], CONFIG["operators"]
LOG: list = []
_agent_counter = itertools.count()
_eval_counter = itertools.count()


def _instance_of(agent: int) -> str:
    return INSTANCES[agent % len(INSTANCES)]


class Heartbeats(FastHttpUser):
    """Each user beats for AGENTS / HB_USERS agents in turn: one request every 30 * HB_USERS / AGENTS s."""

    fixed_count = HB_USERS
    wait_time = constant_pacing(30 * HB_USERS / AGENTS)

    def on_start(self):
        self.agents = itertools.cycle(range(next(_agent_counter), AGENTS, HB_USERS))
        self.headers = {"Authorization": f"Bearer {CONFIG['runtime_key']}"}

    @task
    def beat(self):
        instance = _instance_of(next(self.agents))
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


class Evaluations(FastHttpUser):
    """Each user evaluates for AGENTS / EVAL_USERS agents in turn: one call a minute per agent."""

    fixed_count = EVAL_USERS
    wait_time = constant_pacing(60 * EVAL_USERS / AGENTS)

    def on_start(self):
        self.agents = itertools.cycle(range(random.randrange(EVAL_USERS), AGENTS, EVAL_USERS))
        self.headers = {"Authorization": f"Bearer {CONFIG['runtime_key']}"}

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
