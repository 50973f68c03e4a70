"""End to end, the event types produced by the worker's own schedules and by the registry's evaluation
requests: a real ``manage.py worker`` process, a real local HTTP receiver, every request verified with the
Standard Webhooks reference library, on SQLite and PostgreSQL (``world``, tests/notifications/conftest.py).

- The schedules run inside the worker (``ARM_SCHEDULE_INTERVALS`` of a second): approval expiry
  (approval.expired), the stale-heartbeat sweep (instance.stale, then instance.recovered after a
  heartbeat), provider health polling against a local health endpoint that fails, then answers
  (provider.unhealthy, provider.recovered).
- budget.forecast_to_cross: its record as the ``budget_alerts`` schedule writes it (the forecast rule is
  tested in tests/schedules and tests/ledger); from there on the same path.
- evaluation.requested, the whole loop: a version enters TESTING, the event carries a signed single-use
  callback URL, the "CI" posts a PASS to it, the evaluation is recorded and the version can be promoted;
  a replay is refused.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from standardwebhooks.webhooks import Webhook

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE = 60.0

SCHEDULES = "approval_expiry=1,instance_health=1,provider_health=1,budget_alerts=0,integrity_sweep=0,audit_checkpoint=0"

SETUP = """
from datetime import timedelta
from django.utils import timezone
from tenancy.context import Actor
from tests.factories import TenantFactory, ProviderFactory, make_api_key
from tests.policies.factories import make_instance
from notifications import services

system = Actor.system()
tenant = TenantFactory(slug="acme", name="Acme")
endpoint, secret = services.endpoint_create(
    tenant=tenant, actor=system, name="receiver", kind="webhook", url=os.environ["RECEIVER_URL"],
    event_types=os.environ["EVENT_TYPES"].split(","),
)
"""


class HealthEndpoint:
    """A provider's health endpoint on 127.0.0.1 answering ``status`` to every GET (changeable)."""

    def __init__(self):
        self.status = 503
        self.gets = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's naming
                endpoint.gets += 1
                body = b'{"status": "ok"}' if endpoint.status == 200 else b"down"
                self.send_response(endpoint.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/healthz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def health_endpoint():
    endpoint = HealthEndpoint()
    yield endpoint
    endpoint.stop()


def arrivals(receiver, secret: str, types: set[str], timeout: float = DEADLINE) -> dict[str, dict]:
    """Wait until an event of each of ``types`` arrived; every request must verify under ``secret``.
    Returns {type: the first such event's body}."""
    verifier = Webhook(secret)
    deadline = time.monotonic() + timeout
    while True:
        with receiver.lock:
            received = list(receiver.received)
        bodies = [verifier.verify(item.body, item.headers) for item in received]  # raises unless signed right
        found = {}
        for body in bodies:
            found.setdefault(body["type"], body)
        if types <= found.keys():
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"missing {sorted(types - found.keys())}; received {sorted(found)}")
        time.sleep(0.02)


def test_the_worker_schedules_events_reach_the_receiver_signed(world, workers, receiver, health_endpoint):
    """approval.expired, instance.stale, provider.unhealthy from the schedules the worker runs; then a
    heartbeat and a health endpoint that answers again: instance.recovered, provider.recovered."""
    types = "approval.expired,instance.stale,instance.recovered,provider.unhealthy,provider.recovered"
    world.env.update(RECEIVER_URL=receiver.url, EVENT_TYPES=types, HEALTH_URL=health_endpoint.url)
    made = world.run(
        SETUP
        + """
from approvals.services import approval_open
instance = make_instance(tenant, name="support-eu-1", last_heartbeat_at=timezone.now() - timedelta(hours=2))
key, _ = make_api_key(tenant, ["runtime"])
approval, _ = approval_open(
    tenant=tenant, instance=instance, tool="email.send", params={"to": "x"}, params_hash="e" * 64, risk="high",
    reasons=[{"code": "needs_approval", "message": "high risk"}], timeout_seconds=1, actor=Actor.for_key(key),
)
provider = ProviderFactory(
    tenant=tenant, name="k8s-eu", health_endpoint=os.environ["HEALTH_URL"], health_interval_seconds=5
)
result = {"secret": secret, "instance": str(instance.pk), "provider": str(provider.pk), "approval": str(approval.pk)}
"""
    )
    (worker,) = workers.start(1, ARM_SCHEDULE_INTERVALS=SCHEDULES)

    first = arrivals(receiver, made["secret"], {"approval.expired", "instance.stale", "provider.unhealthy"})

    assert first["approval.expired"]["data"]["approval"]["id"] == made["approval"]
    assert first["approval.expired"]["data"]["approval"]["status"] == "EXPIRED"
    assert first["instance.stale"]["data"]["instance"]["id"] == made["instance"]
    assert first["provider.unhealthy"]["data"]["provider"]["id"] == made["provider"]
    assert not {"instance.recovered", "provider.recovered"} & {
        json.loads(item.body)["type"] for item in receiver.received
    }

    health_endpoint.status = 200
    world.run(
        """
from django.utils import timezone
from registry.models import AgentInstance, Provider
from registry.services import instance_heartbeat
instance = AgentInstance.objects.get(pk=os.environ["INSTANCE"])
instance_heartbeat(tenant=instance.tenant, instance_id=instance.pk)
Provider.objects.filter(pk=os.environ["PROVIDER"]).update(health_next_check_at=timezone.now())  # due now
result = {}
""".replace('os.environ["INSTANCE"]', repr(made["instance"])).replace('os.environ["PROVIDER"]', repr(made["provider"]))
    )

    second = arrivals(receiver, made["secret"], {"instance.recovered", "provider.recovered"})
    assert second["instance.recovered"]["data"]["instance"]["id"] == made["instance"]
    assert second["provider.recovered"]["data"]["provider"]["id"] == made["provider"]
    assert all(json.loads(item.body)["type"] in types.split(",") for item in receiver.received)
    assert worker.stop() == 0


