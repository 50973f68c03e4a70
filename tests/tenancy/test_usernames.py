"""A username names one account whatever its case or Unicode compatibility form: ``OPS`` and the
full-width ``ＯＰＳ`` are ``ops`` (NFKC, as Django normalizes usernames, then case-insensitive). Every path
creating or renaming an account refuses a taken one (Members page, ``create_user``, Django admin), and a
unique index on ``LOWER(username)`` backs the rule in the database. Django admin's user pages also keep
the account rules: deactivation through the service (never a tenant's last admin), no deletion."""

import importlib
import io

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client

from arm.errors import AlreadyTaken
from audit.choices import EventType
from tenancy.context import Actor
from tenancy.models import Membership
from tenancy.services import member_invite
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import records

pytestmark = pytest.mark.django_db

User = get_user_model()
SAME_AS_OPS = ["ops", "OPS", "Ops", "ＯＰＳ", "ｏｐｓ"]


@pytest.fixture
def ops(tenant):
    user = UserFactory(username="ops")
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    return user


@pytest.mark.parametrize("name", SAME_AS_OPS)
def test_member_invite_refuses_a_username_taken_in_another_case_or_form(tenant, ops, name):
    actor = Actor.for_user(ops, ["admin"])
    with pytest.raises(AlreadyTaken) as refused:
        member_invite(tenant=tenant, username=name, roles=["viewer"], actor=actor)
    assert refused.value.message_dict == {"username": ["This username is taken."]}
    assert list(User.objects.values_list("username", flat=True)) == ["ops"]


def test_the_members_page_shows_the_taken_username_on_the_form(tenant, ops):
    client = Client()
    client.force_login(ops)
    response = client.post("/settings/members/new/", {"username": "ＯＰＳ", "roles": ["viewer"], "sign_in": "link"})
    assert response.status_code == 200 and "This username is taken." in response.content.decode()
    assert User.objects.count() == 1


def test_a_new_username_is_stored_in_its_normal_form(tenant, ops):
    membership = member_invite(tenant=tenant, username="ＤＥＶ", roles=["viewer"], actor=Actor.for_user(ops, ["admin"]))
    assert membership.user.username == "DEV"
    (record,) = records(membership, EventType.MEMBER_ADDED)
    assert record.payload["user"] == "DEV"


@pytest.mark.parametrize("name", ["OPS", "ＯＰＳ"])
def test_create_user_means_the_existing_account_whatever_the_case_or_form(tenant, ops, name):
    out = io.StringIO()
    call_command("create_user", name, "--tenant", tenant.slug, "--role", "viewer", "--role", "admin", stdout=out)

    assert list(User.objects.values_list("username", flat=True)) == ["ops"]
    assert out.getvalue().startswith(f"Updated user ops in {tenant.slug}")
    assert Membership.objects.get(user=ops).roles == ["admin", "viewer"]


def test_the_database_refuses_a_username_differing_only_in_case(ops):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="OPS")


class _Editor:
    """What the migration's functions use of a schema editor, inside the test's transaction."""

    connection = connection

    def execute(self, sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)


def test_the_migration_names_usernames_differing_only_in_case(ops):
    migration = importlib.import_module("tenancy.migrations.0007_username_lower_unique")
    migration.drop(apps, _Editor())
    User.objects.create(username="OPS")

    with pytest.raises(RuntimeError) as refused:
        migration.create(apps, _Editor())

    assert "these accounts differ only in case: 'ops' and 'OPS'" in str(refused.value)


# ---------------------------------------------------------------- Django admin's user pages


@pytest.fixture
def root_client(db):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    return client


@pytest.mark.parametrize("name", ["OPS", "ＯＰＳ"])
def test_django_admin_add_user_refuses_a_taken_username(root_client, ops, name):
    response = root_client.post(
        "/admin/auth/user/add/",
        {
            "username": name,
            "usable_password": "true",
            "password1": "Long-enough-pass-9",
            "password2": "Long-enough-pass-9",
        },
    )
    assert response.status_code == 200 and "This username is taken." in response.content.decode()
    assert not User.objects.exclude(username__in=["ops", "root"]).exists()


def _change_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    return {**data, **changes}


def test_django_admin_renaming_to_a_taken_username_is_a_form_error_not_a_500(root_client, ops):
    dana = UserFactory(username="dana")

    response = root_client.post(f"/admin/auth/user/{dana.pk}/change/", _change_form(dana, username="ＯＰＳ"))

    assert response.status_code == 200 and "This username is taken." in response.content.decode()
    assert User.objects.get(pk=dana.pk).username == "dana"


def test_django_admin_keeps_a_username_in_another_case_of_its_own(root_client, ops):
    response = root_client.post(f"/admin/auth/user/{ops.pk}/change/", _change_form(ops, username="Ops"))
    assert response.status_code == 302
    assert User.objects.get(pk=ops.pk).username == "Ops"


def test_django_admin_cannot_deactivate_through_the_form_nor_delete(root_client, ops):
    root_client.post(f"/admin/auth/user/{ops.pk}/change/", _change_form(ops, is_active=""))
    assert User.objects.get(pk=ops.pk).is_active  # is_active is read-only there
    assert root_client.get(f"/admin/auth/user/{ops.pk}/delete/").status_code == 403


def test_django_admin_deactivation_refuses_a_tenants_last_admin(root_client, tenant, ops):
    dana = UserFactory(username="dana")
    MembershipFactory(tenant=tenant, user=dana, roles=["viewer"])

    response = root_client.post(
        "/admin/auth/user/", {"action": "deactivate", "_selected_action": [str(ops.pk), str(dana.pk)]}, follow=True
    )

    html = response.content.decode()
    assert "Ops is the last admin of" in html and "Deactivated 1 account(s)." in html  # admin capitalizes messages
    assert User.objects.get(pk=ops.pk).is_active and not User.objects.get(pk=dana.pk).is_active
    (record,) = records(dana, EventType.USER_DEACTIVATED)
    assert record.actor == "user:root"


def test_account_changes_outside_a_tenant_are_for_platform_operators(ops):
    from arm.errors import RoleRequired
    from tenancy.services import account_set_active

    dana = UserFactory(username="dana")
    with pytest.raises(RoleRequired):
        account_set_active(user=dana, active=False, actor=Actor.for_user(ops, ["admin"]))
    assert User.objects.get(pk=dana.pk).is_active


def test_a_username_check_error_is_a_validation_error_for_forms_and_commands(ops):
    from tenancy.services import username_check

    with pytest.raises(ValidationError):
        username_check("ＯＰＳ")
    assert username_check("ＯＰＳ", exclude=ops) == "OPS"
