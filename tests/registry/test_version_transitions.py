"""The version lifecycle of SPEC §3, exactly: every allowed transition with its role, every other
(from, to) pair refused with 409, the guards' messages, the change record, roles and four eyes."""

import itertools

import pytest

from audit.choices import EventType
from audit.recording import recorded_update
from registry.choices import InstanceState, VersionState
from registry.models import AgentVersion
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory, make_genome
from tests.helpers import assert_error, changed, member_with, records

pytestmark = pytest.mark.django_db

S = VersionState
STATES = list(VersionState.values)

# (from, to, the role that may take it) — the table of SPEC §3.
ALLOWED = [
    (S.DRAFT, S.TESTING, "operator"),
    (S.TESTING, S.CANDIDATE, "operator"),
    (S.TESTING, S.DRAFT, "operator"),
    (S.CANDIDATE, S.APPROVED, "approver"),
    (S.CANDIDATE, S.TESTING, "operator"),
    (S.CANDIDATE, S.TESTING, "approver"),
    (S.APPROVED, S.DEPRECATED, "operator"),
    (S.DEPRECATED, S.RETIRED, "operator"),
    (S.DRAFT, S.RETIRED, "operator"),
    (S.TESTING, S.RETIRED, "operator"),
    (S.CANDIDATE, S.RETIRED, "operator"),
]
ALLOWED_PAIRS = {(a, b) for a, b, _ in ALLOWED}
REJECTED_PAIRS = [(a, b) for a, b in itertools.product(STATES, STATES) if (a, b) not in ALLOWED_PAIRS]


def make_version(tenant, state=S.DRAFT, eval_status="PASS", label="1.4.0", **kwargs):
    template = kwargs.pop("template", None) or TemplateFactory(tenant=tenant)
    return VersionFactory(
        template=template, version_label=label, lifecycle_state=state, eval_status=eval_status, **kwargs
    )


def transition(client, version, to, reason=None):
    payload = {"to": str(to)}
    if reason is not None:
        payload["reason"] = reason
    return client.post(f"/api/v1/versions/{version.pk}/transition/", payload, format="json")


def state_of(version) -> str:
    return AgentVersion.objects.get(pk=version.pk).lifecycle_state


def test_the_table_covers_every_pair_once():
    assert len(ALLOWED_PAIRS) + len(REJECTED_PAIRS) == len(STATES) ** 2 == 36


@pytest.mark.parametrize(("source", "target", "role"), ALLOWED, ids=lambda v: str(v))
def test_allowed_transition_moves_the_version_and_records_it(cast, tenant, source, target, role):
    member = cast[role]
    version = make_version(tenant, source)

    response = transition(member.client, version, target, reason="because the suite passed")

    assert response.status_code == 200, response.json()
    assert response.json()["lifecycle_state"] == target
    assert response.json()["id"] == str(version.pk)
    assert state_of(version) == target
    (record,) = records(version, EventType.VERSION_TRANSITIONED)
    assert record.payload == changed(
        "registry.AgentVersion",
        {"lifecycle_state": (source, target)},
        event="VERSION_TRANSITIONED",
        reason="because the suite passed",
    )
    assert record.actor == member.actor.ref
    assert record.target_type == "AgentVersion"


def test_transition_without_reason_records_an_empty_reason(operator, tenant):
    version = make_version(tenant, S.DRAFT)
    assert transition(operator.client, version, S.TESTING).status_code == 200
    (record,) = records(version, EventType.VERSION_TRANSITIONED)
    assert record.payload == changed(
        "registry.AgentVersion", {"lifecycle_state": ("DRAFT", "TESTING")}, event="VERSION_TRANSITIONED", reason=""
    )


