"""Every URL of the project, as a matrix: tenant isolation and the role table (README "Roles").

For each API and UI URL pattern the tables below say how to build it for one of this tenant's objects
and which roles may use each write. The tests check that:
- a member (session) and an API key of ANOTHER tenant get 404 for every pattern taking an id, on every
  method it answers (they hold ``admin`` there, so no role check hides the lookup);
- every write refuses every role that may not use it (API: 403 ``role_required``; UI: 403), and is
  not refused by role to one that may;
- every Django admin model's change and history pages answer 404 for another tenant's row.
A URL pattern that appears without an entry here fails ``test_every_url_pattern_is_in_the_matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from audit.models import ChangeRecord
from audit.services import checkpoint_take
from audit.signing import KeyRing
from policies.models import PolicyDecision
from tenancy.services import api_key_create
from tests.factories import MembershipFactory, UserFactory, make_genome
from tests.helpers import member_with
from tests.ledger.factories import BudgetAlertFactory, BudgetFactory, PriceFactory
from tests.ledger.factories import entry as ledger_entry
from tests.notifications.factories import DeliveryFactory, EndpointFactory
from tests.ui.conftest import World, build_world

pytestmark = pytest.mark.django_db

V, OP, A, C, AD, R = "viewer", "operator", "approver", "compliance", "admin", "runtime"
MEMBER_ROLES = (V, OP, A, C, AD)
ALL_ROLES = (*MEMBER_ROLES, R)


@dataclass
class Write:
    method: str
    roles: set[str]  # who may (admin is added for any member role; runtime only where listed)
    body: object = None  # dict, or callable(world) -> dict


@dataclass
class Route:
    url: object  # callable(world) -> path
    takes_id: bool = True
    writes: list[Write] = field(default_factory=list)
    reads: bool = True  # answers GET


def _may(write: Write, role: str) -> bool:
    if role == AD:
        return bool(write.roles - {R}) or AD in write.roles
    return role in write.roles


def _version_body(w: World) -> dict:
    return {"template": str(w.template.pk), "version_label": "9.9.9", "genome": make_genome()}


def _instance_body(w: World) -> dict:
    return {"version": str(w.root.pk), "environment": str(w.dev.pk), "provider": str(w.provider.pk)}


def _policy_body(w: World) -> dict:
    return {"name": "matrix-policy", "autonomy_tier": 2, "allowed_tools": ["*"]}


def _usage_body(w: World) -> dict:
    return {"entries": [ledger_entry(w.instance, "matrix-usage")]}


def _price_body(w: World) -> dict:
    return {
        "provider": "openai",
        "model": "matrix-model",
        "input_usd_per_mtok": "1.00",
        "output_usd_per_mtok": "2.00",
        "effective_from": "2026-01-01",
    }


def _budget_body(w: World) -> dict:
    return {"name": "matrix-budget", "scope": "tenant", "period": "monthly", "amount_usd": "10.00"}


API: dict[str, Route] = {
    "environment-list": Route(
        lambda w: "/api/v1/environments/", False, [Write("post", {OP}, {"name": "e9", "tier": "dev"})]
    ),
    "environment-detail": Route(
        lambda w: f"/api/v1/environments/{w.dev.pk}/", writes=[Write("patch", {OP}, {"description": "x"})]
    ),
    "provider-list": Route(
        lambda w: "/api/v1/providers/", False, [Write("post", {OP}, {"name": "p9", "type": "local"})]
    ),
    "provider-detail": Route(
        lambda w: f"/api/v1/providers/{w.provider.pk}/", writes=[Write("patch", {OP}, {"description": "x"})]
    ),
    "template-list": Route(
        lambda w: "/api/v1/templates/", False, [Write("post", {OP}, {"name": "t9", "owners": ["a@example.com"]})]
    ),
    "template-detail": Route(
        lambda w: f"/api/v1/templates/{w.template.pk}/",
        writes=[Write("patch", {OP}, {"description": "x"}), Write("delete", {OP})],
    ),
    "version-list": Route(lambda w: "/api/v1/versions/", False, [Write("post", {OP}, _version_body)]),
    "version-detail": Route(lambda w: f"/api/v1/versions/{w.root.pk}/"),
    "version-diff": Route(lambda w: f"/api/v1/versions/{w.child.pk}/diff/?against={w.root.pk}"),
    "version-lineage": Route(lambda w: f"/api/v1/versions/{w.child.pk}/lineage/"),
    "version-evaluations": Route(
        lambda w: f"/api/v1/versions/{w.child.pk}/evaluations/",
        writes=[Write("post", {OP}, {"suite": "matrix", "status": "PASS"})],
    ),
    "version-transition": Route(
        lambda w: f"/api/v1/versions/{w.child.pk}/transition/",
        writes=[Write("post", {OP}, {"to": "TESTING"})],
        reads=False,
    ),
    "instance-list": Route(lambda w: "/api/v1/instances/", False, [Write("post", {OP}, _instance_body)]),
    "instance-detail": Route(
        lambda w: f"/api/v1/instances/{w.instance.pk}/",
        writes=[Write("patch", {OP}, {"name": "renamed"}), Write("patch", {C}, {"policy": None})],
    ),
    "instance-heartbeat": Route(
        lambda w: f"/api/v1/instances/{w.instance.pk}/heartbeat/", writes=[Write("post", {OP, R}, {})], reads=False
    ),
    "instance-heartbeats": Route(
        lambda w: "/api/v1/instances/heartbeats/",
        False,
        [Write("post", {OP, R}, lambda w: {"instances": [str(w.instance.pk)]})],
        reads=False,
    ),
    "instance-transition": Route(
        lambda w: f"/api/v1/instances/{w.instance.pk}/transition/",
        writes=[Write("post", {OP}, {"to": "PAUSED"})],
        reads=False,
    ),
    "audit-list": Route(lambda w: "/api/v1/audit/", False),
    "audit-verify": Route(lambda w: "/api/v1/audit/verify/", False),
    "audit-detail": Route(lambda w: f"/api/v1/audit/{ChangeRecord.objects.filter(tenant=w.tenant).first().pk}/"),
    "audit-proof": Route(lambda w: f"/api/v1/audit/{ChangeRecord.objects.filter(tenant=w.tenant).first().pk}/proof/"),
    "audit-checkpoints": Route(lambda w: "/api/v1/audit/checkpoints/", False, [Write("post", {C})]),
    "approval-list": Route(lambda w: "/api/v1/approvals/", False),
    "approval-detail": Route(lambda w: f"/api/v1/approvals/{w.approval.pk}/"),
    "approval-wait": Route(lambda w: f"/api/v1/approvals/{w.approval.pk}/wait/?timeout=0"),
    "approval-approve": Route(
        lambda w: f"/api/v1/approvals/{w.approval.pk}/approve/", writes=[Write("post", {A}, {})], reads=False
    ),
    "approval-deny": Route(
        lambda w: f"/api/v1/approvals/{w.approval.pk}/deny/", writes=[Write("post", {A}, {})], reads=False
    ),
    # Every role that reads it may ask; the service lets only the runtime that opened it (403 not_requester).
    "approval-withdraw": Route(
        lambda w: f"/api/v1/approvals/{w.approval.pk}/withdraw/", writes=[Write("post", {*ALL_ROLES}, {})], reads=False
    ),
    "runtime-context": Route(lambda w: f"/api/v1/runtime/context/?instance={w.instance.pk}"),
    "policy-evaluate": Route(
        lambda w: "/api/v1/policy/evaluate/",
        False,
        [Write("post", {OP, R}, lambda w: {"instance": str(w.instance.pk), "tool": "crm.lookup"})],
        reads=False,
    ),
    "policy-list": Route(lambda w: "/api/v1/policies/", False, [Write("post", {C}, _policy_body)]),
    "policy-detail": Route(
        lambda w: f"/api/v1/policies/{w.policy.pk}/",
        writes=[Write("patch", {C}, {"description": "x"}), Write("delete", {C})],
    ),
    "policy-simulate": Route(
        lambda w: f"/api/v1/policies/{w.policy.pk}/simulate/",
        writes=[Write("post", {C}, {"autonomy_tier": 3})],
        reads=False,
    ),
    "decision-list": Route(lambda w: "/api/v1/decisions/", False),
    "decision-detail": Route(
        lambda w: f"/api/v1/decisions/{PolicyDecision.objects.filter(tenant=w.tenant).first().pk}/"
    ),
    # Any member mints a key for themselves (roles within their own: a viewer key here); listing stays admin's.
    "api-key-list": Route(
        lambda w: "/api/v1/api-keys/", False, [Write("post", {V, OP, A, C}, {"name": "k", "roles": ["viewer"]})]
    ),
    "api-key-detail": Route(lambda w: f"/api/v1/api-keys/{w.key.pk}/", writes=[Write("delete", {AD})]),
    # Costs: read-only, no id in the path; another tenant's template/environment id in a filter is a 400
    # (tests/ledger/test_cost_reports.py::test_another_tenants_spend_never_shows_and_its_ids_are_refused).
    "cost-list": Route(lambda w: "/api/v1/costs/", False),
    "cost-forecast": Route(lambda w: "/api/v1/costs/forecast/", False),
    "cost-estimates": Route(lambda w: "/api/v1/costs/estimates/", False),
    # The ledger: usage batches and OTLP traces (operator or runtime), prices and budgets (compliance).
    # GET lists the ledger's entries (every member; tenant isolation: tests/ledger/test_usage_list.py)
    "usage-ingest": Route(lambda w: "/api/v1/usage/", False, [Write("post", {OP, R}, _usage_body)]),
    "otlp-traces": Route(lambda w: "/otlp/v1/traces", False, [Write("post", {OP, R}, {})], reads=False),
    "price-list": Route(lambda w: "/api/v1/prices/", False, [Write("post", {C}, _price_body)]),
    "price-detail": Route(
        lambda w: f"/api/v1/prices/{w.price.pk}/",
        writes=[Write("patch", {C}, {"output_usd_per_mtok": "9.00"}), Write("delete", {C})],
    ),
    "budget-list": Route(lambda w: "/api/v1/budgets/", False, [Write("post", {C}, _budget_body)]),
    "budget-detail": Route(
        lambda w: f"/api/v1/budgets/{w.budget.pk}/",
        writes=[Write("patch", {C}, {"amount_usd": "60.00"}), Write("delete", {C})],
    ),
    "budget-alerts": Route(lambda w: f"/api/v1/budgets/{w.budget.pk}/alerts/"),
    "budget-alert-acknowledge": Route(
        lambda w: f"/api/v1/budget-alerts/{_budget_alert(w).pk}/acknowledge/", writes=[Write("post", {C})], reads=False
    ),
    # Notifications: tenant admins only, reads too (tests/notifications/test_endpoints_api.py refuses the reads).
    "notification-endpoint-list": Route(
        lambda w: "/api/v1/notification-endpoints/", False, [Write("post", {AD}, {"name": "m", "kind": "email"})]
    ),
    "notification-endpoint-detail": Route(
        lambda w: f"/api/v1/notification-endpoints/{w.endpoint.pk}/",
        writes=[Write("patch", {AD}, {"active": False}), Write("delete", {AD})],
    ),
    "notification-endpoint-rotate-secret": Route(
        lambda w: f"/api/v1/notification-endpoints/{w.endpoint.pk}/rotate-secret/",
        writes=[Write("post", {AD})],
        reads=False,
    ),
    "notification-endpoint-test": Route(
        lambda w: f"/api/v1/notification-endpoints/{w.endpoint.pk}/test/", writes=[Write("post", {AD})], reads=False
    ),
    "notification-delivery-list": Route(lambda w: "/api/v1/notification-deliveries/", False),
    "notification-delivery-detail": Route(lambda w: f"/api/v1/notification-deliveries/{w.delivery.pk}/"),
    "notification-delivery-redeliver": Route(
        lambda w: f"/api/v1/notification-deliveries/{w.delivery.pk}/redeliver/",
        writes=[Write("post", {AD})],
        reads=False,
    ),
}


def _budget_alert(w):
    """The world budget's alert (made on first use; alerts are raised by ingestion, not an API)."""
    alert = w.budget.alerts.first()
    return alert if alert is not None else BudgetAlertFactory(budget=w.budget)


