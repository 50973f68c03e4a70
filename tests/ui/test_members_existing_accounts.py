"""The Members page adds a person who already has an ARM account (in another tenant) by its username
(docs/decisions.md, "People, roles and API keys"): only the membership is made, the account stays the
person's, and a taken name is never read as an existing account unless the admin says so."""

import pytest
from django.db import connection
from django.urls import reverse

from arm.errors import AlreadyTaken
from audit.choices import EventType
from tenancy import services
from tenancy.context import Actor
from tenancy.models import Membership
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import race, records

pytestmark = pytest.mark.django_db

EXISTING = "existing"


def add(client, username, roles=("viewer",), sign_in=EXISTING, **fields):
    return client.post(
        reverse("ui:member_add"),
        {"username": username, "roles": list(roles), "sign_in": sign_in, **fields},
        HTTP_HX_REQUEST="true",
    )


def field_errors(response, field: str) -> str:
    html = response.content.decode()
    return " ".join(part.split("</p>")[0] for part in html.split(f'data-field-error="{field}">')[1:])


def test_an_admin_adds_someone_from_another_tenant_who_then_sees_it_in_their_switcher(
    login, admin_member, outsider, tenant, other_tenant
):
    password_before = outsider.user.password

    response = add(login(admin_member), "ADMIN-GLOBEX", roles=("operator", "viewer"))  # the username rule

    assert response.status_code == 200 and response["HX-Redirect"] == reverse("ui:members")
    membership = Membership.objects.get(tenant=tenant, user=outsider.user)
    assert membership.roles == ["operator", "viewer"]
    outsider.user.refresh_from_db()
    assert outsider.user.password == password_before and outsider.user.is_active  # the account is theirs
    assert Membership.objects.filter(tenant=other_tenant, user=outsider.user, roles=["admin"]).exists()
    (added,) = records(membership, EventType.MEMBER_ADDED)
    assert (added.actor, added.payload["user"], added.payload["sign_in"]) == (
        f"user:{admin_member.user.username}",
        "admin-globex",
        "existing account",
    )
    assert added.tenant_id == tenant.pk  # recorded in the tenant that added them, nowhere else
    members = login(admin_member).get(reverse("ui:members")).content.decode()
    assert 'data-username="admin-globex"' in members
    switcher = login(outsider).get(reverse("ui:directory")).content.decode()
    assert 'id="tenant-switch"' in switcher and ">Acme</option>" in switcher and ">Globex</option>" in switcher


def test_the_admin_who_added_them_cannot_change_their_account(login, admin_member, outsider, tenant):
    add(login(admin_member), "admin-globex")
    membership = Membership.objects.get(tenant=tenant, user=outsider.user)
    client = login(admin_member)

    html = client.get(reverse("ui:member_edit", args=[membership.pk])).content.decode()

    assert 'data-testid="account-blocker"' in html and 'data-testid="deactivate"' not in html
    assert client.post(reverse("ui:member_deactivate", args=[membership.pk])).status_code == 409
    assert client.post(reverse("ui:member_password_link", args=[membership.pk])).status_code == 409


def test_a_taken_name_for_a_new_account_is_refused_with_the_way_to_add_the_existing_one(
    login, admin_member, outsider, tenant
):
    response = add(login(admin_member), "admin-globex", sign_in="link")

    errors = field_errors(response, "username")
    assert "This username is taken." in errors and "They already have an ARM account" in errors
    assert not Membership.objects.filter(tenant=tenant, user=outsider.user).exists()


@pytest.mark.parametrize("who", ["nobody", "deactivated"])
def test_no_active_account_by_that_name_is_the_same_answer_for_unknown_and_deactivated(
    login, admin_member, tenant, other_tenant, who
):
    gone = UserFactory(username="deactivated", is_active=False)
    MembershipFactory(tenant=other_tenant, user=gone, roles=["viewer"])

    response = add(login(admin_member), who)

    assert field_errors(response, "username") == "No active ARM account has this username."
    assert Membership.objects.filter(tenant=tenant).count() == 5  # the cast


def test_a_member_is_not_added_twice_and_keeps_their_roles(login, admin_member, viewer, tenant):
    response = add(login(admin_member), "viewer-acme", roles=("admin",))

    assert field_errors(response, "username") == "viewer-acme is already a member of Acme."
    assert Membership.objects.get(tenant=tenant, user=viewer.user).roles == ["viewer"]


def test_an_existing_account_keeps_its_own_email_and_password(login, admin_member, outsider, tenant):
    response = add(login(admin_member), "admin-globex", email="new@example.com", password="Another-pass-9")

    assert field_errors(response, "email") == "Their account keeps its own email: leave this empty."
    assert field_errors(response, "password") == "Their account keeps its own password: leave this empty."
    assert not Membership.objects.filter(tenant=tenant, user=outsider.user).exists()


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance"])
def test_only_admins_add_existing_accounts(login, cast, outsider, tenant, role):
    assert add(login(cast[role]), "admin-globex").status_code == 403
    assert not Membership.objects.filter(tenant=tenant, user=outsider.user).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)")
@pytest.mark.django_db(transaction=True)
def test_two_admins_adding_the_same_person_at_once_add_them_once(tenant, other_tenant):
    person = UserFactory(username="consultant")
    MembershipFactory(tenant=other_tenant, user=person, roles=["viewer"])
    admins = [UserFactory(username=f"admin-{n}") for n in range(2)]
    for admin in admins:
        MembershipFactory(tenant=tenant, user=admin, roles=["admin"])

    results = race(
        [
            lambda admin=admin: services.member_add_existing(
                tenant=tenant, username="consultant", roles=["viewer"], actor=Actor.for_user(admin, ["admin"])
            )
            for admin in admins
        ]
    )

    added = [r for r in results if isinstance(r, Membership)]
    refused = [r for r in results if isinstance(r, AlreadyTaken)]
    assert (len(added), len(refused)) == (1, 1), results
    assert Membership.objects.filter(tenant=tenant, user=person).count() == 1
