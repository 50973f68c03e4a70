"""Normalisation happens once, at the SDK's edge: call names per the runtime protocol, params as plain
JSON, estimates as decimal strings, and idempotency keys that name one call of one run."""

import dataclasses
import enum
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from arm_sdk.normalize import (
    CALL_NAME,
    Call,
    call_name,
    derive_idempotency_key,
    normalize_estimate,
    normalize_params,
)


@pytest.mark.parametrize(
    ("tool", "expected"),
    [("email.send", "email_send"), ("crm.lookup/v2", "crm_lookup_v2"), ("already_ok-1", "already_ok-1")],
)
def test_call_names_replace_every_character_outside_the_protocol_set(tool, expected):
    assert call_name(tool) == expected
    assert CALL_NAME.match(call_name(tool))


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Address:
    city: str
    zip: tuple


def test_params_become_the_json_arm_stores():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    params = {
        "amount": Decimal("12.50"),
        "ids": (1, 2),
        "tags": {"b", "a"},
        "when": when,
        "day": date(2026, 1, 2),
        "id": ident,
        "colour": Colour.RED,
        "big": 2**60,
        "blob": b"\x00\x01",
        "address": Address("Oslo", ("0150",)),
    }
    assert normalize_params(params) == {
        "amount": "12.50",
        "ids": [1, 2],
        "tags": ["a", "b"],
        "when": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
        "id": str(ident),
        "colour": "red",
        "big": str(2**60),
        "blob": "AAE=",
        "address": {"city": "Oslo", "zip": ["0150"]},
    }


@pytest.mark.parametrize(
    "bad", [{"x": float("nan")}, {"x": Decimal("Infinity")}, {1: "key not a string"}, {"x": object()}]
)
def test_values_that_are_not_json_are_refused_naming_the_path(bad):
    with pytest.raises(ValueError, match="params"):
        normalize_params(bad)


def test_estimates_are_decimal_strings():
    assert normalize_estimate(0.1) == "0.1"
    assert normalize_estimate(Decimal("1.2500")) == "1.2500"
    assert normalize_estimate(3) == "3"
    assert normalize_estimate(None) is None
    with pytest.raises(ValueError):
        normalize_estimate(-1)


def test_a_run_id_derives_one_key_per_call_whatever_the_spelling_or_param_order():
    key = derive_idempotency_key(
        instance="i", tool="email.send", params={"a": 1, "b": [1, 2]}, run_id="thread-7/call-1"
    )
    same = derive_idempotency_key(
        instance="i", tool="email_send", params={"b": [1, 2], "a": 1}, run_id="thread-7/call-1"
    )
    assert key == same and len(key) <= 200
    others = {
        derive_idempotency_key(instance="j", tool="email.send", params={"a": 1, "b": [1, 2]}, run_id="thread-7/call-1"),
        derive_idempotency_key(instance="i", tool="crm.lookup", params={"a": 1, "b": [1, 2]}, run_id="thread-7/call-1"),
        derive_idempotency_key(instance="i", tool="email.send", params={"a": 2, "b": [1, 2]}, run_id="thread-7/call-1"),
        derive_idempotency_key(instance="i", tool="email.send", params={"a": 1, "b": [1, 2]}, run_id="thread-7/call-2"),
    }
    assert key not in others and len(others) == 4


def test_without_a_run_id_each_call_gets_a_fresh_key():
    call = Call.make(instance="i", tool="crm_lookup", params={"q": "x"})
    assert call.key(None) != call.key(None)
    assert call.key("run") == call.key("run")


def test_the_evaluate_body_carries_the_normalised_call():
    call = Call.make(
        instance=uuid.UUID(int=1),
        tool=" crm_lookup ",
        params={"n": (1,)},
        data_scopes=["b", "a", "a"],
        estimated_cost_usd=0.5,
    )
    assert call.body(idempotency_key="k", approval="ap") == {
        "instance": str(uuid.UUID(int=1)),
        "tool": "crm_lookup",
        "params": {"n": [1]},
        "data_scopes": ["a", "b"],
        "estimated_cost_usd": "0.5",
        "idempotency_key": "k",
        "approval": "ap",
    }