UI: dict[str, Route] = {
    "ui:home": Route(lambda w: "/", False),
    "ui:tenant_switch": Route(
        lambda w: "/tenant/switch/", False, [Write("post", set(MEMBER_ROLES), {"tenant": "acme"})], reads=False
    ),
    "ui:search": Route(lambda w: "/search/?q=support", False),
    "ui:api_keys": Route(
        lambda w: "/settings/api-keys/", False, [Write("post", {AD}, {"name": "k", "roles": ["viewer"]})]
    ),
    "ui:api_key_revoke": Route(
        lambda w: f"/settings/api-keys/{w.key.pk}/revoke/", writes=[Write("post", {AD})], reads=False
    ),
    "ui:my_keys": Route(
        lambda w: "/settings/my-keys/", False, [Write("post", set(MEMBER_ROLES), {"name": "k", "roles": ["viewer"]})]
    ),
    "ui:my_key_revoke": Route(
        lambda w: f"/settings/my-keys/{w.key.pk}/revoke/", writes=[Write("post", set(MEMBER_ROLES))], reads=False
    ),
    "ui:members": Route(lambda w: "/settings/members/", False),
    "ui:member_add": Route(
        lambda w: "/settings/members/new/",
        False,
        [Write("post", {AD}, {"username": "matrix-new", "roles": ["viewer"], "sign_in": "link"})],
    ),
    "ui:member_edit": Route(
        lambda w: f"/settings/members/{w.membership.pk}/", writes=[Write("post", {AD}, {"roles": ["viewer"]})]
    ),
    "ui:member_remove": Route(
        lambda w: f"/settings/members/{w.membership.pk}/remove/", writes=[Write("post", {AD})], reads=False
    ),
    "ui:member_deactivate": Route(
        lambda w: f"/settings/members/{w.membership.pk}/deactivate/", writes=[Write("post", {AD})], reads=False
    ),
    "ui:member_reactivate": Route(
        lambda w: f"/settings/members/{w.membership.pk}/reactivate/", writes=[Write("post", {AD})], reads=False
    ),
    "ui:member_password_link": Route(
        lambda w: f"/settings/members/{w.membership.pk}/password-link/", writes=[Write("post", {AD})], reads=False
    ),
    "ui:directory": Route(lambda w: "/directory/", False),
    "ui:directory_tab": Route(lambda w: "/directory/instances/", False),
    "ui:template_create": Route(
        lambda w: "/templates/new/", False, [Write("post", {OP}, {"name": "t9", "owners": "a@example.com"})]
    ),
    "ui:template_edit": Route(
        lambda w: f"/templates/{w.template.pk}/edit/", writes=[Write("post", {OP}, {"name": "t9"})]
    ),
    "ui:version_create": Route(lambda w: "/versions/new/", False, [Write("post", {OP}, {"version_label": "9"})]),
    "ui:version_parent_options": Route(lambda w: f"/versions/new/parents/?template={w.template.pk}", False),
    "ui:instance_version_options": Route(
        lambda w: f"/instances/new/versions/?version_search=1&version={w.root.pk}", False
    ),
    "ui:version_detail": Route(lambda w: f"/versions/{w.root.pk}/"),
    "ui:version_transition": Route(
        lambda w: f"/versions/{w.child.pk}/transition/", writes=[Write("post", {OP, A}, {"to": "TESTING"})], reads=False
    ),
    "ui:version_evaluation": Route(
        lambda w: f"/versions/{w.child.pk}/evaluations/new/",
        writes=[Write("post", {OP}, {"suite": "matrix", "status": "PASS"})],
    ),
    "ui:instance_create": Route(lambda w: "/instances/new/", False, [Write("post", {OP}, _instance_body)]),
    "ui:instance_detail": Route(lambda w: f"/instances/{w.instance.pk}/"),
    "ui:instance_transition": Route(
        lambda w: f"/instances/{w.instance.pk}/transition/",
        writes=[Write("post", {OP, A}, {"to": "PAUSED"})],
        reads=False,
    ),
    "ui:evaluations": Route(lambda w: "/evaluations/", False),
    "ui:federation": Route(lambda w: "/federation/", False),
    "ui:provider_create": Route(
        lambda w: "/providers/new/", False, [Write("post", {OP}, {"name": "p9", "type": "local"})]
    ),
    "ui:provider_edit": Route(
        lambda w: f"/providers/{w.provider.pk}/edit/",
        writes=[Write("post", {OP}, lambda w: {"name": w.provider.name, "type": "local"})],
    ),
    "ui:environment_create": Route(
        lambda w: "/environments/new/", False, [Write("post", {OP}, {"name": "e9", "tier": "dev"})]
    ),
    "ui:environment_edit": Route(
        lambda w: f"/environments/{w.dev.pk}/edit/",
        writes=[Write("post", {OP}, lambda w: {"name": w.dev.name, "tier": "dev"})],
    ),
    "ui:policies": Route(lambda w: "/policies/", False),
    "ui:policy_create": Route(
        lambda w: "/policies/new/", False, [Write("post", {C}, {"name": "p9", "autonomy_tier": "2"})]
    ),
    "ui:policy_edit": Route(lambda w: f"/policies/{w.policy.pk}/", writes=[Write("post", {C}, {"name": "p9"})]),
    "ui:policy_simulate": Route(
        lambda w: f"/policies/{w.policy.pk}/simulate/", writes=[Write("post", {C}, {})], reads=False
    ),
    "ui:policy_delete": Route(lambda w: f"/policies/{w.policy.pk}/delete/", writes=[Write("post", {C})], reads=False),
    "ui:policy_attach": Route(
        lambda w: f"/policies/{w.policy.pk}/attach/",
        writes=[Write("post", {C}, lambda w: {"instance": str(w.instance.pk)})],
        reads=False,
    ),
    "ui:instance_policy": Route(
        lambda w: f"/instances/{w.instance.pk}/policy/", writes=[Write("post", {C}, {"policy": ""})]
    ),
    "ui:instance_decisions": Route(lambda w: f"/instances/{w.instance.pk}/decisions/"),
    "ui:cost": Route(lambda w: "/cost/", False),
    "ui:cost_prices": Route(lambda w: "/cost/prices/", False, [Write("post", {C}, _price_body)]),
    "ui:cost_price_delete": Route(
        lambda w: f"/cost/prices/{w.price.pk}/delete/", writes=[Write("post", {C})], reads=False
    ),
    "ui:cost_budget_create": Route(lambda w: "/cost/budgets/new/", False, [Write("post", {C}, {})], reads=False),
    "ui:cost_budget_edit": Route(
        lambda w: f"/cost/budgets/{w.budget.pk}/edit/", writes=[Write("post", {C}, {})], reads=False
    ),
    "ui:cost_budget_delete": Route(
        lambda w: f"/cost/budgets/{w.budget.pk}/delete/", writes=[Write("post", {C})], reads=False
    ),
    "ui:cost_budget_alert_ack": Route(
        lambda w: f"/cost/budget-alerts/{_budget_alert(w).pk}/ack/", writes=[Write("post", {C})], reads=False
    ),
    "ui:incidents": Route(lambda w: "/incidents/", False),
    "ui:approvals": Route(lambda w: "/approvals/", False),
    "ui:approvals_pending": Route(lambda w: "/approvals/pending/", False),
    "ui:approval_decide": Route(
        lambda w: f"/approvals/{w.approval.pk}/decide/",
        writes=[Write("post", {A}, {"decision": "approve"})],
        reads=False,
    ),
    "ui:audit": Route(lambda w: "/audit/", False),
    # Schedules span every tenant (no tenant's id in them): tenant admins see them and may make one due.
    "ui:schedules": Route(lambda w: "/settings/schedules/", False),
    "ui:schedule_run": Route(
        lambda w: "/settings/schedules/approval_expiry/run/", False, [Write("post", {AD})], reads=False
    ),
    "ui:notifications": Route(lambda w: "/settings/notifications/", False),
    "ui:notification_create": Route(
        lambda w: "/settings/notifications/new/", False, [Write("post", {AD}, {"name": "m", "kind": "email"})]
    ),
    "ui:notification_endpoint": Route(lambda w: f"/settings/notifications/{w.endpoint.pk}/"),
    "ui:notification_edit": Route(
        lambda w: f"/settings/notifications/{w.endpoint.pk}/edit/",
        writes=[Write("post", {AD}, lambda w: {"name": w.endpoint.name, "kind": "webhook", "url": w.endpoint.url})],
    ),
    "ui:notification_rotate": Route(
        lambda w: f"/settings/notifications/{w.endpoint.pk}/rotate/", writes=[Write("post", {AD})], reads=False
    ),
    "ui:notification_test": Route(
        lambda w: f"/settings/notifications/{w.endpoint.pk}/test/", writes=[Write("post", {AD})], reads=False
    ),
    "ui:notification_delete": Route(
        lambda w: f"/settings/notifications/{w.endpoint.pk}/delete/", writes=[Write("post", {AD})], reads=False
    ),
    "ui:notification_redeliver": Route(
        lambda w: f"/settings/notifications/deliveries/{w.delivery.pk}/redeliver/",
        writes=[Write("post", {AD})],
        reads=False,
    ),
}

