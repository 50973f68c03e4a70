"""Identity services behind the Members page: adding people, changing roles (never dropping the last admin,
a self-granted approver flagged), removing, deactivating (only whole accounts the admin answers for),
set-password links, and create_user's sign-in hint and Django admin access."""

import io
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from arm.errors import Conflict, NotFound, RoleRequired
from audit.choices import EventType
from audit.recording import recorded_update
from tenancy.context import Actor
from tenancy.models import Membership
from tenancy.services import (
    api_key_create,
    member_invite,
    membership_remove,
    membership_set,
    password_link_create,
    user_deactivate,
    user_reactivate,
)
from tests.factories import MembershipFactory, TemplateFactory, UserFactory, VersionFactory
from tests.helpers import records
from tests.policies.factories import make_approval

pytestmark = pytest.mark.django_db


def person(tenant, username, roles):
    user = UserFactory(username=username)
    MembershipFactory(tenant=tenant, user=user, roles=list(roles))
    return user, Actor.for_user(user, roles)


@pytest.fixture
def alice(tenant):
    """A tenant admin, as herself."""
    return person(tenant, "alice", ["admin"])


# ---------------------------------------------------------------- adding people


def test_member_invite_with_a_password(tenant, alice):
    membership = member_invite(
        tenant=tenant,
        username="dana",
        email="dana@example.com",
        roles=["operator", "viewer"],
        password="a-Long-passphrase-42",
        actor=alice[1],
    )
    user = membership.user
    assert user.check_password("a-Long-passphrase-42") and user.email == "dana@example.com"
    assert membership.roles == ["operator", "viewer"] and not user.is_staff
    (record,) = records(membership, EventType.MEMBER_ADDED)
    assert record.actor == "user:alice"
    assert record.payload["after"]["roles"] == ["operator", "viewer"]
    assert {key: record.payload[key] for key in ("event", "user", "email", "sign_in")} == {
        "event": "MEMBER_ADDED",
        "user": "dana",
        "email": "dana@example.com",
        "sign_in": "password",
    }


def test_member_invite_validates_the_password_and_refuses_runtime_and_taken_names(tenant, alice):
    with pytest.raises(ValidationError) as exc:
        member_invite(tenant=tenant, username="dana", roles=["viewer"], password="123", actor=alice[1])
    assert "password" in exc.value.message_dict
    with pytest.raises(ValidationError):
        member_invite(tenant=tenant, username="dana", roles=["runtime"], actor=alice[1])
    with pytest.raises(ValidationError) as exc:
        member_invite(tenant=tenant, username="ALICE", roles=["viewer"], actor=alice[1])
    assert "taken" in str(exc.value)
    assert not get_user_model().objects.filter(username="dana").exists()


def test_member_invite_without_password_and_a_working_set_password_link(tenant, alice):
    membership = member_invite(tenant=tenant, username="erin", roles=["admin"], actor=alice[1])
    erin = membership.user
    assert not erin.has_usable_password() and erin.is_staff  # an admin gets Django admin, like the demo's
    path = password_link_create(tenant=tenant, user=erin, actor=alice[1])
    assert path.startswith("/accounts/set-password/")
    (record,) = records(erin, EventType.PASSWORD_LINK_CREATED)
    assert path not in str(record.payload)  # the link is never recorded

    client = Client()
    page = client.get(path, follow=True)
    assert page.status_code == 200 and b"set-password-form" in page.content
    assert "no-store" in page["Cache-Control"]
    form_url = page.redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": "Erin-new-pass-99", "new_password2": "Erin-new-pass-99"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    erin.refresh_from_db()
    assert erin.check_password("Erin-new-pass-99")
    (record,) = records(erin, EventType.PASSWORD_SET)
    assert record.actor == "user:erin"
    # spent: the same link no longer works
    assert b"set-password-invalid" in Client().get(path, follow=True).content


