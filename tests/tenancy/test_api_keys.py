"""API keys (SPEC §2): hashed at rest, shown once, revocable (then 401), tenant-admin only, and every
creation and revocation on the audit trail."""

import hashlib
import re

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.choices import EventType
from audit.models import ChangeRecord
from tenancy.models import ApiKey
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory
from tests.helpers import assert_error, changed, db_id, records

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"^arm_([0-9a-f]{12})_([A-Za-z0-9_-]{40,})$")


def create_key(admin, **body):
    payload = {"name": "ci pipeline", "roles": ["operator"], **body}
    response = admin.client.post("/api/v1/api-keys/", payload, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def client_for(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def raw_row(key_id) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM arm_apikey WHERE id = %s", [db_id(ApiKey.objects.get(pk=key_id))])
        return cursor.fetchone()


def test_created_key_is_returned_once_with_its_metadata(admin_member):
    data = create_key(admin_member)

    match = KEY_RE.match(data["key"])
    assert match, data["key"]
    assert match.group(1) == data["prefix"]
    assert data["name"] == "ci pipeline"
    assert data["roles"] == ["operator"]
    assert data["revoked_at"] is None
    assert data["created_by"] == admin_member.actor.ref


def test_the_secret_is_never_shown_again(admin_member):
    data = create_key(admin_member)
    detail = admin_member.client.get(f"/api/v1/api-keys/{data['id']}/").json()
    listing = admin_member.client.get("/api/v1/api-keys/").json()
    assert "key" not in detail
    assert all("key" not in row for row in listing["results"])
    assert data["key"] not in str(detail) + str(listing)


def test_key_is_hashed_at_rest(admin_member):
    data = create_key(admin_member)
    secret = data["key"]
    _, _, secret_part = secret.split("_", 2)

    row = raw_row(data["id"])

    stored = " ".join(str(value) for value in row)
    assert secret not in stored
    assert secret_part not in stored
    assert ApiKey.objects.get(pk=data["id"]).key_hash == hashlib.sha256(secret.encode()).hexdigest()


def test_the_secret_is_not_in_the_audit_trail(admin_member):
    data = create_key(admin_member)
    _, _, secret_part = data["key"].split("_", 2)
    for record in ChangeRecord.objects.all():
        assert secret_part not in str(record.payload)


def test_creating_a_key_is_recorded(admin_member, tenant):
    data = create_key(admin_member, roles=["viewer", "approver"])
    key = ApiKey.objects.get(pk=data["id"])
    (record,) = records(key, EventType.API_KEY_CREATED)
    assert record.actor == admin_member.actor.ref
    assert record.tenant_id == tenant.pk
    after = record.payload["after"]
    assert (after["name"], after["prefix"], after["roles"]) == ("ci pipeline", data["prefix"], ["approver", "viewer"])
    assert "instance" not in after  # an instance binding is registry's (registry.InstanceKey), recorded there
    assert record.payload["acts_for"] == ApiKey.objects.get(prefix=admin_member.actor.ref[4:]).acts_for
    assert record.payload["values_withheld"] == ["key_hash"] and "key_hash" not in after


def test_created_key_authenticates_with_its_roles(admin_member):
    data = create_key(admin_member, roles=["viewer"])
    client = client_for(data["key"])
    assert client.get("/api/v1/templates/").status_code == 200
    refused = client.post("/api/v1/templates/", {"name": "x", "owners": ["a@example.com"]}, format="json")
    assert_error(refused, 403, "role_required")
    assert ApiKey.objects.get(pk=data["id"]).last_used_at is not None


def test_revoked_key_is_401_and_revocation_is_recorded(admin_member):
    data = create_key(admin_member)
    client = client_for(data["key"])
    assert client.get("/api/v1/templates/").status_code == 200

    response = admin_member.client.delete(f"/api/v1/api-keys/{data['id']}/")

    assert response.status_code == 200, response.json()
    assert response.json()["revoked_at"] is not None
    assert_error(client.get("/api/v1/templates/"), 401, "authentication_failed", contains=["revoked"])
    key = ApiKey.objects.get(pk=data["id"])
    assert key.revoked_at is not None  # the row stays for the audit trail
    (record,) = records(key, EventType.API_KEY_REVOKED)
    assert record.actor == admin_member.actor.ref
    assert record.payload == changed(
        "arm.ApiKey", {"revoked_at": (None, record.payload["changes"]["revoked_at"]["after"])}, event="API_KEY_REVOKED"
    )
    assert record.payload["changes"]["revoked_at"]["after"]


def test_revoking_twice_is_409_and_records_once(admin_member):
    data = create_key(admin_member)
    url = f"/api/v1/api-keys/{data['id']}/"
    admin_member.client.delete(url)
    assert_error(admin_member.client.delete(url), 409, "already_revoked")
    assert len(records(ApiKey.objects.get(pk=data["id"]), EventType.API_KEY_REVOKED)) == 1


def test_admin_revoking_its_own_key_loses_access(admin_member):
    assert admin_member.client.delete(f"/api/v1/api-keys/{admin_member.key.pk}/").status_code == 200
    assert_error(admin_member.client.get("/api/v1/api-keys/"), 401, "authentication_failed")


@pytest.mark.parametrize(
    "body",
    [
        {"roles": []},
        {"roles": ["superuser"]},
        {"roles": "operator"},
        {"name": ""},
        {"instance": "not-a-uuid"},
        {"instance": "7d444840-9dc0-11d1-b245-5ffdce74fad2"},
    ],
)
def test_invalid_key_requests_are_400(admin_member, body):
    before = ApiKey.objects.count()
    payload = {"name": "k", "roles": ["viewer"], **body}
    assert_error(admin_member.client.post("/api/v1/api-keys/", payload, format="json"), 400, "validation_error")
    assert ApiKey.objects.count() == before


def test_runtime_key_bound_to_an_instance(admin_member, tenant):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)), state="ACTIVE")
    other = InstanceFactory(version=instance.version, state="ACTIVE")
    data = create_key(admin_member, roles=["runtime"], instance=str(instance.pk))
    assert data["instance"] == str(instance.pk)
    key = ApiKey.objects.get(pk=data["id"])
    assert len(records(key, EventType.API_KEY_CREATED)) == 1
    # The binding's own record names the key's id (the binding's primary key is the key).
    (binding,) = records(key, "INSTANCE_KEY_CREATED")
    assert (binding.target_type, binding.payload["after"]["instance"]) == ("InstanceKey", str(instance.pk))

    client = client_for(data["key"])
    assert client.post(f"/api/v1/instances/{instance.pk}/heartbeat/", {}, format="json").status_code == 200
    assert_error(client.post(f"/api/v1/instances/{other.pk}/heartbeat/", {}, format="json"), 404, "not_found")
    assert_error(client.get("/api/v1/versions/"), 403, "role_required")


