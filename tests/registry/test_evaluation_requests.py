"""Evaluation runs requested by the registry: the signed, single-use callback URL handed out by
``evaluation.requested`` records one result through the registry's own rules (registry.evaluation_requests)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from arm.errors import InvalidTransition
from audit.models import ChangeRecord
from registry import services
from registry.evaluation_requests import SALT, evaluation_requested_data
from registry.models import AgentVersion, EvaluationRequest, EvaluationResult
from tenancy.context import Actor
from tests.factories import TemplateFactory, VersionFactory
from tests.helpers import race

OPERATOR = Actor(ref="user:releaser", roles=frozenset({"operator"}))


def version_in_testing(tenant, **fields) -> AgentVersion:
    return VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="TESTING", **fields)


def callback_path(data: dict) -> str:
    return urlsplit(data["callback"]["url"]).path


def post(path: str, body, client: APIClient | None = None):
    return (client or APIClient()).post(path, body, format="json")


@pytest.fixture
def requested(tenant):
    version = version_in_testing(tenant)
    return version, evaluation_requested_data(version)


@pytest.mark.django_db
def test_the_event_data_carries_the_version_its_genome_hash_and_a_signed_callback(tenant, settings):
    settings.ARM_PUBLIC_URL = "https://arm.example.com/"
    version = version_in_testing(tenant)
    data = evaluation_requested_data(version)
    assert data["genome_hash"] == version.genome_hash == data["version"]["genome_hash"]
    assert data["version"]["id"] == str(version.pk) and data["version"]["label"] == version.version_label
    assert data["version"]["template"]["name"] == version.template.name
    assert data["version"]["api_url"].endswith(f"/api/v1/versions/{version.pk}/")
    callback = data["callback"]
    assert callback["method"] == "POST" and callback["url"].startswith("https://arm.example.com/api/v1/")
    assert data["version"]["api_url"] == f"https://arm.example.com/api/v1/versions/{version.pk}/"
    token = callback_path(data).rsplit("/", 2)[-2]
    assert signing.Signer(salt=SALT).unsign_object(token)["v"] == version.pk.hex
    request = EvaluationRequest.objects.get(pk=callback["request_id"])
    assert request.version == version and request.used_at is None and request.tenant_id == version.tenant_id


@pytest.mark.django_db
def test_a_posted_pass_is_recorded_as_an_evaluation_and_lets_the_version_be_promoted(requested):
    version, data = requested
    with pytest.raises(InvalidTransition, match="PASS is required"):
        services.version_transition(version=version, to="CANDIDATE", actor=OPERATOR)

    response = post(
        callback_path(data),
        {"result": "PASS", "score": 0.97, "details": {"cases": 120}, "url": "https://ci.example.com/runs/7"},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == body["eval_status"] == "PASS" and body["lifecycle_state"] == "TESTING"
    result = EvaluationResult.objects.get(pk=body["evaluation"])
    request = EvaluationRequest.objects.get(pk=data["callback"]["request_id"])
    assert result.version_id == version.pk and result.score == 0.97
    assert result.details == {"cases": 120, "url": "https://ci.example.com/runs/7"}
    assert result.created_by == f"evaluation-request:{request.pk}"
    assert request.used_at is not None and request.result_id == result.pk
    # the registry's own records, by the request: the result and the version's eval_status move
    records = ChangeRecord.objects.filter(actor=f"evaluation-request:{request.pk}")
    assert sorted(r.event_type for r in records) == ["EVALUATION_CREATED", "EVALUATION_RECORDED"]
    services.version_transition(version=version, to="CANDIDATE", actor=OPERATOR)
    version.refresh_from_db()
    assert version.lifecycle_state == "CANDIDATE"


@pytest.mark.django_db
def test_a_posted_fail_sets_fail_and_promotion_stays_refused(requested):
    version, data = requested
    assert post(callback_path(data), {"result": "FAIL"}).status_code == 201
    version.refresh_from_db()
    assert version.eval_status == "FAIL"
    with pytest.raises(InvalidTransition, match="evaluation status is FAIL"):
        services.version_transition(version=version, to="CANDIDATE", actor=OPERATOR)


@pytest.mark.django_db
def test_the_url_takes_one_result_a_replay_is_409(requested):
    version, data = requested
    assert post(callback_path(data), {"result": "FAIL"}).status_code == 201

    again = post(callback_path(data), {"result": "PASS"})

    assert again.status_code == 409 and again.json()["code"] == "callback_used"
    assert EvaluationResult.objects.filter(version=version).count() == 1
    version.refresh_from_db()
    assert version.eval_status == "FAIL"


@pytest.mark.django_db
def test_each_request_has_its_own_url(tenant):
    version = version_in_testing(tenant)
    first, second = evaluation_requested_data(version), evaluation_requested_data(version)
    assert first["callback"]["url"] != second["callback"]["url"]
    assert post(callback_path(first), {"result": "FAIL"}).status_code == 201
    assert post(callback_path(second), {"result": "PASS"}).status_code == 201
    version.refresh_from_db()
    assert version.eval_status == "PASS" and version.evaluations.count() == 2


@pytest.mark.django_db
def test_an_expired_url_is_403_and_records_nothing(requested):
    version, data = requested
    EvaluationRequest.objects.filter(pk=data["callback"]["request_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = post(callback_path(data), {"result": "PASS"})
    assert response.status_code == 403 and response.json()["code"] == "callback_expired"
    assert not EvaluationResult.objects.filter(version=version).exists()


@pytest.mark.django_db
def test_a_forged_or_altered_token_is_404(requested, tenant):
    version, data = requested
    path = callback_path(data)
    token = path.rsplit("/", 2)[-2]
    nonce = signing.Signer(salt=SALT).unsign_object(token)["n"]
    other = version_in_testing(tenant)
    forged = [
        "not-a-token",
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature altered
        # the same nonce bound to another version, signed with another key or another salt
        signing.Signer(key="not ARM's key", salt=SALT).sign_object({"n": nonce, "v": other.pk.hex}),
        signing.Signer(salt="another.salt").sign_object({"n": nonce, "v": version.pk.hex}),
        # correctly signed, but naming a version the nonce was not issued for, or no nonce at all
        signing.Signer(salt=SALT).sign_object({"n": nonce, "v": other.pk.hex}),
        signing.Signer(salt=SALT).sign_object({"n": "made-up", "v": version.pk.hex}),
        signing.Signer(salt=SALT).sign_object(["n", nonce]),
    ]
    for bad in forged:
        response = post(f"/api/v1/evaluation-callbacks/{bad}/", {"result": "PASS"})
        assert response.status_code == 404 and response.json()["code"] == "not_found", bad
    assert not EvaluationResult.objects.exists()
    assert post(path, {"result": "PASS"}).status_code == 201  # the genuine URL still works


@pytest.mark.django_db
def test_another_tenants_version_cannot_be_reached_with_a_token(requested, other_tenant, outsider):
    """The token binds one version; its signature covers the version id, and the row is looked up by both.
    An API key of another tenant changes nothing (the endpoint reads no credential but the token)."""
    version, data = requested
    theirs = version_in_testing(other_tenant)
    nonce = signing.Signer(salt=SALT).unsign_object(callback_path(data).rsplit("/", 2)[-2])["n"]
    rebound = signing.Signer(salt=SALT).sign_object({"n": nonce, "v": theirs.pk.hex})
    assert post(f"/api/v1/evaluation-callbacks/{rebound}/", {"result": "PASS"}, outsider.client).status_code == 404
    theirs.refresh_from_db()
    assert theirs.eval_status == "PENDING" and not theirs.evaluations.exists()
    response = post(callback_path(data), {"result": "PASS"}, outsider.client)
    assert response.status_code == 201  # their key is ignored: the result lands on the token's version only
    assert EvaluationResult.objects.get().tenant_id == version.tenant_id


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "result"),
        ({"result": "MAYBE"}, "result"),
        ({"result": "pass"}, "result"),
        ({"result": "PASS", "score": "high"}, "score"),
        ({"result": "PASS", "score": True}, "score"),
        ({"result": "PASS", "details": ["a list"]}, "details"),
        ({"result": "PASS", "url": "not a url"}, "url"),
        ({"result": "PASS", "suite": "x" * 201}, "suite"),
        ({"result": "PASS", "suite": "tab\tinside"}, "suite"),
        ({"result": "PASS", "status": "PASS"}, "status"),  # unknown field
    ],
)
def test_a_bad_body_is_a_400_naming_the_field_and_leaves_the_url_usable(requested, body, field):
    version, data = requested
    response = post(callback_path(data), body)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error" and field in response.json()["errors"]
    assert EvaluationRequest.objects.get(pk=data["callback"]["request_id"]).used_at is None
    assert post(callback_path(data), {"result": "PASS"}).status_code == 201


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_a_400(requested):
    _, data = requested
    response = APIClient().post(callback_path(data), "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"


@pytest.mark.django_db
def test_a_retired_version_takes_no_result_409_and_the_url_is_not_used_up(tenant):
    # retired after its request went out (set up directly: the service would record the move)
    data = evaluation_requested_data(VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="RETIRED"))
    response = post(callback_path(data), {"result": "PASS"})
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert EvaluationRequest.objects.get(pk=data["callback"]["request_id"]).used_at is None


@pytest.mark.django_db
def test_only_post_is_answered(requested):
    _, data = requested
    assert APIClient().get(callback_path(data)).status_code == 405


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)")
@pytest.mark.django_db(transaction=True)
def test_racing_posts_record_one_result(tenant):
    version = version_in_testing(tenant)
    data = evaluation_requested_data(version)
    path = callback_path(data)

    responses = race([lambda r=r: post(path, {"result": r}) for r in ("PASS", "FAIL", "PASS", "FAIL")])

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409], [r.json() for r in responses]
    assert EvaluationResult.objects.filter(version=version).count() == 1
    request = EvaluationRequest.objects.get()
    assert request.result_id == EvaluationResult.objects.get().pk


def test_the_token_binds_a_nonce_and_a_version_under_its_own_salt():
    token = signing.Signer(salt=SALT).sign_object({"n": "x", "v": uuid.uuid4().hex})
    with pytest.raises(signing.BadSignature):
        signing.Signer(salt="arm.other").unsign_object(token)