# Patterns that show nothing of a tenant (no id, no tenant data) or are Django's own sign-in pages.
PUBLIC = {
    "health",
    "schema",
    "api-docs",
    "login",
    "logout",
    "set_password",  # the token in the link is the credential; tested in tests/ui/test_members.py
    "audit-public-keys",  # the audit checkpoints' public keys, published for everyone (tests/audit)
    "evaluation-callback",  # its signed token is the credential; tested in tests/registry/test_evaluation_requests.py
}


def _walk(patterns, prefix="", namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = namespace + (f"{p.namespace}:" if p.namespace else "")
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), namespace + (p.name or "")


def test_every_url_pattern_is_in_the_matrix():
    names = {name for path, name in _walk(get_resolver().url_patterns) if not path.startswith("admin/")}
    # DRF's format-suffix variants share their route's name
    assert names == set(API) | set(UI) | PUBLIC, (
        f"not in the matrix: {sorted(names - set(API) - set(UI) - PUBLIC)}; "
        f"gone: {sorted((set(API) | set(UI) | PUBLIC) - names)}"
    )


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def world(tenant):
    w = build_world(tenant)
    w.key, _ = api_key_create(tenant=tenant, name="matrix key", roles=["viewer"], actor=_system())
    w.membership = MembershipFactory(tenant=tenant, user=UserFactory(username="matrix-member"), roles=["viewer"])
    PolicyDecision.objects.create(
        tenant=tenant,
        instance=w.instance,
        tool="crm.lookup",
        decision="ALLOW",
        risk="low",
        reasons=[],
        params_hash="0" * 64,
    ) if not PolicyDecision.objects.filter(tenant=tenant).exists() else None
    w.price = PriceFactory(tenant=tenant, model="gpt-4.1")
    w.budget = BudgetFactory(tenant=tenant, amount_usd=1)
    w.endpoint = EndpointFactory(tenant=tenant)
    w.delivery = DeliveryFactory(endpoint=w.endpoint, status="dead", delivered_at=None)
    return w


