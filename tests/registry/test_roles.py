"""The role table of SPEC §2 on every registry, audit and identity endpoint, plus authentication:
401 without or with bad credentials, session users choosing their tenant with X-ARM-Tenant."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.recording import recorded_update
from registry.models import AgentTemplate
from tenancy.models import ApiKey
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    MembershipFactory,
    ProviderFactory,
    TemplateFactory,
    UserFactory,
    VersionFactory,
    make_api_key,
    make_genome,
)
from tests.helpers import assert_error, ids

pytestmark = pytest.mark.django_db

MEMBER_ROLES = ["viewer", "operator", "approver", "compliance", "admin"]
ALL = [*MEMBER_ROLES, "runtime"]
READERS = {"viewer", "operator", "approver", "compliance", "admin"}
WRITERS = {"operator", "admin"}


@pytest.fixture
def clients(cast, runtime_key):
    return {**{role: member.client for role, member in cast.items()}, "runtime": runtime_key[1]}


@pytest.fixture
def world(tenant):
    template = TemplateFactory(tenant=tenant)
    parent = VersionFactory(template=template, version_label="1.0.0")
    version = VersionFactory(template=template, version_label="1.1.0", parent=parent, eval_status="PASS")
    env = EnvironmentFactory(tenant=tenant, tier="dev")
    provider = ProviderFactory(tenant=tenant)
    instance = InstanceFactory(version=version, environment=env, provider=provider, state="ACTIVE")
    return {
        "template": template,
        "parent": parent,
        "version": version,
        "environment": env,
        "provider": provider,
        "instance": instance,
    }


def read_urls(w):
    return [
        "/api/v1/environments/",
        f"/api/v1/environments/{w['environment'].pk}/",
        "/api/v1/providers/",
        f"/api/v1/providers/{w['provider'].pk}/",
        "/api/v1/templates/",
        f"/api/v1/templates/{w['template'].pk}/",
        "/api/v1/versions/",
        f"/api/v1/versions/{w['version'].pk}/",
        f"/api/v1/versions/{w['version'].pk}/lineage/",
        f"/api/v1/versions/{w['version'].pk}/diff/",
        f"/api/v1/versions/{w['version'].pk}/evaluations/",
        "/api/v1/instances/",
        f"/api/v1/instances/{w['instance'].pk}/",
        "/api/v1/audit/",
        "/api/v1/audit/verify/",
    ]


@pytest.mark.parametrize("role", ALL)
def test_every_member_role_reads_everything_and_runtime_reads_nothing(clients, world, role):
    for url in read_urls(world):
        response = clients[role].get(url)
        if role in READERS:
            assert response.status_code == 200, (url, response.json())
        else:
            assert_error(response, 403, "role_required")


@pytest.mark.parametrize("role", ALL)
def test_only_admin_reads_api_keys(clients, cast, role):
    for url in ["/api/v1/api-keys/", f"/api/v1/api-keys/{cast['viewer'].key.pk}/"]:
        response = clients[role].get(url)
        if role == "admin":
            assert response.status_code == 200, response.json()
        else:
            assert_error(response, 403, "role_required", contains=["admin"])


def creates(w, n):
    """(url, body) for each create endpoint; ``n`` keeps names unique across roles."""
    return [
        ("/api/v1/environments/", {"name": f"role-env-{n}", "tier": "dev"}),
        ("/api/v1/providers/", {"name": f"role-prov-{n}", "type": "local"}),
        ("/api/v1/templates/", {"name": f"bot-{n}", "owners": ["ops@example.com"]}),
        (
            "/api/v1/versions/",
            {"template": str(w["template"].pk), "version_label": f"2.0.{n}", "genome": make_genome()},
        ),
        (
            "/api/v1/instances/",
            {
                "version": str(w["version"].pk),
                "environment": str(w["environment"].pk),
                "provider": str(w["provider"].pk),
            },
        ),
        (f"/api/v1/versions/{w['version'].pk}/evaluations/", {"suite": f"suite-{n}", "status": "PASS"}),
    ]


@pytest.mark.parametrize("role", ALL)
def test_only_operator_and_admin_create_registry_rows(clients, world, role):
    for url, body in creates(world, ALL.index(role)):
        response = clients[role].post(url, body, format="json")
        if role in WRITERS:
            assert response.status_code == 201, (url, response.json())
        else:
            assert_error(response, 403, "role_required", contains=["operator"])


def test_compliance_cannot_create_templates(compliance):
    response = compliance.client.post("/api/v1/templates/", {"name": "c", "owners": ["c@example.com"]}, format="json")
    assert_error(response, 403, "role_required", message="This action needs one of the roles: admin, operator.")
    assert not AgentTemplate.objects.exists()


@pytest.mark.parametrize("role", ALL)
def test_only_operator_and_admin_edit_registry_rows(clients, world, role):
    edits = [
        (f"/api/v1/environments/{world['environment'].pk}/", {"description": role}),
        (f"/api/v1/providers/{world['provider'].pk}/", {"description": role}),
        (f"/api/v1/templates/{world['template'].pk}/", {"description": role}),
        (f"/api/v1/instances/{world['instance'].pk}/", {"name": f"renamed-by-{role}"}),
    ]
    for url, body in edits:
        response = clients[role].patch(url, body, format="json")
        if role in WRITERS:
            assert response.status_code == 200, (url, response.json())
        else:
            assert_error(response, 403, "role_required")


@pytest.mark.parametrize("role", ALL)
def test_only_operator_and_admin_delete_templates(clients, tenant, role):
    template = TemplateFactory(tenant=tenant)
    response = clients[role].delete(f"/api/v1/templates/{template.pk}/")
    if role in WRITERS:
        assert response.status_code == 204
        assert not AgentTemplate.objects.filter(pk=template.pk).exists()
    else:
        assert_error(response, 403, "role_required")
        assert AgentTemplate.objects.filter(pk=template.pk).exists()


@pytest.mark.parametrize("role", ALL)
def test_heartbeat_is_for_runtime_keys_operators_and_admins(clients, world, role):
    response = clients[role].post(f"/api/v1/instances/{world['instance'].pk}/heartbeat/", {}, format="json")
    if role in {"runtime", "operator", "admin"}:
        assert response.status_code == 200, response.json()
        assert response.json()["health"] == "healthy"
    else:
        assert_error(response, 403, "role_required")


def test_runtime_key_cannot_list_versions(runtime_key):
    assert_error(runtime_key[1].get("/api/v1/versions/"), 403, "role_required")


@pytest.mark.parametrize("role", ALL)
def test_members_mint_keys_within_their_roles_and_only_admins_revoke_others_keys(clients, cast, role):
    """Any member mints a key for themselves, with roles they hold (an admin: any role); runtime keys mint
    nothing. Only admins revoke a key that does not act for them."""
    own = clients[role].post("/api/v1/api-keys/", {"name": "ci", "roles": [role]}, format="json")
    beyond = clients[role].post("/api/v1/api-keys/", {"name": "ci", "roles": ["compliance", "operator"]}, format="json")
    victim = cast["viewer"].key
    revoke = clients[role].delete(f"/api/v1/api-keys/{victim.pk}/")
    if role == "admin":
        assert own.status_code == 201, own.json()
        assert beyond.status_code == 201, beyond.json()
        assert revoke.status_code == 200, revoke.json()
    elif role == "runtime":
        assert_error(own, 403, "role_required")
        assert_error(revoke, 403, "role_required")
    else:
        assert own.status_code == 201, own.json()
        assert own.json()["roles"] == [role]
        assert_error(beyond, 400, "validation_error", contains=["do not hold"])
        assert_error(revoke, 403, "role_required")
    if role != "admin":
        assert ApiKey.objects.get(pk=victim.pk).revoked_at is None


# ---------------------------------------------------------------- authentication

ENDPOINTS = [
    "/api/v1/environments/",
    "/api/v1/providers/",
    "/api/v1/templates/",
    "/api/v1/versions/",
    "/api/v1/instances/",
    "/api/v1/audit/",
    "/api/v1/audit/verify/",
    "/api/v1/api-keys/",
]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_no_credentials_is_401(anon, url):
    assert_error(anon.get(url), 401, "not_authenticated")
    assert_error(anon.post(url, {}, format="json"), 401, "not_authenticated")


def test_no_credentials_on_detail_and_actions_is_401(anon, world):
    for url in read_urls(world):
        assert_error(anon.get(url), 401, "not_authenticated")
    for url in [
        f"/api/v1/versions/{world['version'].pk}/transition/",
        f"/api/v1/instances/{world['instance'].pk}/transition/",
        f"/api/v1/instances/{world['instance'].pk}/heartbeat/",
    ]:
        assert_error(anon.post(url, {"to": "RETIRED"}, format="json"), 401, "not_authenticated")


def bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=secret)
    return client


@pytest.mark.parametrize(
    "header",
    [
        "Bearer arm_000000000000_nottherealsecret",
        "Bearer nonsense",
        "Bearer a b",
        "Bearer",
        "Bearer ärm_x_y",
    ],
)
def test_bad_credentials_are_401(db, header):
    response = bearer(header).get("/api/v1/templates/")
    assert response.status_code == 401, response.content
    assert response.json()["code"] in ("authentication_failed", "not_authenticated")


def test_right_prefix_with_wrong_secret_is_401(operator):
    prefix = operator.key.prefix
    response = bearer(f"Bearer arm_{prefix}_{'x' * 43}").get("/api/v1/templates/")
    assert_error(response, 401, "authentication_failed", message="Invalid API key.")


def test_revoked_key_is_401(operator):
    assert operator.client.get("/api/v1/templates/").status_code == 200
    recorded_update(ApiKey.objects.filter(pk=operator.key.pk), revoked_at=timezone.now())

    response = operator.client.get("/api/v1/templates/")

    assert_error(response, 401, "authentication_failed", message="This API key has been revoked.")


# ---------------------------------------------------------------- session users and X-ARM-Tenant


@pytest.fixture
def two_tenant_user(tenant, other_tenant):
    user = UserFactory(username="consultant")
    MembershipFactory(tenant=tenant, user=user, roles=["viewer"])
    MembershipFactory(tenant=other_tenant, user=user, roles=["operator"])
    TemplateFactory(tenant=tenant, name="acme-bot")
    TemplateFactory(tenant=other_tenant, name="globex-bot")
    client = APIClient()
    client.force_login(user)
    return client


def names(response):
    assert response.status_code == 200, response.json()
    return [row["name"] for row in response.json()["results"]]


def test_session_user_in_two_tenants_must_choose_one(two_tenant_user):
    assert_error(two_tenant_user.get("/api/v1/templates/"), 400, "tenant_required", contains=["X-ARM-Tenant"])


def test_x_arm_tenant_scopes_the_request(two_tenant_user):
    assert names(two_tenant_user.get("/api/v1/templates/", HTTP_X_ARM_TENANT="acme")) == ["acme-bot"]
    assert names(two_tenant_user.get("/api/v1/templates/", HTTP_X_ARM_TENANT="globex")) == ["globex-bot"]


def test_roles_follow_the_chosen_tenant(two_tenant_user, tenant, other_tenant):
    body = {"name": "new-bot", "owners": ["ops@example.com"]}
    refused = two_tenant_user.post("/api/v1/templates/", body, format="json", HTTP_X_ARM_TENANT="acme")
    assert_error(refused, 403, "role_required")
    created = two_tenant_user.post("/api/v1/templates/", body, format="json", HTTP_X_ARM_TENANT="globex")
    assert created.status_code == 201, created.json()
    assert AgentTemplate.objects.get(pk=created.json()["id"]).tenant_id == other_tenant.pk
    assert not AgentTemplate.objects.filter(tenant=tenant, name="new-bot").exists()


def test_x_arm_tenant_of_a_tenant_you_are_not_in_is_refused(two_tenant_user, db):
    from tests.factories import TenantFactory

    TenantFactory(slug="initech")
    response = two_tenant_user.get("/api/v1/templates/", HTTP_X_ARM_TENANT="initech")
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "tenant_not_found"


def test_session_user_in_one_tenant_needs_no_header(tenant, other_tenant):
    user = UserFactory(username="local")
    MembershipFactory(tenant=tenant, user=user, roles=["viewer"])
    TemplateFactory(tenant=tenant, name="acme-bot")
    TemplateFactory(tenant=other_tenant, name="globex-bot")
    client = APIClient()
    client.force_login(user)
    assert names(client.get("/api/v1/templates/")) == ["acme-bot"]


def test_session_user_without_membership_is_refused(db):
    client = APIClient()
    client.force_login(UserFactory(username="drifter"))
    response = client.get("/api/v1/templates/")
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "no_tenant"


def test_api_key_ignores_x_arm_tenant(operator, other_tenant, tenant):
    TemplateFactory(tenant=other_tenant, name="globex-bot")
    mine = TemplateFactory(tenant=tenant, name="acme-bot")
    response = operator.client.get("/api/v1/templates/", HTTP_X_ARM_TENANT="globex")
    assert ids(response) == {str(mine.pk)}


def test_key_roles_not_membership_roles_decide(tenant):
    # a key carries its own roles; a viewer key of a tenant admin is still only a viewer
    user = UserFactory(username="boss")
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    _, secret = make_api_key(tenant, ["viewer"])
    client = bearer(f"Bearer {secret}")
    response = client.post("/api/v1/templates/", {"name": "x", "owners": ["a@example.com"]}, format="json")
    assert_error(response, 403, "role_required")


def test_session_writes_need_a_csrf_token(tenant):
    user = UserFactory(username="browser-user")
    MembershipFactory(tenant=tenant, user=user, roles=["operator"])
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    assert client.get("/api/v1/templates/").status_code == 200
    response = client.post("/api/v1/templates/", {"name": "x", "owners": ["a@example.com"]}, format="json")

    assert_error(response, 403, "permission_denied", contains=["CSRF"])
    assert not AgentTemplate.objects.exists()


def test_api_keys_need_no_csrf_token(operator):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator.secret}")
    response = client.post("/api/v1/templates/", {"name": "x", "owners": ["a@example.com"]}, format="json")
    assert response.status_code == 201, response.json()
