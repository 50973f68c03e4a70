"""Every path that sets a password runs Django's password validators (common passwords, all digits, too
short, close to the username): the set-password link, the Members page, ``create_user`` (a refused
``--password`` exits with code 2), Django admin. And only the latest set-password link made for a person
works: each new one cancels the older ones."""

import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from audit.choices import EventType
from tenancy.context import Actor
from tenancy.models import Membership
from tenancy.services import member_invite, membership_remove, password_link_create
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.helpers import records

pytestmark = pytest.mark.django_db

User = get_user_model()
WEAK = {
    "password": "This password is too common.",
    "12345678": "This password is too common.",
    "80317264": "This password is entirely numeric.",
    "123": "This password is too short. It must contain at least 8 characters.",
}


@pytest.fixture
def boss(tenant):
    user = UserFactory(username="boss")
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    return Actor.for_user(user, ["admin"])


@pytest.fixture
def newcomer(tenant, boss):
    """A member without a password yet (added for a set-password link)."""
    return member_invite(tenant=tenant, username="newcomer", roles=["viewer"], actor=boss).user


def _open_link(path):
    """Open a set-password link; returns (client, form URL) or (client, None) when the link is refused."""
    client = Client()
    page = client.get(path, follow=True)
    if b"set-password-invalid" in page.content:
        return client, None
    assert b"set-password-form" in page.content
    return client, page.redirect_chain[-1][0]


def _set_through_link(path, password):
    client, form_url = _open_link(path)
    assert form_url is not None, "the link was refused"
    return client.post(form_url, {"new_password1": password, "new_password2": password})


# ---------------------------------------------------------------- the validators, on every path


@pytest.mark.parametrize("weak", WEAK)
def test_the_set_password_link_refuses_weak_passwords(tenant, boss, newcomer, weak):
    path = password_link_create(tenant=tenant, user=newcomer, actor=boss)

    response = _set_through_link(path, weak)

    assert response.status_code == 200 and WEAK[weak] in response.content.decode()
    newcomer.refresh_from_db()
    assert not newcomer.has_usable_password()
    assert records(newcomer, EventType.PASSWORD_SET) == []


def test_the_set_password_link_refuses_a_password_like_the_username(tenant, boss, newcomer):
    response = _set_through_link(password_link_create(tenant=tenant, user=newcomer, actor=boss), "newcomer1")
    assert "The password is too similar to the username." in response.content.decode()


@pytest.mark.parametrize("weak", WEAK)
def test_member_invite_refuses_weak_passwords(tenant, boss, weak):
    with pytest.raises(ValidationError) as refused:
        member_invite(tenant=tenant, username="dana", roles=["viewer"], password=weak, actor=boss)
    assert WEAK[weak] in refused.value.message_dict["password"]
    assert not User.objects.filter(username="dana").exists()


def _create_user(*args):
    call_command("create_user", *args, stdout=io.StringIO())


@pytest.mark.parametrize("weak", WEAK)
def test_create_user_refuses_a_weak_password_with_exit_code_2(tenant, weak):
    with pytest.raises(CommandError) as refused:
        _create_user("dana", "--tenant", tenant.slug, "--role", "viewer", "--password", weak)

    assert refused.value.returncode == 2
    assert str(refused.value).startswith("--password refused: ") and WEAK[weak] in str(refused.value)
    assert not User.objects.filter(username="dana").exists()


def test_create_user_refuses_a_weak_password_for_an_existing_account_and_changes_nothing(tenant):
    _create_user("dana", "--tenant", tenant.slug, "--role", "viewer", "--password", "Dana-long-pass-7")

    with pytest.raises(CommandError) as refused:
        _create_user("dana", "--tenant", tenant.slug, "--role", "admin", "--password", "12345678")

    assert refused.value.returncode == 2 and "This password is too common." in str(refused.value)
    dana = User.objects.get(username="dana")
    assert dana.check_password("Dana-long-pass-7")
    assert Membership.objects.get(user=dana).roles == ["viewer"]