def _system():
    from tenancy.context import Actor

    return Actor.system()


@pytest.fixture
def outsiders(other_tenant):
    """An admin of another tenant: by API key and by session."""
    build_world(other_tenant, prefix="gx-")
    member = member_with(other_tenant, ["admin"], "outsider-admin")
    session = APIClient()
    session.force_login(member.user)
    return member.client, session


def _members(tenant):
    members = {role: member_with(tenant, [role], f"matrix-{role}") for role in MEMBER_ROLES}
    runtime = member_with(tenant, ["operator"], "matrix-runtime")
    runtime.key.roles = ["runtime"]
    runtime.key.save(update_fields=["roles"])
    members[R] = runtime
    return members


def _body(write: Write, world):
    return write.body(world) if callable(write.body) else (write.body or {})


def _call(client, method, url, body, *, api):
    if api:
        return getattr(client, method)(url, body, format="json")
    return getattr(client, method)(url, body)


# ---------------------------------------------------------------- isolation


@pytest.mark.parametrize("name", sorted(n for n, r in API.items() if r.takes_id))
def test_api_ids_of_another_tenant_answer_404(name, world, outsiders):
    route = API[name]
    url = route.url(world)
    key_client, session = outsiders
    methods = (["get"] if route.reads else []) + [w.method for w in route.writes]
    for client in (key_client, session):
        for method in methods:
            response = _call(client, method, url, {}, api=True)
            assert response.status_code == 404, (name, method, response.status_code, response.content[:200])
            assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("name", sorted(n for n, r in UI.items() if r.takes_id))
