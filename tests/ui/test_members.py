"""The Members page (tenant admins), My API keys (every member) and actors shown as people."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.choices import EventType
from tenancy.context import Actor
from tenancy.models import ApiKey, Membership
from tenancy.services import api_key_create
from tests.factories import MembershipFactory, TemplateFactory, UserFactory, VersionFactory
from tests.helpers import records

pytestmark = pytest.mark.django_db


def no_store(response) -> bool:
    return "no-store" in response["Cache-Control"]


def test_admin_lists_members_with_roles_state_and_last_login(login, admin_member, cast, other_tenant):
    MembershipFactory(tenant=other_tenant, user=UserFactory(username="globex-only"), roles=["viewer"])
    html = login(admin_member).get(reverse("ui:members")).content.decode()
    for member in cast.values():
        assert f'data-username="{member.user.username}"' in html
    assert "globex-only" not in html
    assert 'data-testid="member-state">active' in html and "never" in html
    assert 'href="/settings/members/"' in html  # in the sidebar


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance"])
def test_only_admins_see_members(login, cast, role):
    client = login(cast[role])
    assert client.get(reverse("ui:members")).status_code == 403
    assert client.post(reverse("ui:member_add"), {"username": "x", "roles": ["viewer"]}).status_code == 403
    assert 'href="/settings/members/"' not in client.get(reverse("ui:directory")).content.decode()
    assert 'href="/settings/my-keys/"' in client.get(reverse("ui:directory")).content.decode()


def test_add_person_with_a_set_password_link_shown_once(login, admin_member, tenant):
    client = login(admin_member)
    assert b"member-form" in client.get(reverse("ui:member_add"), HTTP_HX_REQUEST="true").content
    response = client.post(
        reverse("ui:member_add"),
        {"username": "nina", "email": "nina@example.com", "roles": ["operator", "approver"], "sign_in": "link"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and no_store(response)
    html = response.content.decode()
    assert "http://testserver/accounts/set-password/" in html and 'data-copy="#password-link-value"' in html
    membership = Membership.objects.get(tenant=tenant, user__username="nina")
    assert membership.roles == ["approver", "operator"] and not membership.user.has_usable_password()
    assert records(membership, EventType.MEMBER_ADDED)
    assert "/accounts/set-password/" not in client.get(reverse("ui:members")).content.decode()


def test_add_person_with_a_password_checks_it(login, admin_member, tenant):
    client = login(admin_member)
    html = client.post(
        reverse("ui:member_add"), {"username": "otto", "roles": ["viewer"], "sign_in": "password", "password": "otto"}
    ).content.decode()
    assert 'data-field-error="password"' in html and not Membership.objects.filter(user__username="otto").exists()
    html = client.post(reverse("ui:member_add"), {"username": "otto", "sign_in": "link"}).content.decode()
    assert 'data-field-error="roles"' in html
    response = client.post(
        reverse("ui:member_add"),
        {"username": "otto", "roles": ["viewer"], "sign_in": "password", "password": "Otto-long-pass-7"},
    )
    assert response.status_code == 302
    assert Membership.objects.get(user__username="otto").user.check_password("Otto-long-pass-7")


def test_change_roles_and_the_last_admin_guard(login, admin_member, cast, tenant):
    client = login(admin_member)
    viewer = Membership.objects.get(user=cast["viewer"].user)
    assert b"member-roles-form" in client.get(reverse("ui:member_edit", args=[viewer.pk])).content
    response = client.post(reverse("ui:member_edit", args=[viewer.pk]), {"roles": ["viewer", "compliance"]})
    assert response.status_code == 302
    viewer.refresh_from_db()
    assert viewer.roles == ["compliance", "viewer"]

    own = Membership.objects.get(user=admin_member.user)
    response = client.post(reverse("ui:member_edit", args=[own.pk]), {"roles": ["viewer"]})
    assert response.status_code == 409
    assert "last admin" in response.content.decode()
    own.refresh_from_db()
    assert own.roles == ["admin"]


def test_self_grant_with_pending_work_shows_a_warning(login, admin_member, tenant):
    VersionFactory(
        template=TemplateFactory(tenant=tenant),
        lifecycle_state="CANDIDATE",
        created_by=f"user:{admin_member.user.username}",
    )
    client = login(admin_member)
    own = Membership.objects.get(user=admin_member.user)
    response = client.post(reverse("ui:member_edit", args=[own.pk]), {"roles": ["admin", "approver"]}, follow=True)
    html = response.content.decode()
    assert 'data-testid="self-grant-warning"' in html and "1 version(s) you created are CANDIDATE" in html
    assert records(own, EventType.MEMBERSHIP_CHANGED)[-1].payload["self_grant"] is True


def test_remove_deactivate_reactivate_and_password_link(login, admin_member, cast, other_tenant):
    client = login(admin_member)
    op = Membership.objects.get(user=cast["operator"].user)
    response = client.post(reverse("ui:member_password_link", args=[op.pk]))
    assert (
        response.status_code == 200
        and no_store(response)
        and 'data-testid="password-link"' in response.content.decode()
    )
    client.post(reverse("ui:member_deactivate", args=[op.pk]))
    op.user.refresh_from_db()
    assert not op.user.is_active
    client.post(reverse("ui:member_reactivate", args=[op.pk]))
    op.user.refresh_from_db()
    assert op.user.is_active
    # a member of a tenant where this admin is not admin: only removal, and the page says why
    MembershipFactory(tenant=other_tenant, user=op.user, roles=["viewer"])
    html = client.get(reverse("ui:member_edit", args=[op.pk])).content.decode()
    assert 'data-testid="account-blocker"' in html and 'data-testid="deactivate"' not in html
    assert client.post(reverse("ui:member_deactivate", args=[op.pk])).status_code == 409
    client.post(reverse("ui:member_remove", args=[op.pk]))
    assert not Membership.objects.filter(pk=op.pk).exists()


def test_another_tenants_member_answers_404(login, admin_member, outsider):
    client = login(admin_member)
    theirs = Membership.objects.get(user=outsider.user)
    for name in ("member_edit", "member_remove", "member_deactivate", "member_password_link"):
        assert client.post(reverse(f"ui:{name}", args=[theirs.pk])).status_code == 404, name
    assert client.get(reverse("ui:member_edit", args=[theirs.pk])).status_code == 404


# ---------------------------------------------------------------- my API keys


def test_a_viewer_mints_lists_and_revokes_own_keys(login, viewer, tenant):
    client = login(viewer)
    page = client.get(reverse("ui:my_keys")).content.decode()
    assert 'value="viewer"' in page and 'value="operator"' not in page  # only roles they hold
    response = client.post(reverse("ui:my_keys"), {"name": "laptop", "roles": ["viewer"]})
    assert (
        response.status_code == 200 and no_store(response) and 'data-testid="new-secret"' in response.content.decode()
    )
    key = ApiKey.objects.get(name="laptop")
    assert key.principal_user == viewer.user and key.roles == ["viewer"] and key.created_by == "user:viewer-acme"
    refused = client.post(reverse("ui:my_keys"), {"name": "sneaky", "roles": ["operator"]}).content.decode()
    assert 'data-field-error="roles"' in refused and not ApiKey.objects.filter(name="sneaky").exists()
    # others' keys are neither listed nor revocable here
    assert viewer.key.prefix not in client.get(reverse("ui:my_keys")).content.decode()
    assert client.post(reverse("ui:my_key_revoke", args=[viewer.key.pk])).status_code == 404
    client.post(reverse("ui:my_key_revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is not None


# ---------------------------------------------------------------- actors shown as people


def test_actors_read_as_people_everywhere_in_one_query(login, admin_member, tenant):
    person = Actor.for_user(admin_member.user, ["admin"])
    ci, _ = api_key_create(tenant=tenant, name="ci-bot", roles=["operator"], actor=person)
    machine, _ = api_key_create(tenant=tenant, name="nightly", roles=["operator"], actor=Actor.system())
    from audit.services import record_change

    for key in (ci, machine):
        for _ in range(3):
            record_change(tenant=tenant, event_type=EventType.TEMPLATE_CHANGED, target=key, actor=Actor.for_key(key))
    client = login(admin_member)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(reverse("ui:audit")).content.decode()
    user = admin_member.user.username
    assert f"{user} via key &quot;ci-bot&quot;" in html or f'{user} via key "ci-bot"' in html
    assert "key &quot;nightly&quot;" in html or 'key "nightly"' in html
    assert f'title="key:{ci.prefix}"' in html
    assert f">key:{ci.prefix}<" not in html
    key_queries = [q["sql"] for q in queries.captured_queries if 'FROM "arm_apikey"' in q["sql"]]
    # one query names the acting keys (by prefix), one the keys the records are about (by id)
    assert len([q for q in key_queries if '"arm_apikey"."prefix" IN' in q]) == 1, key_queries
    assert len([q for q in key_queries if '"arm_apikey"."id" IN' in q]) == 1, key_queries
    assert len(key_queries) == 2, key_queries
    keys_page = client.get(reverse("ui:api_keys")).content.decode()
    assert f'title="user:{user}" data-actor="user:{user}">{user}<' in keys_page


def test_actor_display_rules(tenant, admin_member):
    from tenancy.selectors import ActorDirectory

    person = Actor.for_user(admin_member.user, ["admin"])
    ci, _ = api_key_create(tenant=tenant, name="ci-bot", roles=["operator"], actor=person)
    child, _ = api_key_create(tenant=tenant, name="child", roles=["operator"], actor=Actor.for_key(ci))
    directory = ActorDirectory(tenant).prime([f"key:{ci.prefix}", f"key:{child.prefix}", "user:x"])
    assert directory.display("user:alice") == "alice"
    assert directory.display("system") == "system"
    assert directory.display(f"key:{ci.prefix}") == 'admin-acme via key "ci-bot"'
    assert directory.display(f"key:{child.prefix}") == 'admin-acme via key "child"'
    assert directory.display(f"key:{admin_member.key.prefix}") == 'key "admin key"'  # made by a command
    assert directory.display("key:000000000000") == "key 000000000000 (unknown)"
