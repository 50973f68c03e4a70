"""A key acts for the person at the root of its minting chain, and is never more powerful than whoever
minted it: four eyes sees through any number of keys, roles and bindings only narrow, and a key's
authority ends with the authority it came from."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.services import approval_decide
from arm.errors import Conflict, FourEyesViolation
from audit.choices import EventType
from audit.recording import recorded_update
from tenancy.context import Actor
from tenancy.models import ApiKey, Membership
from tenancy.services import api_key_create, api_key_revoke, membership_set
from tests.conftest import change_records
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory
from tests.helpers import assert_error, member_with

pytestmark = pytest.mark.django_db


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _as_key(key: ApiKey) -> Actor:
    return Actor.for_key(key)


@pytest.fixture
def alice(tenant):
    """A tenant admin who also approves, with an admin key minted in her own name."""
    member = member_with(tenant, ["admin"], "alice")
    person = Actor.for_user(member.user, ["admin"])
    key, secret = api_key_create(tenant=tenant, name="alice admin", roles=["admin"], actor=person)
    return member, person, key, secret


def _candidate(tenant, created_by):
    return VersionFactory(
        template=TemplateFactory(tenant=tenant), lifecycle_state="CANDIDATE", eval_status="PASS", created_by=created_by
    )


def test_a_second_generation_key_still_acts_for_the_person(tenant, alice):
    _, person, first, _ = alice
    second, _ = api_key_create(tenant=tenant, name="grandchild", roles=["admin"], actor=_as_key(first))
    third, _ = api_key_create(tenant=tenant, name="great-grandchild", roles=["approver"], actor=_as_key(second))
    assert first.acts_for == second.acts_for == third.acts_for == person.ref
    assert third.created_by == f"key:{second.prefix}"


def test_a_grandchild_key_cannot_approve_the_persons_version(tenant, alice):
    member, person, first, _ = alice
    child, _ = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=_as_key(first))
    grandchild, secret = api_key_create(tenant=tenant, name="grandchild", roles=["approver"], actor=_as_key(child))
    version = _candidate(tenant, created_by=person.ref)

    response = _bearer(secret).post(f"/api/v1/versions/{version.pk}/transition/", {"to": "APPROVED"}, format="json")

    assert_error(
        response,
        403,
        "four_eyes",
        message=(
            f"Four eyes: user:alice created version {version.version_label}; "
            f"key:{grandchild.prefix} (acting for user:alice) cannot also approve it."
        ),
    )
    assert change_records(version, EventType.VERSION_TRANSITIONED) == []


def test_the_person_cannot_approve_what_a_grandchild_key_created(tenant, alice):
    member, person, first, _ = alice
    child, _ = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=_as_key(first))
    grandchild, _ = api_key_create(tenant=tenant, name="ci", roles=["operator"], actor=_as_key(child))
    version = _candidate(tenant, created_by=f"key:{grandchild.prefix}")
    client = APIClient()
    client.force_login(member.user)

    response = client.post(f"/api/v1/versions/{version.pk}/transition/", {"to": "APPROVED"}, format="json")

    assert_error(
        response,
        403,
        "four_eyes",
        message=(
            f"Four eyes: key:{grandchild.prefix} (acting for user:alice) created version {version.version_label}; "
            "user:alice cannot also approve it."
        ),
    )


def test_a_grandchild_key_cannot_decide_the_persons_approval_request(tenant, alice):
    from approvals.models import ApprovalRequest

    _, person, first, _ = alice
    child, _ = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=_as_key(first))
    grandchild, _ = api_key_create(tenant=tenant, name="decider", roles=["approver"], actor=_as_key(child))
    instance = InstanceFactory(tenant=tenant)
    runtime, _ = api_key_create(tenant=tenant, name="runtime", roles=["runtime"], actor=_as_key(first))
    from django.utils import timezone

    approval = ApprovalRequest.objects.create(
        tenant=tenant,
        instance=instance,
        tool="email.send",
        params={},
        params_hash="0" * 64,
        risk="high",
        reasons=[],
        requester=f"key:{runtime.prefix}",
        requested_at=timezone.now(),
        expires_at=timezone.now() + timezone.timedelta(hours=1),
    )

    with pytest.raises(FourEyesViolation) as refused:
        approval_decide(approval=approval, approve=True, actor=_as_key(grandchild))
    assert str(refused.value) == (
        f"Four eyes: key:{runtime.prefix} (acting for user:alice) requested this approval; "
        f"key:{grandchild.prefix} (acting for user:alice) cannot also decide it."
    )


def test_a_grandchild_key_cannot_decide_the_persons_approval_request_through_the_api(tenant, alice):
    """The API reads the request with the principal behind its requester in the same query
    (``approval_to_decide``): the same refusal, and nothing decided."""
    from approvals.models import ApprovalRequest
    from tests.policies.factories import make_approval

    _, person, first, _ = alice
    child, _ = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=_as_key(first))
    _, decider_secret = api_key_create(tenant=tenant, name="decider", roles=["approver"], actor=_as_key(child))
    runtime, _ = api_key_create(tenant=tenant, name="runtime", roles=["runtime"], actor=_as_key(first))
    approval = make_approval(InstanceFactory(tenant=tenant), requester=f"key:{runtime.prefix}")

    response = _bearer(decider_secret).post(f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json")

    assert_error(response, 403, "four_eyes", contains=[f"key:{runtime.prefix} (acting for user:alice)"])
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "PENDING"


def test_the_principal_read_in_sql_is_principal_of(tenant, alice):
    """``principal_expression`` (read with a row) and ``principal_of`` (a lookup) are one rule: a key's
    person, a root key itself, an unknown key itself, anything else itself."""
    from approvals.models import ApprovalRequest
    from tenancy.permissions import principal_expression, principal_of
    from tests.factories import make_api_key
    from tests.policies.factories import make_approval

    _, _, first, _ = alice
    root, _ = make_api_key(tenant, ["runtime"])  # minted by a command: no person behind it
    assert first.principal == "user:alice" and root.principal == ""
    instance = InstanceFactory(tenant=tenant)
    refs = ["user:bob", f"key:{first.prefix}", f"key:{root.prefix}", "key:0123456789ab", "system", "key:"]
    for n, ref in enumerate(refs):
        make_approval(instance, requester=ref, params={"n": n})

    read = dict(ApprovalRequest.objects.annotate(p=principal_expression("requester")).values_list("requester", "p"))

    assert read == {ref: principal_of(ref) for ref in refs}
    assert read[f"key:{first.prefix}"] == "user:alice" and read[f"key:{root.prefix}"] == f"key:{root.prefix}"


def test_keys_of_different_people_are_different_people(tenant, alice, approver):
    _, _, first, _ = alice
    bob = member_with(tenant, ["admin"], "bob")
    bobs_key, secret = api_key_create(
        tenant=tenant, name="bob", roles=["approver"], actor=Actor.for_user(bob.user, ["admin"])
    )
    version = _candidate(tenant, created_by=f"key:{first.prefix}")

    response = _bearer(secret).post(f"/api/v1/versions/{version.pk}/transition/", {"to": "APPROVED"}, format="json")

    assert response.status_code == 200, response.json()


def test_a_bound_key_only_mints_keys_bound_to_its_instance(tenant):
    from registry.services import api_key_create as bound_key_create  # the binding is registry's

    instance, other = InstanceFactory(tenant=tenant), InstanceFactory(tenant=tenant)
    bound, _ = bound_key_create(
        tenant=tenant, name="bound admin", roles=["admin"], instance=instance, actor=Actor.system()
    )

    child, _ = bound_key_create(tenant=tenant, name="child", roles=["runtime"], actor=_as_key(bound))
    assert child.instance_binding.instance_id == instance.pk

    with pytest.raises(ValidationError) as refused:
        bound_key_create(tenant=tenant, name="escape", roles=["runtime"], instance=other, actor=_as_key(bound))
    assert "instance" in refused.value.message_dict
    # Tenancy's own service refuses a bound minter too: it cannot bind, so the key would be unbound.
    with pytest.raises(ValidationError) as unbound:
        api_key_create(tenant=tenant, name="unbound", roles=["runtime"], actor=_as_key(bound))
    assert "instance" in unbound.value.message_dict
    assert ApiKey.objects.filter(name__in=["escape", "unbound"]).count() == 0


def test_a_key_holds_no_more_than_its_person_holds_now(tenant, alice, approver):
    member, person, first, _ = alice
    approver_key, secret = api_key_create(tenant=tenant, name="mine", roles=["approver", "viewer"], actor=person)
    client = _bearer(secret)
    assert client.get("/api/v1/approvals/").status_code == 200

    membership_set(tenant=tenant, user=member.user, roles=["viewer"], actor=Actor.system())
    # still reads (viewer), but no longer decides: the approver role left with the person's
    version = _candidate(tenant, created_by="user:someone-else")
    response = client.post(f"/api/v1/versions/{version.pk}/transition/", {"to": "APPROVED"}, format="json")
    assert_error(response, 403, "role_required")
    assert client.get("/api/v1/approvals/").status_code == 200

    Membership.objects.filter(user=member.user).delete()
    assert_error(client.get("/api/v1/approvals/"), 401, "authentication_failed")


def test_a_deactivated_persons_keys_stop_working(tenant, alice):
    member, _, _, secret = alice
    client = _bearer(secret)
    assert client.get("/api/v1/api-keys/").status_code == 200
    member.user.is_active = False
    member.user.save(update_fields=["is_active"])
    assert_error(client.get("/api/v1/api-keys/"), 401, "authentication_failed")


def test_revoking_a_key_revokes_every_key_it_minted(tenant, alice):
    _, person, first, _ = alice
    child, child_secret = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=_as_key(first))
    grandchild, grandchild_secret = api_key_create(
        tenant=tenant, name="grandchild", roles=["viewer"], actor=_as_key(child)
    )
    sibling, sibling_secret = api_key_create(tenant=tenant, name="sibling", roles=["viewer"], actor=person)

    api_key_revoke(key=first, actor=person)

    for secret in (child_secret, grandchild_secret):
        assert_error(_bearer(secret).get("/api/v1/templates/"), 401, "authentication_failed")
    assert _bearer(sibling_secret).get("/api/v1/templates/").status_code == 200
    for key in (child, grandchild):
        (record,) = change_records(key, EventType.API_KEY_REVOKED)
        assert record.payload["minted_by_revoked_key"] == first.prefix


def test_a_key_revoked_after_it_authenticated_cannot_mint(tenant, alice):
    """The actor a request holds was authenticated before the revocation committed: the mint re-reads
    its minter under a row lock and refuses."""
    _, person, first, _ = alice
    in_flight = _as_key(first)
    api_key_revoke(key=first, actor=person)

    with pytest.raises(Conflict) as refused:
        api_key_create(tenant=tenant, name="loot", roles=["viewer"], actor=in_flight)

    assert refused.value.code == "key_revoked" and first.prefix in str(refused.value)
    assert not ApiKey.objects.filter(name="loot").exists()


def test_a_minted_key_remembers_every_key_above_it(tenant, alice):
    _, person, first, _ = alice
    child, _ = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=_as_key(first))
    grandchild, _ = api_key_create(tenant=tenant, name="grandchild", roles=["viewer"], actor=_as_key(child))
    assert first.minters == [] and child.minters == [first.prefix]
    assert ApiKey.objects.get(pk=grandchild.pk).minters == [first.prefix, child.prefix]


def test_a_key_whose_ancestor_is_revoked_does_not_authenticate_even_if_the_cascade_missed_it(tenant, alice):
    """Defence in depth: a key left active below a revoked key (as the cascade used to leave keys minted
    during a revocation) is refused by authentication itself; its own children too."""
    _, person, first, _ = alice
    child, child_secret = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=_as_key(first))
    _, grandchild_secret = api_key_create(tenant=tenant, name="grandchild", roles=["viewer"], actor=_as_key(child))
    _, sibling_secret = api_key_create(tenant=tenant, name="sibling", roles=["viewer"], actor=person)
    assert _bearer(grandchild_secret).get("/api/v1/templates/").status_code == 200
    recorded_update(ApiKey.objects.filter(pk=first.pk), revoked_at=timezone.now())  # only the root, no cascade

    for secret in (child_secret, grandchild_secret):
        response = _bearer(secret).get("/api/v1/templates/")
        assert_error(
            response, 401, "authentication_failed", message="This API key was minted by a key that has been revoked."
        )
    assert _bearer(sibling_secret).get("/api/v1/templates/").status_code == 200


def test_the_migration_fills_in_the_minters_of_existing_keys(tenant, alice):
    import importlib

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    _, person, first, _ = alice
    child, _ = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=_as_key(first))
    grandchild, _ = api_key_create(tenant=tenant, name="grandchild", roles=["viewer"], actor=_as_key(child))
    ApiKey._base_manager.update(minters=[])  # the rows as they were before the migration, not a change
    apps = MigrationLoader(connection).project_state(("arm", "0006_apikey_minters")).apps  # its models

    importlib.import_module("tenancy.migrations.0006_apikey_minters").resolve_minters(apps, None)

    keys = ApiKey.objects.filter(pk__in=[first.pk, child.pk, grandchild.pk])
    assert dict(keys.values_list("prefix", "minters")) == {
        first.prefix: [],
        child.prefix: [first.prefix],
        grandchild.prefix: [first.prefix, child.prefix],
    }