def test_create_user_sets_a_new_password_of_an_existing_account_and_records_it(tenant):
    _create_user("dana", "--tenant", tenant.slug, "--role", "viewer", "--password", "Dana-long-pass-7")
    _create_user("dana", "--tenant", tenant.slug, "--role", "viewer", "--password", "Dana-other-pass-8")

    dana = User.objects.get(username="dana")
    assert dana.check_password("Dana-other-pass-8")
    (record,) = records(dana, EventType.PASSWORD_SET)
    assert record.payload == {"user": "dana", "via": "create_user"} and record.actor == "system"


@pytest.fixture
def superuser_client(db):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    return client


@pytest.mark.parametrize("weak", WEAK)
def test_django_admin_add_user_refuses_weak_passwords(superuser_client, weak):
    response = superuser_client.post(
        "/admin/auth/user/add/",
        {"username": "dana", "usable_password": "true", "password1": weak, "password2": weak},
    )
    assert response.status_code == 200 and WEAK[weak] in response.content.decode()
    assert not User.objects.filter(username="dana").exists()


def test_django_admin_own_password_change_refuses_weak_passwords(superuser_client):
    response = superuser_client.post(
        "/admin/password_change/",
        {"old_password": "pw-for-tests-123", "new_password1": "password", "new_password2": "password"},
    )
    assert response.status_code == 200 and "This password is too common." in response.content.decode()
    assert User.objects.get(username="root").check_password("pw-for-tests-123")


# ---------------------------------------------------------------- one link at a time


def test_a_new_set_password_link_cancels_the_older_ones(tenant, boss, newcomer):
    first = password_link_create(tenant=tenant, user=newcomer, actor=boss)
    second = password_link_create(tenant=tenant, user=newcomer, actor=boss)
    third = password_link_create(tenant=tenant, user=newcomer, actor=boss)

    for older in (first, second):
        assert _open_link(older)[1] is None, "an older link still works"
    response = _set_through_link(third, "Newcomer-long-pass-5")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert _open_link(third)[1] is None  # spent once used


def test_a_link_opened_before_a_newer_one_was_made_is_refused_when_submitted(tenant, boss, newcomer):
    client, form_url = _open_link(password_link_create(tenant=tenant, user=newcomer, actor=boss))
    password_link_create(tenant=tenant, user=newcomer, actor=boss)

    response = client.post(form_url, {"new_password1": "Newcomer-long-pass-5", "new_password2": "Newcomer-long-pass-5"})

    assert b"set-password-invalid" in response.content
    newcomer.refresh_from_db()
    assert not newcomer.has_usable_password()


@pytest.mark.parametrize("leaves", ["the tenant of the older link", "the tenant of the newer link"])
def test_a_newer_link_made_in_another_tenant_cancels_and_stays_cancelling(tenant, boss, newcomer, leaves):
    """The link record is written in every tenant of the person, naming the link, so leaving either
    tenant neither brings an older link back nor cancels the newer one."""
    other = TenantFactory(slug="other")
    MembershipFactory(tenant=other, user=newcomer, roles=["viewer"])
    MembershipFactory(tenant=other, user=boss.user, roles=["admin"])
    older = password_link_create(tenant=tenant, user=newcomer, actor=boss)
    newer = password_link_create(tenant=other, user=newcomer, actor=boss)
    made = records(newcomer, EventType.PASSWORD_LINK_CREATED)
    assert Counter((r.tenant_id, r.payload["made_in"]) for r in made) == {
        (t.pk, slug): 1 for t in (tenant, other) for slug in (tenant.slug, other.slug)
    }
    assert len({r.payload["link_id"] for r in made}) == 2

    left = tenant if leaves == "the tenant of the older link" else other
    membership_remove(tenant=left, membership=Membership.objects.get(tenant=left, user=newcomer), actor=boss)

    assert _open_link(older)[1] is None
    assert _set_through_link(newer, "Newcomer-long-pass-5").status_code == 302
