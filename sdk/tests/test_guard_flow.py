"""The guard's way through an approval, against a scripted ARM: the long-poll wait endpoint when the
server has it, polling with backoff when it answers 404; the approval's outcome as the right error; the
re-evaluation with the same key and the approval's id; the decorator's params."""

import httpx
import pytest

import arm_sdk
from arm_sdk import ApprovalDenied, ApprovalPending, ApprovalTimeout, ApprovalWithdrawn, Denied, NotFound

from fake_arm import Recorder, allow, body

NEEDS = {
    "decision": "NEEDS_APPROVAL",
    "risk": "high",
    "reasons": [{"code": "needs_approval", "message": "high risk"}],
    "approval": "ap-1",
    "decision_id": "d-1",
    "policy": None,
}


class ScriptedArm:
    """Evaluate answers NEEDS_APPROVAL until the approval is decided; the approval reads PENDING for
    ``pending_reads`` reads, then ``final``."""

    def __init__(self, *, final="APPROVED", pending_reads=2, has_wait=True, note="", holds=True):
        self.final, self.pending_reads, self.has_wait, self.note = final, pending_reads, has_wait, note
        self.holds = holds  # a wait server holds a wait until its timeout
        self.reads = 0
        self.recorder = None

    def approval(self):
        self.reads += 1
        status = "PENDING" if self.reads <= self.pending_reads else self.final
        return {"id": "ap-1", "status": status, "decided_by": "user:alice", "note": self.note}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/policy/evaluate/":
            if body(request).get("approval") == "ap-1":
                return httpx.Response(200, json=allow(replay=False, decided_by="user:alice"))
            return httpx.Response(200, json=NEEDS)
        if path == "/api/v1/approvals/ap-1/wait/":
            if self.has_wait is False:
                return httpx.Response(404, json={"code": "not_found", "message": "Not found."})
            if self.has_wait == "runserver":
                return httpx.Response(
                    503, json={"code": "wait_unavailable", "message": "poll"}, headers={"Retry-After": "5"}
                )
            approval = self.approval()
            state = "timeout" if approval["status"] == "PENDING" else "decided"
            if state == "timeout" and self.holds:
                self.recorder.now += int(request.url.params["timeout"])
            return httpx.Response(200, json=approval, headers={"X-ARM-Wait": state})
        if path == "/api/v1/approvals/ap-1/":
            return httpx.Response(200, json=self.approval())
        return httpx.Response(404, json={"code": "not_found", "message": "Not found."})


def paths(recorder):
    return [r.url.path for r in recorder.requests]


def recorder(script: ScriptedArm) -> Recorder:
    arm = Recorder(script)
    script.recorder = arm
    return arm


def test_an_approved_call_waits_on_the_wait_endpoint_then_is_allowed_through_the_approval():
    arm = recorder(ScriptedArm())
    decision = arm.client().guard("email_send", {"to": "a@b"})
    assert decision.allowed and decision.decided_by == "user:alice"
    assert paths(arm) == ["/api/v1/policy/evaluate/", *["/api/v1/approvals/ap-1/wait/"] * 3, "/api/v1/policy/evaluate/"]
    first, last = body(arm.requests[0]), body(arm.requests[-1])
    assert last["idempotency_key"] == first["idempotency_key"] and last["approval"] == "ap-1"
    assert arm.sleeps == []  # the server held the requests; the client did not sleep


def test_without_a_wait_endpoint_the_guard_polls_with_growing_delays():
    arm = recorder(ScriptedArm(has_wait=False, pending_reads=4))
    client = arm.client()
    assert client.guard("email_send", {"to": "a@b"}).allowed
    assert paths(arm).count("/api/v1/approvals/ap-1/wait/") == 1  # asked once, then remembered
    assert arm.sleeps == [0.5, 1.0, 2.0, 4.0]
    arm.requests.clear()
    client.wait_for_approval("ap-1")
    assert "/api/v1/approvals/ap-1/wait/" not in paths(arm)


def test_a_server_that_cannot_hold_waits_is_polled_without_retrying_its_503():
    arm = recorder(ScriptedArm(has_wait="runserver", pending_reads=3))
    assert arm.client().guard("email_send", {}).allowed
    assert paths(arm).count("/api/v1/approvals/ap-1/wait/") == 1  # not retried: it says "poll"
    assert arm.sleeps == [0.5, 1.0, 2.0]  # the poll's backoff, not Retry-After


def test_a_wait_answered_early_is_paced_not_repeated_at_once():
    arm = recorder(ScriptedArm(pending_reads=3, holds=False))
    assert arm.client().guard("email_send", {}).allowed
    assert paths(arm).count("/api/v1/approvals/ap-1/wait/") == 4
    assert arm.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("final", "error", "code"),
    [("DENIED", ApprovalDenied, "approval_denied"), ("WITHDRAWN", ApprovalWithdrawn, "approval_withdrawn")],
)
def test_a_refused_approval_raises_its_error_without_evaluating_again(final, error, code):
    arm = recorder(ScriptedArm(final=final, note="not this customer"))
    with pytest.raises(error) as raised:
        arm.client().guard("email_send", {"to": "a@b"})
    assert raised.value.code == code and "not this customer" in raised.value.message
    assert isinstance(raised.value, Denied) and raised.value.decision.approval == "ap-1"
    assert paths(arm).count("/api/v1/policy/evaluate/") == 1