def test_only_admins_manage_people(tenant, alice):
    _, viewer = person(tenant, "vic", ["viewer", "approver", "operator", "compliance"])
    target = Membership.objects.get(user=alice[0])
    with pytest.raises(RoleRequired):
        member_invite(tenant=tenant, username="x", roles=["viewer"], actor=viewer)
    with pytest.raises(RoleRequired):
        membership_set(tenant=tenant, user=alice[0], roles=["viewer"], actor=viewer)
    with pytest.raises(RoleRequired):
        membership_remove(tenant=tenant, membership=target, actor=viewer)
    with pytest.raises(RoleRequired):
        user_deactivate(tenant=tenant, user=alice[0], actor=viewer)
    with pytest.raises(RoleRequired):
        password_link_create(tenant=tenant, user=alice[0], actor=viewer)


def test_another_tenants_member_is_not_found(tenant, other_tenant, alice):
    outsider, _ = person(other_tenant, "gary", ["viewer"])
    theirs = Membership.objects.get(user=outsider)
    with pytest.raises(NotFound):
        membership_remove(tenant=tenant, membership=theirs, actor=alice[1])
    with pytest.raises(NotFound):
        user_deactivate(tenant=tenant, user=outsider, actor=alice[1])
    with pytest.raises(NotFound):
        password_link_create(tenant=tenant, user=outsider, actor=alice[1])
    assert Membership.objects.filter(pk=theirs.pk).exists() and get_user_model().objects.get(pk=outsider.pk).is_active


# ---------------------------------------------------------------- roles: last admin, self-grant


def test_the_last_admin_cannot_drop_admin_or_leave(tenant, alice):
    with pytest.raises(Conflict) as exc:
        membership_set(tenant=tenant, user=alice[0], roles=["viewer"], actor=alice[1])
    assert exc.value.status == 409 and exc.value.code == "last_admin" and "last admin" in exc.value.message
    with pytest.raises(Conflict):
        membership_remove(tenant=tenant, membership=Membership.objects.get(user=alice[0]), actor=alice[1])
    assert Membership.objects.get(user=alice[0]).roles == ["admin"]
    # with a second (active) admin she may
    bob, _ = person(tenant, "bob", ["admin"])
    membership_set(tenant=tenant, user=alice[0], roles=["viewer"], actor=alice[1])
    alice[0].refresh_from_db()
    assert not alice[0].is_staff  # admin nowhere any more
    # a deactivated admin does not count
    bob.is_active = False
    bob.save()
    _, carol = person(tenant, "carol", ["admin"])
    with pytest.raises(Conflict):
        membership_set(tenant=tenant, user=carol.user, roles=["viewer"], actor=carol)


def test_self_granted_approver_is_flagged_with_pending_work(tenant, alice):
    template = TemplateFactory(tenant=tenant)
    VersionFactory(template=template, version_label="1.0.0", lifecycle_state="CANDIDATE", created_by="user:alice")
    key, _ = api_key_create(tenant=tenant, name="alice ci", roles=["operator"], actor=alice[1])
    VersionFactory(
        template=template, version_label="1.0.1", lifecycle_state="CANDIDATE", created_by=f"key:{key.prefix}"
    )
    from tests.factories import EnvironmentFactory, InstanceFactory, ProviderFactory

    instance = InstanceFactory(
        version=VersionFactory(template=template, version_label="2.0.0", lifecycle_state="APPROVED"),
        environment=EnvironmentFactory(tenant=tenant),
        provider=ProviderFactory(tenant=tenant),
        state="ACTIVE",
    )
    approval = make_approval(instance)
    recorded_update(type(approval).objects.filter(pk=approval.pk), requester="user:alice")

    membership = membership_set(tenant=tenant, user=alice[0], roles=["admin", "approver"], actor=alice[1])
    record = records(membership, EventType.MEMBERSHIP_CHANGED)[-1]
    assert record.payload["self_grant"] is True
    assert record.payload["pending_work"] == {"candidate_versions": 2, "pending_approvals": 1}
    # granting someone else approver is no self-grant
    bob, _ = person(tenant, "bob", ["viewer"])
    other = membership_set(tenant=tenant, user=bob, roles=["approver"], actor=alice[1])
    assert "self_grant" not in records(other, EventType.MEMBERSHIP_CHANGED)[-1].payload