def test_a_budget_forecast_crossing_reaches_the_receiver(world, workers, receiver):
    world.env.update(RECEIVER_URL=receiver.url, EVENT_TYPES="budget.forecast_to_cross")
    (worker,) = workers.start(1, "--no-schedules")
    made = world.run(
        SETUP
        + """
from decimal import Decimal
from audit.choices import EventType
from audit.services import record_change
from ledger.models import Budget
budget = Budget.objects.create(
    tenant=tenant, name="monthly", scope="tenant", period="monthly", amount_usd=Decimal("100")
)
# the record the budget_alerts schedule writes when the run-rate forecast crosses the amount (schedules/budgets.py)
record_change(tenant=tenant, event_type=EventType.BUDGET_FORECAST_CROSSING, target=budget, actor=system, payload={
    "budget": "monthly", "period": "monthly", "period_start": "2026-12-01", "spend_usd": "41.000000",
    "forecast_usd": "131.200000", "amount_usd": "100.00", "runout_date": "2026-12-24"})
result = {"secret": secret, "budget": str(budget.pk)}
"""
    )
    body = arrivals(receiver, made["secret"], {"budget.forecast_to_cross"})["budget.forecast_to_cross"]
    assert body["data"]["tenant"] == "acme"
    assert json.dumps(body["data"]).count(made["budget"]) >= 1
    assert worker.stop() == 0


CALLBACK = """
from django.test import Client
from django.test.utils import override_settings
from registry.models import AgentVersion
with override_settings(ALLOWED_HOSTS=["*"]):
    client = Client()
    first = client.post(PATH, {"result": "PASS", "score": 0.93, "url": "https://ci.example.com/runs/1"},
                        content_type="application/json")
    replay = client.post(PATH, {"result": "FAIL"}, content_type="application/json")
version = AgentVersion.objects.get(pk=VERSION)
result = {"first": [first.status_code, first.json()], "replay": [replay.status_code, replay.json()],
          "eval_status": version.eval_status, "evaluations": version.evaluations.count()}
from registry.services import version_transition
from tenancy.context import Actor
version_transition(version=version, to="CANDIDATE", actor=Actor(ref="user:releaser", roles=frozenset({"operator"})))
version.refresh_from_db()
result["promoted_to"] = version.lifecycle_state
"""


def test_evaluation_requested_round_trip_through_the_worker(world, workers, receiver):
    """A version enters TESTING; the CI receives evaluation.requested (signed), posts PASS to the callback
    URL it carries; the result is recorded, the version can be promoted, and the URL takes no second result."""
    world.env.update(RECEIVER_URL=receiver.url, EVENT_TYPES="evaluation.requested")
    (worker,) = workers.start(1, "--no-schedules")
    made = world.run(
        SETUP
        + """
from registry.services import version_transition
from tests.factories import TemplateFactory, VersionFactory
version = VersionFactory(template=TemplateFactory(tenant=tenant, name="support-agent"), version_label="2.0.0")
version_transition(version=version, to="TESTING", actor=Actor(ref="user:dev", roles=frozenset({"operator"})))
result = {"secret": secret, "version": str(version.pk), "genome_hash": version.genome_hash}
"""
    )
    body = arrivals(receiver, made["secret"], {"evaluation.requested"})["evaluation.requested"]
    data = body["data"]
    assert data["version"]["id"] == made["version"] and data["version"]["label"] == "2.0.0"
    assert data["genome_hash"] == made["genome_hash"] and data["version"]["lifecycle_state"] == "TESTING"
    callback = data["callback"]
    assert callback["method"] == "POST" and callback["url"].startswith("https://arm.test/api/v1/evaluation-callbacks/")
    assert worker.stop() == 0

    answer = world.run(
        CALLBACK.replace("PATH", repr(urlsplit(callback["url"]).path)).replace("VERSION", repr(made["version"]))
    )

    assert answer["first"][0] == 201 and answer["first"][1]["eval_status"] == "PASS", answer
    assert answer["replay"][0] == 409 and answer["replay"][1]["code"] == "callback_used"
    assert answer["eval_status"] == "PASS" and answer["evaluations"] == 1
    assert answer["promoted_to"] == "CANDIDATE"
