"""A template's owners are email addresses (Django's EmailValidator) or usernames of the tenant's members,
compared by the username rule (``tenancy.usernames``: case and Unicode form ignored); the API and the UI
read the same rule from the model. Another tenant's people read as unknown, as a nonexistent name does."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from registry.models import AgentTemplate
from tenancy import services
from tenancy.models import Membership
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal-root"}


def not_owners(*names) -> str:
    return "Owners are email addresses or usernames of people in this tenant; not: " + ", ".join(names) + "."


def create(member, owners, name="triage"):
    return member.client.post("/api/v1/templates/", {"name": name, "owners": owners}, format="json")


@pytest.mark.parametrize(
    "owners",
    [
        ["ops@example.com"],
        ["viewer-acme"],
        ["VIEWER-ACME", "Ops.Team+agents@Example.co.uk"],
    ],
)
def test_emails_and_members_usernames_are_owners(operator, tenant, owners):
    response = create(operator, owners)

    assert response.status_code == 201, response.json()
    assert AgentTemplate.objects.get(tenant=tenant, name="triage").owners == owners


@pytest.mark.parametrize(
    "owners, refused",
    [
        (["a@b.c"], ["a@b.c"]),  # an @ and a dot are not an email address
        (["x@y"], ["x@y"]),
        (["not..valid@example.com", "ok@example.com"], ["not..valid@example.com"]),
        (["bob"], ["bob"]),  # no such account
        (["admin-globex"], ["admin-globex"]),  # another tenant's admin: not revealed, just unknown
        (["viewer-acme", "ghost", "nobody@nowhere"], ["ghost", "nobody@nowhere"]),
    ],
)
def test_anything_else_is_refused_naming_each_one(operator, outsider, tenant, owners, refused):
    body = assert_error(create(operator, owners), 400, "validation_error")

    assert body["errors"] == {"owners": [not_owners(*refused)]}, body
    assert not AgentTemplate.objects.filter(tenant=tenant).exists()


def test_an_owner_who_left_does_not_block_an_edit_but_a_new_unknown_owner_does(operator, admin_member, viewer, tenant):
    template_id = create(operator, ["viewer-acme", "ops@example.com"]).json()["id"]
    membership = Membership.objects.get(tenant=tenant, user=viewer.user)
    services.membership_remove(tenant=tenant, membership=membership, actor=admin_member.actor)
    url = f"/api/v1/templates/{template_id}/"

    kept = operator.client.patch(url, {"description": "still theirs"}, format="json")
    assert kept.status_code == 200, kept.json()

    refused = operator.client.patch(url, {"owners": ["viewer-acme", "bob"]}, format="json")
    body = assert_error(refused, 400, "validation_error")
    assert body["errors"] == {"owners": [not_owners("bob")]}
    assert AgentTemplate.objects.get(pk=template_id).owners == ["viewer-acme", "ops@example.com"]


def test_a_username_is_read_in_any_case_and_unicode_form(cast, tenant):
    template = AgentTemplate(tenant=tenant, name="triage", owners=["ｖｉｅｗｅｒ-ａｃｍｅ"])  # full width
    template.full_clean()  # NFKC and case folded: viewer-acme

    template.owners = ["ｇｈｏｓｔ"]
    with pytest.raises(ValidationError) as refused:
        template.full_clean()
    assert refused.value.message_dict == {"owners": [not_owners("ｇｈｏｓｔ")]}


def test_the_template_form_shows_the_refused_owners(operator, tenant):
    client = Client()
    client.force_login(operator.user)

    refused = client.post(reverse("ui:template_create"), {"name": "triage", "owners": "a@b.c, viewer-acme, bob"}, **HX)
    html = refused.content.decode()
    assert 'data-field-error="owners"' in html and not_owners("a@b.c", "bob") in html
    assert not AgentTemplate.objects.filter(tenant=tenant).exists()

    client.post(reverse("ui:template_create"), {"name": "triage", "owners": "Viewer-Acme, a@example.com"}, **HX)
    assert AgentTemplate.objects.get(tenant=tenant, name="triage").owners == ["Viewer-Acme", "a@example.com"]