def test_ui_ids_of_another_tenant_answer_404(name, world, outsiders):
    route = UI[name]
    url = route.url(world)
    _, session = outsiders
    methods = (["get"] if route.reads else []) + [w.method for w in route.writes]
    for method in methods:
        response = _call(session, method, url, {}, api=False)
        assert response.status_code == 404, (name, method, response.status_code)


def test_admin_pages_of_another_tenants_rows_answer_404(world, tenant, other_tenant):
    from tests.factories import MembershipFactory, UserFactory

    theirs = build_world(other_tenant, prefix="gx-")
    member = member_with(other_tenant, ["operator"], "globex-member")  # a membership and an API key there
    # a decision, a spend counter, an evaluation result and change records there, made the real way
    evaluate = {"instance": str(theirs.instance.pk), "tool": "crm.lookup", "estimated_cost_usd": "0.10"}
    assert member.client.post("/api/v1/policy/evaluate/", evaluate, format="json").json()["decision"] == "ALLOW"
    evaluation = {"suite": "smoke", "status": "PASS"}
    assert (
        member.client.post(f"/api/v1/versions/{theirs.child.pk}/evaluations/", evaluation, format="json").status_code
        == 201
    )
    # the ledger there: a price and a budget, and usage crossing the budget (entry, rollup and alert)
    PriceFactory(tenant=other_tenant, model="gpt-4.1")
    BudgetFactory(tenant=other_tenant, amount_usd=1, thresholds=[1])
    usage = {"entries": [ledger_entry(theirs.instance, "theirs", cost_usd="0.5")]}
    assert member.client.post("/api/v1/usage/", usage, format="json").json()["accepted"] == 1
    # a signed audit checkpoint there (a throwaway key: only the row matters here)
    checkpoint_take(other_tenant, keyring=KeyRing(signer=Ed25519PrivateKey.generate()))
    # a notification endpoint there, with an event and its delivery
    DeliveryFactory(endpoint=EndpointFactory(tenant=other_tenant))
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    for model in admin.site._registry:
        opts = model._meta
        if opts.label == "arm.Tenant":
            theirs = other_tenant
        elif any(f.name == "tenant" for f in opts.fields):
            theirs = model.objects.filter(tenant=other_tenant).first()
        else:
            continue
        assert theirs is not None, f"build_world makes no {opts.label} for the other tenant: extend it"
        for page in ("change", "history"):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}", args=[theirs.pk])
            assert client.get(url).status_code == 404, url


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize(("name", "index"), [(n, i) for n, r in sorted(API.items()) for i in range(len(r.writes))])
def test_api_writes_refuse_every_role_that_may_not_use_them(name, index, tenant, world):
    route, write = API[name], API[name].writes[index]
    url = route.url(world)
    members = _members(tenant)
    for role in ALL_ROLES:
        if _may(write, role):
            continue
        response = _call(members[role].client, write.method, url, _body(write, world), api=True)
        assert response.status_code == 403, (name, write.method, role, response.status_code)
        assert response.json()["code"] == "role_required", (name, role, response.json())
    allowed = next(role for role in ALL_ROLES if _may(write, role))
    response = _call(members[allowed].client, write.method, url, _body(write, world), api=True)
    assert not (response.status_code == 403 and response.json().get("code") == "role_required"), (name, allowed)


@pytest.mark.parametrize(("name", "index"), [(n, i) for n, r in sorted(UI.items()) for i in range(len(r.writes))])
def test_ui_writes_refuse_every_role_that_may_not_use_them(name, index, tenant, world):
    route, write = UI[name], UI[name].writes[index]
    url = route.url(world)
    members = _members(tenant)
    for role in MEMBER_ROLES:
        client = Client()
        client.force_login(members[role].user)
        response = _call(client, write.method, url, _body(write, world), api=False)
        if _may(write, role):
            assert response.status_code != 403, (name, role)
        else:
            assert response.status_code == 403, (name, write.method, role, response.status_code)