@pytest.mark.parametrize(("source", "target"), REJECTED_PAIRS, ids=lambda v: str(v))
def test_every_other_pair_is_refused_with_409_naming_both_states(admin_member, tenant, source, target):
    version = make_version(tenant, source)

    response = transition(admin_member.client, version, target)

    data = assert_error(response, 409, "invalid_transition")
    assert data["message"].startswith(f"Cannot move version 1.4.0 from {source} to {target}: "), data
    assert state_of(version) == source
    assert records(version, EventType.VERSION_TRANSITIONED) == []


def test_refusal_lists_the_states_reachable_from_here(admin_member, tenant):
    version = make_version(tenant, S.DRAFT)
    assert_error(
        transition(admin_member.client, version, S.APPROVED),
        409,
        "invalid_transition",
        message="Cannot move version 1.4.0 from DRAFT to APPROVED: no such transition "
        "(from DRAFT it can go to RETIRED, TESTING).",
    )


def test_retired_is_final(admin_member, tenant):
    version = make_version(tenant, S.RETIRED)
    assert_error(
        transition(admin_member.client, version, S.DRAFT),
        409,
        "invalid_transition",
        message="Cannot move version 1.4.0 from RETIRED to DRAFT: no such transition (RETIRED is final).",
    )


# ---------------------------------------------------------------- guards


@pytest.mark.parametrize("eval_status", ["PENDING", "FAIL"])
def test_testing_to_candidate_needs_eval_pass(operator, tenant, eval_status):
    version = make_version(tenant, S.TESTING, eval_status=eval_status)

    response = transition(operator.client, version, S.CANDIDATE)

    assert_error(
        response,
        409,
        "invalid_transition",
        message=f"Cannot move version 1.4.0 from TESTING to CANDIDATE: evaluation status is {eval_status}, "
        "PASS is required.",
    )
    assert state_of(version) == S.TESTING
    assert records(version, EventType.VERSION_TRANSITIONED) == []


@pytest.mark.parametrize("eval_status", ["PENDING", "FAIL"])
def test_candidate_to_approved_needs_eval_still_pass(approver, tenant, eval_status):
    version = make_version(tenant, S.CANDIDATE, eval_status=eval_status)

    response = transition(approver.client, version, S.APPROVED)

    assert_error(
        response,
        409,
        "invalid_transition",
        message=f"Cannot move version 1.4.0 from CANDIDATE to APPROVED: evaluation status is {eval_status}, "
        "PASS is required.",
    )
    assert state_of(version) == S.CANDIDATE


def test_a_failed_evaluation_after_promotion_blocks_approval(operator, approver, tenant):
    version = make_version(tenant, S.CANDIDATE, eval_status="PASS")
    posted = operator.client.post(
        f"/api/v1/versions/{version.pk}/evaluations/", {"suite": "safety", "status": "FAIL"}, format="json"
    )
    assert posted.status_code == 201, posted.json()

    assert_error(transition(approver.client, version, S.APPROVED), 409, "invalid_transition", contains=["FAIL"])


@pytest.mark.parametrize("source", [S.DRAFT, S.TESTING, S.CANDIDATE, S.DEPRECATED])
@pytest.mark.parametrize(
    "instance_state", [s for s in InstanceState.values if s != InstanceState.RETIRED], ids=lambda v: str(v)
)
def test_retiring_needs_every_instance_retired(operator, tenant, source, instance_state):
    version = make_version(tenant, source)
    InstanceFactory(version=version, state=instance_state)
    InstanceFactory(version=version, state=InstanceState.RETIRED)

    response = transition(operator.client, version, S.RETIRED)

    assert_error(
        response,
        409,
        "invalid_transition",
        message=f"Cannot move version 1.4.0 from {source} to RETIRED: 1 instance(s) are not RETIRED yet.",
    )
    assert state_of(version) == source


