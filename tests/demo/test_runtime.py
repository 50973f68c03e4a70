"""The demo runtime (demo/runtime.py, ``manage.py demo_runtime``) against a live ARM over real HTTP:
heartbeats, decisions, approvals capped and completed once approved, usage arriving; and how it
survives a server that does not answer (one line, back off, carry on) or refuses a call."""

import http.server
import json
import random
import threading
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from demo.keys import read_keys_file
from demo.runtime import DemoRuntime, HttpTransport, Refused, Unavailable, load_plan
from ledger.models import UsageEntry
from policies.models import PolicyDecision
from registry.models import AgentInstance
from tenancy.context import Actor
from tests.ledger.liveserver import live_server_in_transaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(tmp_path):
    keys = tmp_path / "demo-runtime.json"
    call_command("seed_demo", "--keys-file", str(keys), stdout=StringIO())
    return keys


def runtime_refs(hosts) -> list[str]:
    return [agent.key_ref for host in hosts for agent in host.agents]


def open_approvals(refs):
    return ApprovalRequest.objects.filter(
        requester__in=refs, status=ApprovalStatus.PENDING, expires_at__gt=timezone.now()
    )


def test_the_runtime_keeps_the_demo_alive_through_the_rest_api(seeded):
    hosts = load_plan(read_keys_file(seeded))
    refs = runtime_refs(hosts)
    beating = [pk for host in hosts for pk in host.beating]
    beaten_at = dict(AgentInstance.objects.filter(pk__in=beating).values_list("pk", "last_heartbeat_at"))
    lines = []
    with live_server_in_transaction() as url:
        runtime = DemoRuntime(
            hosts,
            HttpTransport(url),
            max_pending=2,
            rng=random.Random(7),
            log=lines.append,
            heartbeat_every=0,
            usage_every=0,
            poll_every=0,
        )
        reached_cap = False
        for _ in range(60):
            runtime.tick()
            waiting = open_approvals(refs).count()
            assert waiting <= 2
            reached_cap = reached_cap or waiting == 2
        assert reached_cap

        # Heartbeats: every running instance beat again, through the batch endpoint.
        for instance in AgentInstance.objects.filter(pk__in=beating):
            assert instance.last_heartbeat_at > beaten_at[instance.pk], instance.name
        # Decisions of every kind, made by the agents' own bound keys.
        decisions = PolicyDecision.objects.filter(actor__in=refs)
        assert set(decisions.values_list("decision", flat=True)) == {"ALLOW", "DENY", "NEEDS_APPROVAL"}
        # Usage: one entry per allowed call, attributed to its decision.
        allowed = set(decisions.filter(decision="ALLOW").values_list("pk", flat=True))
        usage = UsageEntry.objects.filter(idempotency_key__startswith="demo-rt-usage-")
        assert set(usage.values_list("decision_id", flat=True)) == allowed

        # A human approves one of the waiting calls: the runtime asks again with it and it goes through.
        approval = open_approvals(refs).select_related("tenant").first()
        approver = get_user_model().objects.get(username=f"{approval.tenant.slug}-approver")
        approval_decide(approval=approval, approve=True, actor=Actor.for_user(approver, ["approver"]))
        runtime.tick()
    approval.refresh_from_db()
    assert approval.used_at is not None
    granted = PolicyDecision.objects.get(approval=approval, decision="ALLOW")
    assert granted.actor == approval.requester
    assert "approval_granted" in [r["code"] for r in granted.reasons]
    assert UsageEntry.objects.filter(decision=granted).count() == 1
    assert lines == []  # nothing went wrong, nothing was said


def test_after_a_restart_it_adopts_the_approvals_it_left_waiting(seeded):
    hosts = load_plan(read_keys_file(seeded))
    refs = runtime_refs(hosts)
    with live_server_in_transaction() as url:
        first = DemoRuntime(hosts, HttpTransport(url), max_pending=2, rng=random.Random(3), log=print, poll_every=0)
        for _ in range(40):
            first.tick()
        left = set(open_approvals(refs).values_list("pk", flat=True))
        assert left
        second = DemoRuntime(load_plan(read_keys_file(seeded)), HttpTransport(url), max_pending=2, log=print)
        second.tick()
    assert {str(pk) for pk in left} <= set(second.pending)