def test_at_the_deadline_a_pending_approval_raises_approval_timeout_and_stays_open():
    arm = recorder(ScriptedArm(pending_reads=10**6))
    with pytest.raises(ApprovalTimeout) as raised:
        arm.client().guard("email_send", {}, timeout=0)
    assert raised.value.approval_id == "ap-1"
    assert "/api/v1/approvals/ap-1/withdraw/" not in paths(arm)


def test_wait_false_raises_approval_pending_at_once():
    arm = recorder(ScriptedArm())
    with pytest.raises(ApprovalPending) as raised:
        arm.client().guard("email_send", {}, wait=False)
    assert raised.value.approval_id == "ap-1" and raised.value.reasons[0].code == "needs_approval"
    assert paths(arm) == ["/api/v1/policy/evaluate/"]


def test_a_wait_for_an_approval_that_does_not_exist_is_not_found():
    arm = Recorder(lambda request: httpx.Response(404, json={"code": "not_found", "message": "Not found."}))
    with pytest.raises(NotFound):
        arm.client().wait_for_approval("nope")


def test_a_deny_about_the_calls_approval_raises_the_approval_error():
    deny = {**NEEDS, "decision": "DENY", "reasons": [{"code": "approval_expired", "message": "expired"}]}
    arm = Recorder(lambda request: httpx.Response(200, json=deny))
    with pytest.raises(arm_sdk.ApprovalExpired):
        arm.client().guard("email_send", {})


def test_the_decorator_sends_the_bound_arguments_and_runs_the_body_only_when_allowed():
    arm = Recorder(lambda request: httpx.Response(200, json=allow()))
    client = arm.client()
    ran = []

    class Mailer:
        @client.guarded("email.send", exclude=("secret",), data_scopes=["email:send"])
        def send(self, to, subject="hi", *, secret=None, **headers):
            ran.append(to)
            return "sent"

    assert Mailer().send("a@b", secret="s", priority=(1, 2)) == "sent"
    sent = body(arm.requests[0])
    assert sent["tool"] == "email.send" and sent["data_scopes"] == ["email:send"]
    assert sent["params"] == {"to": "a@b", "subject": "hi", "priority": [1, 2]}
    assert ran == ["a@b"]

    deny = {**NEEDS, "decision": "DENY", "reasons": [{"code": "tool_not_allowed", "message": "no"}]}
    arm.handler = lambda request: httpx.Response(200, json=deny)
    with pytest.raises(Denied) as raised:
        Mailer().send("c@d")
    assert raised.value.code == "tool_not_allowed" and ran == ["a@b"]


@pytest.mark.anyio
async def test_async_functions_are_guarded_with_the_async_client():
    arm = recorder(ScriptedArm(has_wait=False, pending_reads=1))
    client = arm.async_client()

    @arm_sdk.guarded(client=client)
    async def refund_issue(order: str, amount: str) -> str:
        return f"refunded {order}"

    assert await refund_issue("o-1", "12.00") == "refunded o-1"
    assert body(arm.requests[0])["tool"] == "refund_issue"
    assert body(arm.requests[-1])["approval"] == "ap-1" and arm.sleeps == [0.5]


def test_a_sync_function_cannot_be_guarded_by_the_async_client():
    client = recorder(ScriptedArm()).async_client()
    with pytest.raises(TypeError, match="sync function"):
        arm_sdk.guarded(client=client)(lambda: None)


def test_a_resumed_run_asks_with_the_same_key_and_goes_through_its_approval():
    """Against the protocol's idempotency rules (``ContractArm``): a second process resuming the run derives
    the same key from the run id and ARM answers from the approval, opening no second one."""
    from fake_arm import ContractArm

    contract = ContractArm()
    with pytest.raises(ApprovalPending) as raised:
        Recorder(contract).client().guard("email_send", {"to": "a@b"}, run_id="thread-1/call-1", wait=False)
    contract.decide(raised.value.approval_id, approve=True)
    resumed = Recorder(contract).client().guard("email_send", {"to": "a@b"}, run_id="thread-1/call-1", wait=False)
    assert resumed.allowed and resumed.approval == raised.value.approval_id
    assert len(contract.approvals) == 1 and len({e["idempotency_key"] for e in contract.evaluations}) == 1


def test_waits_go_to_the_wait_server_when_it_has_its_own_address():
    arm = recorder(ScriptedArm(pending_reads=1))
    http = httpx.Client(base_url="http://arm.test", transport=httpx.MockTransport(arm))
    client = arm_sdk.Client("http://arm.test", "k", "inst-1", wait_url="http://arm.test:8001/", http=http)
    client._clock = lambda: arm.now
    assert client.guard("email_send", {}).allowed
    hosts = {(r.url.port, r.url.path.endswith("/wait/")) for r in arm.requests}
    assert hosts == {(None, False), (8001, True)}
    assert all(r.headers["Authorization"] == "Bearer k" for r in arm.requests)