def test_retiring_with_only_retired_instances_is_allowed(operator, tenant):
    version = make_version(tenant, S.DEPRECATED)
    InstanceFactory.create_batch(2, version=version, state=InstanceState.RETIRED)

    response = transition(operator.client, version, S.RETIRED)

    assert response.status_code == 200, response.json()
    assert state_of(version) == S.RETIRED


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize("role", ["viewer", "compliance"])
@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED_PAIRS), ids=lambda v: str(v))
def test_read_only_roles_cannot_transition(cast, tenant, role, source, target):
    version = make_version(tenant, source)

    response = transition(cast[role].client, version, target)

    assert_error(response, 403, "role_required")
    assert state_of(version) == source
    assert records(version, EventType.VERSION_TRANSITIONED) == []


def test_runtime_key_cannot_transition(runtime_key, tenant):
    version = make_version(tenant, S.DRAFT)
    _, client = runtime_key
    assert_error(transition(client, version, S.TESTING), 403, "role_required")
    assert state_of(version) == S.DRAFT


def test_operator_cannot_approve(operator, tenant):
    version = make_version(tenant, S.CANDIDATE)

    response = transition(operator.client, version, S.APPROVED)

    assert_error(response, 403, "role_required", contains=["approver"])
    assert state_of(version) == S.CANDIDATE


@pytest.mark.parametrize(
    ("source", "target"),
    [(a, b) for a, b, role in ALLOWED if role == "operator" and (a, b) != (S.CANDIDATE, S.TESTING)],
    ids=lambda v: str(v),
)
def test_approver_takes_only_approve_and_reject(approver, tenant, source, target):
    version = make_version(tenant, source)

    assert_error(transition(approver.client, version, target), 403, "role_required", contains=["operator"])
    assert state_of(version) == source


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED_PAIRS), ids=lambda v: str(v))
def test_admin_may_take_every_transition(admin_member, tenant, source, target):
    version = make_version(tenant, source)
    response = transition(admin_member.client, version, target)
    assert response.status_code == 200, response.json()
    assert state_of(version) == target


# ---------------------------------------------------------------- four eyes


def create_version_via_api(member, tenant) -> AgentVersion:
    template = TemplateFactory(tenant=tenant)
    response = member.client.post(
        "/api/v1/versions/",
        {"template": str(template.pk), "version_label": "1.4.0", "genome": make_genome()},
        format="json",
    )
    assert response.status_code == 201, response.json()
    version = AgentVersion.objects.get(pk=response.json()["id"])
    assert version.created_by == member.actor.ref
    # Bring it to CANDIDATE with a passing evaluation (setup, not under test).
    recorded_update(AgentVersion.objects.filter(pk=version.pk), lifecycle_state=S.CANDIDATE, eval_status="PASS")
    return version


def test_creator_cannot_approve_own_version(tenant):
    creator = member_with(tenant, ["operator", "approver"], "both-hats")
    version = create_version_via_api(creator, tenant)

    response = transition(creator.client, version, S.APPROVED)

    assert_error(
        response,
        403,
        "four_eyes",
        message=f"Four eyes: {creator.actor.ref} created version 1.4.0 and cannot also approve it.",
    )
    assert state_of(version) == S.CANDIDATE
    assert records(version, EventType.VERSION_TRANSITIONED) == []


def test_creator_cannot_approve_own_version_even_as_admin(admin_member, tenant):
    version = create_version_via_api(admin_member, tenant)

    assert_error(transition(admin_member.client, version, S.APPROVED), 403, "four_eyes")
    assert state_of(version) == S.CANDIDATE


def test_someone_else_may_approve(admin_member, approver, tenant):
    version = create_version_via_api(admin_member, tenant)

    response = transition(approver.client, version, S.APPROVED)

    assert response.status_code == 200, response.json()
    assert state_of(version) == S.APPROVED
    (record,) = records(version, EventType.VERSION_TRANSITIONED)
    assert record.actor == approver.actor.ref != version.created_by


def test_four_eyes_applies_to_approval_only(tenant):
    creator = member_with(tenant, ["operator", "approver"], "both-hats")
    version = create_version_via_api(creator, tenant)

    response = transition(creator.client, version, S.TESTING)  # rejecting your own candidate is fine

    assert response.status_code == 200, response.json()
