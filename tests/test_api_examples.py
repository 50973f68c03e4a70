"""The API reference's examples work when tried: in the demo (``seed_demo``), signed in as acme-admin with the
demo's password, every documented request answers the documented status, every documented answer has the
shape the API gives (its keys) and, for an error, its code and fields; every operation that writes and every
parameter that takes an id has an example (or says where to take the id from).

The demo is seeded once for the module inside a transaction that is rolled back at its end; each example runs
in a savepoint of its own, so each one meets the demo as seeded, as a person trying it in a fresh demo does."""

from __future__ import annotations

import json
import os
import uuid
from io import StringIO
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.db import transaction
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

import arm.schema_examples
from arm.schema_examples import EXAMPLES, GENERIC_ANSWERS, NOT_FOUND, RESPONSES, Example, Take
from audit import signing

WRITE_METHODS = {"post", "put", "patch", "delete"}
# ARM_UPDATE_API_ANSWERS=1: write the answers the demo gives into arm/schema_responses.json instead of
# comparing them (after a change to what an endpoint answers; review the diff).
UPDATE = os.environ.get("ARM_UPDATE_API_ANSWERS") == "1"
ANSWERS_FILE = Path(arm.schema_examples.__file__).with_name("schema_responses.json")


def _cut(value):
    """An answer as the reference shows it: lists of objects cut to their first item (a genome kept whole)."""
    if isinstance(value, dict):
        return {k: item if k == "genome" else _cut(item) for k, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_cut(value[0])]
    return value


