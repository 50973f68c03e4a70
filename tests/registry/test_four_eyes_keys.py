"""Four eyes compares people: an API key counts as the person who minted it."""

import pytest

from audit.choices import EventType
from tenancy.context import Actor
from tenancy.services import api_key_create
from tests.conftest import change_records
from tests.factories import TemplateFactory, VersionFactory, make_api_key

pytestmark = pytest.mark.django_db


def _candidate(tenant, created_by):
    return VersionFactory(
        template=TemplateFactory(tenant=tenant), lifecycle_state="CANDIDATE", eval_status="PASS", created_by=created_by
    )


def _key_client(client_factory, secret):
    client_factory.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client_factory


def test_a_key_minted_by_the_creator_cannot_approve_the_creators_version(tenant, admin_member, anon):
    version = _candidate(tenant, created_by=f"user:{admin_member.user.username}")
    admin_as_user = Actor.for_user(admin_member.user, ["admin"])
    key, secret = api_key_create(tenant=tenant, name="my approver key", roles=["approver"], actor=admin_as_user)
    response = _key_client(anon, secret).post(f"/api/v1/versions/{version.pk}/transition/", {"to": "APPROVED"})
    assert response.status_code == 403 and response.json()["code"] == "four_eyes"
    assert f"acting for user:{admin_member.user.username}" in response.json()["message"]
    assert change_records(version, EventType.VERSION_TRANSITIONED) == []


def test_a_version_created_with_a_key_cannot_be_approved_by_the_keys_creator(tenant, admin_member):
    admin_as_user = Actor.for_user(admin_member.user, ["admin"])
    key, _ = api_key_create(tenant=tenant, name="ci", roles=["operator"], actor=admin_as_user)
    version = _candidate(tenant, created_by=f"key:{key.prefix}")
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(admin_member.user)
    response = client.post(f"/api/v1/versions/{version.pk}/transition/", {"to": "APPROVED"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "four_eyes"


def test_keys_made_by_commands_are_not_one_person(tenant, anon):
    creator_key, _ = make_api_key(tenant, ["operator"], name="ci")
    approver_key, secret = make_api_key(tenant, ["approver"], name="approver bot")
    for key in (creator_key, approver_key):
        key.created_by = "system"
        key.save(update_fields=["created_by"])
    version = _candidate(tenant, created_by=f"key:{creator_key.prefix}")
    response = _key_client(anon, secret).post(f"/api/v1/versions/{version.pk}/transition/", {"to": "APPROVED"})
    assert response.status_code == 200, response.json()