def test_keys_are_listed_by_instance_and_by_revocation(admin_member, tenant, other_tenant):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)), state="ACTIVE")
    other = InstanceFactory(version=instance.version, state="ACTIVE")
    bound = create_key(admin_member, roles=["runtime"], instance=str(instance.pk))
    revoked = create_key(admin_member, roles=["runtime"], instance=str(instance.pk))
    create_key(admin_member, roles=["runtime"], instance=str(other.pk))
    assert admin_member.client.delete(f"/api/v1/api-keys/{revoked['id']}/").status_code == 200

    def listed(**query):
        response = admin_member.client.get("/api/v1/api-keys/", query)
        assert response.status_code == 200, response.json()
        return {item["id"] for item in response.json()["results"]}

    assert listed(instance=str(instance.pk)) == {bound["id"], revoked["id"]}
    assert listed(instance=str(instance.pk), revoked="false") == {bound["id"]}
    assert listed(instance=str(instance.pk), revoked="true") == {revoked["id"]}
    # another tenant's instance id matches nothing here; a malformed one is a 400
    foreign = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=other_tenant)))
    assert listed(instance=str(foreign.pk)) == set()
    assert admin_member.client.get("/api/v1/api-keys/", {"instance": "nope"}).status_code == 400
    assert admin_member.client.get("/api/v1/api-keys/", {"revoked": "-58800"}).status_code == 400
