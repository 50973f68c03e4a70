"""Retries: 503 (ARM rolled the request back) and connection failures are tried again with backoff,
honouring Retry-After; an evaluation keeps its idempotency key across them; a write that may have reached
ARM is not sent twice unless it is idempotent; errors carry ARM's code and message."""

import httpx
import pytest

from arm_sdk import Forbidden, IdempotencyConflict, Unavailable

from fake_arm import Recorder, allow, body


def busy(retry_after="2"):
    return httpx.Response(
        503, json={"code": "database_busy", "message": "Retry the request"}, headers={"Retry-After": retry_after}
    )


def test_a_503_is_retried_after_its_retry_after_with_the_same_idempotency_key():
    answers = [busy("2"), busy("3"), None]

    def handler(request):
        answer = answers.pop(0)
        return answer or httpx.Response(200, json=allow())

    arm = Recorder(handler)
    decision = arm.client().evaluate("crm_lookup", {"q": 1})
    assert decision.allowed
    keys = {body(r)["idempotency_key"] for r in arm.requests}
    assert len(arm.requests) == 3 and keys == {decision.idempotency_key}
    assert arm.sleeps[0] >= 2 and arm.sleeps[1] >= 3  # Retry-After honoured


def test_a_connection_that_could_not_be_made_is_retried_for_any_request():
    attempts = []

    def handler(request):
        attempts.append(request)
        if len(attempts) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={"id": "x"})

    arm = Recorder(handler)
    assert arm.client().api("POST", "/api/v1/instances/", json={}) == {"id": "x"}
    assert len(attempts) == 3 and len(arm.sleeps) == 2


def test_a_lost_answer_is_retried_for_an_evaluation_but_not_for_a_plain_write():
    def handler(request):
        raise httpx.ReadTimeout("no answer", request=request)

    arm = Recorder(handler)
    client = arm.client(retries=2)
    with pytest.raises(Unavailable):
        client.evaluate("crm_lookup", {})
    assert len(arm.requests) == 3  # idempotent: the key makes a second copy harmless
    arm.requests.clear()
    with pytest.raises(Unavailable):
        client.api("POST", "/api/v1/instances/", json={})
    assert len(arm.requests) == 1  # may have been created: not sent again


def test_after_the_last_retry_the_503_is_raised_with_armss_code():
    arm = Recorder(lambda request: busy("1"))
    with pytest.raises(Unavailable) as raised:
        arm.client(retries=2).evaluate("crm_lookup", {})
    assert raised.value.code == "database_busy" and raised.value.status == 503
    assert len(arm.requests) == 3


def test_backoff_doubles_and_a_long_retry_after_is_capped():
    arm = Recorder(lambda request: busy("3600"))
    with pytest.raises(Unavailable):
        arm.client(retries=3, max_retry_after=5).evaluate("crm_lookup", {})
    assert arm.sleeps == [5, 5, 5]
    arm = Recorder(lambda request: httpx.Response(503))
    with pytest.raises(Unavailable):
        arm.client(retries=4, backoff=1, max_backoff=4).evaluate("crm_lookup", {})
    caps = [1, 2, 4, 4]
    assert all(cap / 2 <= slept <= cap for slept, cap in zip(arm.sleeps, caps, strict=True))


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [(403, "instance_binding", Forbidden), (409, "idempotency_conflict", IdempotencyConflict)],
)
def test_errors_carry_the_code_and_message(status, code, cls):
    arm = Recorder(lambda request: httpx.Response(status, json={"code": code, "message": "because"}))
    with pytest.raises(cls) as raised:
        arm.client().evaluate("crm_lookup", {})
    assert (raised.value.code, raised.value.message, raised.value.status) == (code, "because", status)
    assert len(arm.requests) == 1


@pytest.mark.anyio
async def test_the_async_client_retries_the_same_way():
    answers = [busy("1"), None]
    arm = Recorder(lambda request: answers.pop(0) or httpx.Response(200, json=allow()))
    async with arm.async_client() as client:
        decision = await client.evaluate("crm_lookup", {"q": 1})
    assert decision.allowed and len(arm.requests) == 2 and arm.sleeps[0] >= 1
    assert len({body(r)["idempotency_key"] for r in arm.requests}) == 1