@pytest.fixture(scope="module")
def answers():
    found = {op: dict(by_name) for op, by_name in RESPONSES.items()}
    yield found
    if UPDATE:
        ordered = {
            op: {n: found[op][n] for n in examples if n in found.get(op, {})} for op, examples in EXAMPLES.items()
        }
        ANSWERS_FILE.write_text(
            json.dumps({op: a for op, a in ordered.items() if a}, indent=2, ensure_ascii=False) + "\n"
        )


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture(scope="module")
def operations(schema) -> dict[str, tuple[str, str, dict]]:
    """operationId -> (method, path, operation)."""
    return {
        operation["operationId"]: (method, path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock(), transaction.atomic():
        keys = tmp_path_factory.mktemp("demo") / "keys.json"
        call_command("seed_demo", "--keys-file", str(keys), stdout=StringIO())
        yield
        transaction.set_rollback(True)


@pytest.fixture
def admin(demo, db):
    """acme-admin, signed in with the password seed_demo prints."""
    client = APIClient()
    signed_in = client.post(
        "/accounts/login/", {"username": "acme-admin", "password": "admin-demo-pass"}, format="multipart"
    )
    assert signed_in.status_code == 302, signed_in.content[:300]
    return client


class Runner:
    """Sends examples as Swagger UI's "Try it out" would, resolving each ``Take`` the way the reference says."""

    def __init__(self, client, operations):
        self.client = client
        self.operations = operations

    def take(self, source: Take) -> str:
        if source.operation:
            answer = self.send(source.operation, EXAMPLES[source.operation][source.example])
            assert answer.status_code < 300, (source, answer.status_code, answer.content[:500])
            return answer.json()[source.field]
        listed = self.client.get(source.path)
        assert listed.status_code == 200 and listed.json()["results"], (source, listed.content[:500])
        return listed.json()["results"][0][source.field]

    def send(self, operation_id: str, example: Example):
        method, path, operation = self.operations[operation_id]
        where = {p["name"]: p["in"] for p in operation.get("parameters", [])}
        values = {k: self.take(v) if isinstance(v, Take) else v for k, v in example.params.items()}
        assert set(values) <= set(where), (operation_id, set(values) - set(where))
        for name, value in values.items():
            if where[name] == "path":
                path = path.replace("{" + name + "}", str(value))
        query = {k: v for k, v in values.items() if where[k] == "query"}
        url = path + ("?" + urlencode(query) if query else "")
        if example.body is None:
            return getattr(self.client, method)(url)
        return getattr(self.client, method)(url, json.dumps(example.body), content_type="application/json")


def _shape(value):
    """The keys of every object in ``value`` (lists by their first item): what a documented answer must share
    with the real one."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def _same_shape(documented, real, where="answer"):
    if isinstance(documented, dict) and isinstance(real, dict):
        assert set(documented) == set(real), (where, sorted(set(documented) ^ set(real)))
        for key in documented:
            _same_shape(documented[key], real[key], f"{where}.{key}")
    elif isinstance(documented, list) and isinstance(real, list) and documented and real:
        _same_shape(documented[0], real[0], f"{where}[0]")


ALL_EXAMPLES = [(op, name) for op, examples in EXAMPLES.items() for name in examples]


@pytest.mark.parametrize(("operation_id", "name"), ALL_EXAMPLES, ids=[f"{op}:{name}" for op, name in ALL_EXAMPLES])
def test_every_documented_example_answers_as_documented(
    operation_id, name, admin, operations, settings, tmp_path, answers
):
    example = EXAMPLES[operation_id][name]
    if example.needs == "wait server":
        pytest.skip("served by the wait server: tests/approvals/test_wait.py drives it")
    if example.needs in ("signing key", "signed checkpoint"):
        key = tmp_path / "audit-signing.pem"
        key.write_bytes(signing.generate_private_key_pem())
        settings.ARM_AUDIT_SIGNING_KEY_FILE, settings.ARM_AUDIT_SIGNING_KEY = str(key), ""
    if example.needs == "signed checkpoint":
        assert admin.post("/api/v1/audit/checkpoints/").status_code == 201
    response = Runner(admin, operations).send(operation_id, example)
    content = response.json() if response.content else None
    assert response.status_code == example.status, (response.status_code, content)
    if UPDATE and content is not None:
        answers.setdefault(operation_id, {})[name] = _cut(content)
        return
    documented = RESPONSES.get(operation_id, {}).get(name)
    assert (documented is None) == (example.status == 204), "ARM_UPDATE_API_ANSWERS=1 documents the answer"
    if example.status == 204:
        assert documented is None and content is None
    elif example.status >= 400:
        assert content["code"] == documented["code"], content
        assert set(content.get("errors", {})) == set(documented.get("errors", {})), content
    else:
        _same_shape(documented, content)


def test_the_generic_answers_are_the_ones_the_api_gives(admin, demo, db):
    """The answers shown under a status no example covers (503 aside: tests/arm/test_database_unavailable.py)."""
    viewer = APIClient()
    viewer.post("/accounts/login/", {"username": "acme-viewer", "password": "viewer-demo-pass"}, format="multipart")
    big = json.dumps({"name": "x" * 1_100_000})
    answers = {
        400: admin.get("/api/v1/instances/?state=RUNNING"),
        401: APIClient().get("/api/v1/templates/"),
        403: viewer.post("/api/v1/templates/", {"name": "x", "owners": ["a@acme.example"]}, format="json"),
        404: admin.get(f"/api/v1/templates/{uuid.uuid4()}/"),
        405: admin.put(f"/api/v1/templates/{EXAMPLES['v1_templates_retrieve']['support_bot'].params['id']}/", {}),
        413: admin.post("/api/v1/templates/", big, content_type="application/json"),
        415: admin.post("/api/v1/templates/", "name=x", content_type="application/x-www-form-urlencoded"),
    }
    for status, response in answers.items():
        assert response.status_code == status, (status, response.content[:300])
        assert response.json() == GENERIC_ANSWERS[status][2], (status, response.json())


def test_an_unknown_id_answers_the_documented_404(admin, operations):
    """Every operation with an id in its path documents its 404 (``NOT_FOUND``): the API answers it."""
    runner = Runner(admin, operations)
    for operation_id, examples in EXAMPLES.items():
        example = next(iter(examples.values()))
        if "id" not in example.params:
            continue
        unknown = Example("", 404, params={**example.params, "id": str(uuid.uuid4())}, body=example.body)
        response = runner.send(operation_id, unknown)
        assert response.status_code == 404, (operation_id, response.status_code)
        assert response.json()["code"] == NOT_FOUND["code"], (operation_id, response.json())


def _takes_an_id(parameter: dict) -> bool:
    return (parameter["in"] == "path" and parameter["name"] == "id") or (
        parameter["schema"].get("format") == "uuid" or parameter["name"].endswith("_id")
    )


def test_every_write_operation_and_every_id_parameter_has_an_example(schema):
    missing = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            name = f"{method.upper()} {path}"
            if method in WRITE_METHODS and operation["operationId"] not in EXAMPLES:
                missing.append(name)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                if not media.get("examples"):
                    missing.append(f"{name} body")
            for parameter in filter(_takes_an_id, operation.get("parameters", [])):
                told = "Take it from " in parameter.get("description", "")
                if not (told or "example" in parameter or "examples" in parameter):
                    missing.append(f"{name} {parameter['name']}")
    assert not missing, missing


def test_every_example_belongs_to_an_operation(operations):
    assert not set(EXAMPLES) - set(operations), set(EXAMPLES) - set(operations)


def test_every_documented_answer_belongs_to_an_example():
    stale = {
        f"{op}:{name}" for op, answers in RESPONSES.items() for name in answers if name not in EXAMPLES.get(op, {})
    }
    assert not stale, stale


def test_the_reference_shows_the_examples_and_their_answers(schema):
    """What Swagger UI's "Try it out" fills in: a body example, the parameter's value, the answer per status."""
    operation = schema["paths"]["/api/v1/templates/{id}/"]["delete"]
    (parameter,) = operation["parameters"]
    assert [e["value"] for e in parameter["examples"].values()] == [
        EXAMPLES["v1_templates_destroy"]["no_versions"].params["id"],
        EXAMPLES["v1_templates_destroy"]["has_versions"].params["id"],
    ]
    conflict = operation["responses"]["409"]["content"]["application/json"]["examples"]["has_versions"]["value"]
    assert conflict["code"] == "template_has_versions"
    not_found = operation["responses"]["404"]["content"]["application/json"]["examples"]["not_found"]["value"]
    assert not_found == NOT_FOUND
    evaluate = schema["paths"]["/api/v1/policy/evaluate/"]["post"]
    bodies = evaluate["requestBody"]["content"]["application/json"]["examples"]
    assert bodies["low_risk_lookup"]["value"] == EXAMPLES["policy_evaluate"]["low_risk_lookup"].body
    answer = evaluate["responses"]["200"]["content"]["application/json"]["examples"]["risky_email"]["value"]
    assert answer["decision"] == "NEEDS_APPROVAL"
    approve = schema["paths"]["/api/v1/approvals/{id}/approve/"]["post"]["parameters"][0]
    assert "example" not in approve and "GET /api/v1/approvals/?status=PENDING" in approve["description"]