# ---------------------------------------------------------------- remove, deactivate


def test_remove_takes_the_person_out_of_this_tenant_only(tenant, other_tenant, alice):
    dana, _ = person(tenant, "dana", ["operator"])
    MembershipFactory(tenant=other_tenant, user=dana, roles=["viewer"])
    membership = Membership.objects.get(tenant=tenant, user=dana)
    membership_remove(tenant=tenant, membership=membership, actor=alice[1])
    assert list(Membership.objects.filter(user=dana).values_list("tenant__slug", flat=True)) == ["globex"]
    (record,) = records(tenant=tenant, event_type=EventType.MEMBER_REMOVED)
    assert (record.payload["user"], record.payload["before"]["roles"]) == ("dana", ["operator"])
    assert record.payload["action"] == "deleted" and record.target_id == str(membership.pk)


def test_deactivate_only_accounts_the_admin_answers_for(tenant, other_tenant, alice):
    dana, _ = person(tenant, "dana", ["operator"])
    user_deactivate(tenant=tenant, user=dana, actor=alice[1])
    dana.refresh_from_db()
    assert not dana.is_active
    assert records(tenant=tenant, event_type=EventType.USER_DEACTIVATED)[0].payload == {"user": "dana"}
    with pytest.raises(Conflict):
        user_deactivate(tenant=tenant, user=dana, actor=alice[1])  # already
    user_reactivate(tenant=tenant, user=dana, actor=alice[1])
    dana.refresh_from_db()
    assert dana.is_active and records(tenant=tenant, event_type=EventType.USER_REACTIVATED)

    # in a tenant where alice is not admin: only "remove from this tenant"
    MembershipFactory(tenant=other_tenant, user=dana, roles=["viewer"])
    with pytest.raises(Conflict) as exc:
        user_deactivate(tenant=tenant, user=dana, actor=alice[1])
    assert exc.value.code == "account_not_yours" and "remove them from this tenant" in exc.value.message
    with pytest.raises(Conflict):
        password_link_create(tenant=tenant, user=dana, actor=alice[1])  # no account takeover either
    # admin there too: she may, and the record lands in both tenants
    MembershipFactory(tenant=other_tenant, user=alice[0], roles=["admin"])
    MembershipFactory(tenant=other_tenant, user=UserFactory(username="globex-admin"), roles=["admin"])
    user_deactivate(tenant=tenant, user=dana, actor=alice[1])
    assert records(tenant=other_tenant, event_type=EventType.USER_DEACTIVATED)


def test_nobody_deactivates_themselves_or_a_platform_operator(tenant, alice):
    with pytest.raises(Conflict):
        user_deactivate(tenant=tenant, user=alice[0], actor=alice[1])
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    MembershipFactory(tenant=tenant, user=root, roles=["viewer"])
    with pytest.raises(Conflict):
        user_deactivate(tenant=tenant, user=root, actor=alice[1])


# ---------------------------------------------------------------- create_user


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_user_without_password_says_how_they_sign_in(tenant):
    out = run("create_user", "hank", "--tenant", "acme", "--role", "viewer")
    assert "No password set" in out and "/accounts/set-password/" in out and "changepassword hank" in out
    # one sentence with the whole URL (create_user --base-url), not a bare path on a line of its own
    link = urlsplit(re.search(r"https?://\S+/accounts/set-password/\S+/", out).group(0)).path
    assert b"set-password-form" in Client().get(link, follow=True).content


def test_create_user_admin_gets_django_admin_like_the_demo_admins(tenant):
    out = run("create_user", "ivy", "--tenant", "acme", "--role", "admin", "--password", "Ivy-pass-1234")
    assert "No password set" not in out
    ivy = get_user_model().objects.get(username="ivy")
    assert ivy.is_staff and ivy.check_password("Ivy-pass-1234")
    client = Client()
    client.force_login(ivy)
    assert client.get("/admin/").status_code == 200