class FakeServer:
    """Answers like ARM; ``down`` calls fail first (connection refused), ``refuse`` paths answer 401."""

    def __init__(self, down=0, refuse=()):
        self.down, self.refuse, self.calls = down, refuse, []

    def __call__(self, method, path, key, body=None):
        self.calls.append(path)
        if self.down:
            self.down -= 1
            raise Unavailable("[Errno 111] Connection refused")
        if any(path.startswith(p) for p in self.refuse):
            raise Refused(401, "authentication_failed", "Invalid API key.")
        if path.startswith("/api/v1/approvals/"):
            return {"results": []}
        if path == "/api/v1/instances/heartbeats/":
            return {"ok": len(body["instances"]), "results": [{"id": i, "result": "ok"} for i in body["instances"]]}
        if path == "/api/v1/usage/":
            return {"accepted": len(body["entries"])}
        return {"decision": "ALLOW", "decision_id": f"d{len(self.calls)}", "approval": None}


class Waits:
    """A stop event that records the waits instead of sleeping."""

    def __init__(self):
        self.waits = []

    def is_set(self):
        return False

    def wait(self, seconds):
        self.waits.append(seconds)


def plan():
    agent = {
        "instance": "i-1",
        "name": "agent-1",
        "key": "arm_abc123abc123_secret",
        "tools": [{"name": "crm.lookup", "risk": "low", "data_scopes": ["crm:read"]}],
        "models": [["openai", "gpt-4.1", 1.0]],
    }
    return load_plan(
        {"hosts": [{"tenant": "acme", "host_key": "arm_host00host00_s", "beating": ["i-1"], "agents": [agent]}]}
    )


def test_a_server_that_does_not_answer_costs_one_line_and_a_growing_back_off():
    server, stop, lines = FakeServer(down=4), Waits(), []
    runtime = DemoRuntime(plan(), server, rng=random.Random(1), log=lines.append)

    runtime.run(interval=5, iterations=7, stop=stop)

    assert stop.waits == [1, 2, 4, 8, 5, 5, 5]
    assert len(lines) == 2
    assert lines[0].startswith("demo runtime: the server does not answer yet ([Errno 111] Connection refused)")
    assert lines[1] == "demo runtime: the server answers; carrying on"
    assert server.calls.count("/api/v1/policy/evaluate/") == 3  # it carried on

    server.down = 2
    runtime.run(interval=5, iterations=4, stop=stop)
    assert stop.waits[7:] == [1, 2, 5, 5]
    assert lines[2].startswith("demo runtime: the server is not answering")
    assert lines[3] == "demo runtime: the server answers again; carrying on"


def test_a_refused_call_is_said_once_and_the_rest_goes_on():
    server, lines = FakeServer(refuse=("/api/v1/policy/evaluate/",)), []
    runtime = DemoRuntime(plan(), server, rng=random.Random(1), log=lines.append, heartbeat_every=0)

    runtime.run(interval=0, iterations=5, stop=Waits())

    assert lines == [
        "demo runtime: evaluation refused (401 authentication_failed: Invalid API key.); skipped (said once)"
    ]
    assert server.calls.count("/api/v1/policy/evaluate/") == 5
    assert server.calls.count("/api/v1/instances/heartbeats/") == 5


class _Answer503(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.dumps({"code": "database_unavailable", "message": "The database is unavailable."}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_http_transport_tells_unavailable_from_refused():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Answer503)
    threading.Thread(target=server.handle_request, daemon=True).start()
    with pytest.raises(Unavailable, match="HTTP 503 database_unavailable"):
        HttpTransport(f"http://127.0.0.1:{server.server_port}")("POST", "/api/v1/usage/", "k", {})
    server.server_close()
    with pytest.raises(Unavailable):  # nothing listens there any more
        HttpTransport(f"http://127.0.0.1:{server.server_port}", timeout=2)("GET", "/api/health/", "k")


def test_the_http_transport_reports_a_refusal_with_its_code(seeded):
    with live_server_in_transaction() as url, pytest.raises(Refused) as refused:
        HttpTransport(url)("POST", "/api/v1/policy/evaluate/", "arm_nothere00000_nope", {})
    assert refused.value.status == 401


def test_the_command_runs_against_a_server_and_stops(seeded):
    out = StringIO()
    with live_server_in_transaction() as url:
        call_command(
            "demo_runtime",
            "--url",
            url,
            "--keys-file",
            str(seeded),
            "--iterations",
            "2",
            "--interval",
            "0.01",
            stdout=out,
        )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"demo runtime: {url}, 2 tenant(s), ")
    assert lines[-1] == "demo runtime: stopped"
    assert PolicyDecision.objects.filter(actor__startswith="key:").count() == 2


def test_the_command_needs_the_keys_seed_demo_writes(tmp_path):
    with pytest.raises(CommandError, match="run `manage.py seed_demo` first"):
        call_command("demo_runtime", "--keys-file", str(tmp_path / "missing.json"), "--iterations", "1")
