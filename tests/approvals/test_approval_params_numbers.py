"""Approval params are hashed (RFC 8785) and stored in a JSONField (PostgreSQL jsonb): a value ARM accepts
must come back as a value that can be sent back and re-hashes to the params hash; numbers beyond
±(2^53-1) in any notation are refused on the way in, naming the path."""

import hashlib

import pytest
import rfc8785

from tests.approvals.conftest import URL
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

EVALUATE = "/api/v1/policy/evaluate/"

ACCEPTED = {
    "neg_zero": -0.0,
    "one": 1.0,
    "max": 9007199254740991,
    "max_float": -9007199254740991.0,
    "tiny": 5e-324,
    "small": 1e-7,
    "fraction": 0.30000000000000004,
    "big_fraction": 4503599627370495.5,
    "nested": {"list": [1e15, -1.5e-9, "Grüße 🚀", None, True]},
    "": "empty key",
}


def evaluate_text(instance, client, params_text: str):
    body = f'{{"instance": "{instance.pk}", "tool": "email.send", "params": {params_text}}}'
    return client.post(EVALUATE, data=body, content_type="application/json")


def test_accepted_params_come_back_as_values_that_rehash_and_can_be_sent_back(instance, runtime_key, viewer):
    first = evaluate_text(instance, runtime_key[1], rfc8785.dumps(ACCEPTED).decode())
    assert first.status_code == 200, first.json()
    assert first.json()["decision"] == "NEEDS_APPROVAL", first.json()
    approval_id = first.json()["approval"]

    data = viewer.client.get(f"{URL}{approval_id}/").json()
    assert hashlib.sha256(rfc8785.dumps(data["params"])).hexdigest() == data["params_hash"]
    assert data["params_hash"] == hashlib.sha256(rfc8785.dumps(ACCEPTED)).hexdigest()

    # sent back as returned: the same call (same params hash), so the same pending request
    again = runtime_key[1].post(
        EVALUATE, {"instance": str(instance.pk), "tool": "email.send", "params": data["params"]}, format="json"
    )
    assert again.status_code == 200, again.json()
    assert again.json()["approval"] == approval_id


@pytest.mark.parametrize("literal", ["1e20", "9007199254740992.0", "1e300", "-9007199254740992"])
def test_params_beyond_the_exact_range_are_refused_naming_the_path(instance, runtime_key, literal):
    response = evaluate_text(instance, runtime_key[1], f'{{"amount": {{"cents": [1, {literal}]}}}}')
    assert_error(response, 400, "parse_error", contains=["params.amount.cents[1]:", "9007199254740991"])


@pytest.mark.parametrize("value", [1e20, 9007199254740992.0, 2**60])
def test_the_service_refuses_them_too(value):
    from django.core.exceptions import ValidationError

    from policies.services import params_hash

    with pytest.raises(ValidationError) as excinfo:
        params_hash({"amount": {"cents": [1, value]}})
    (message,) = excinfo.value.message_dict["params"]
    assert message.startswith("params.amount.cents[1]: numbers must be within"), message
