"""The API reference's examples (``/api/docs/``): a request for every operation that writes and for every
parameter that takes an id, and the answers they get. Each one works when tried in the demo
(``manage.py seed_demo``; ``make run``) signed in as ``acme-admin``: the ids are the demo's own
(``arm.demo_ids``), the names written are ones the demo does not use yet, and the statuses are the ones the
demo answers. ``tests/test_api_examples.py`` seeds the demo and runs every one of them.

An id the demo cannot fix (a decision, an approval, a change record, an API key: the system makes those)
is a ``Take``: the reference says which list to take it from, or which example's answer holds it, and gives
no example value. The answers shown are in ``schema_responses.json``: bodies the demo gave to these requests
(lists cut to their first item), kept true by the test; ``ARM_UPDATE_API_ANSWERS=1 pytest
tests/test_api_examples.py`` writes them again after an endpoint's answer changes. ``arm.schema.postprocess``
applies all of it (``apply``, called by ``arm.schema_docs.apply``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arm.demo_ids import demo_id
from arm.errors import DATABASE_BUSY_MESSAGE


def _id(kind: str, name: str) -> str:
    return str(demo_id(kind, name))


STAGING = _id("environment", "staging")
PROD_EU = _id("environment", "prod-eu")
LOCAL_K8S = _id("provider", "local-k8s")
SUPPORT_BOT = _id("template", "support-bot")
INVOICE_TRIAGE = _id("template", "invoice-triage")  # no versions yet: it can be deleted
SUPPORT_100 = _id("version", "support-bot@1.0.0")
SUPPORT_110 = _id("version", "support-bot@1.1.0")  # APPROVED
SUPPORT_120 = _id("version", "support-bot@1.2.0")  # CANDIDATE
SUPPORT_130 = _id("version", "support-bot@1.3.0")  # TESTING, not evaluated yet
SUPPORT_140 = _id("version", "support-bot@1.4.0")  # DRAFT
SALES_090 = _id("version", "sales-assistant@0.9.0")  # RETIRED
SALES_US_1 = _id("instance", "sales-us-1")  # ACTIVE under support-standard
SUPPORT_EU_1 = _id("instance", "support-eu-1")  # ACTIVE under supervised
SUPPORT_EU_2 = _id("instance", "support-eu-2")
SUPPORT_CHAT = _id("instance", "support-chat")
SUPPORT_EU_LEGACY = _id("instance", "support-eu-legacy")  # RETIRED
ANALYST_STAGING = _id("instance", "analyst-staging")  # PROVISIONING
SUPPORT_STANDARD = _id("policy", "support-standard")
SUPERVISED = _id("policy", "supervised")
CONTRACTOR_TRIAL = _id("policy", "contractor-trial")  # attached to nothing: it can be deleted
ANNOUNCED_PRICE = _id("price", "openai/gpt-4.1/2027-07-01")
MONTHLY_BUDGET = _id("budget", "Monthly AI spend")
DAILY_BUDGET = _id("budget", "Daily AI spend")
APPROVER_EMAILS = _id("endpoint", "Approvers by email")  # acme's email endpoint (demo/notifications.py)


@dataclass(frozen=True)
class Take:
    """An id to take from somewhere: the first result of the list at ``path`` or, with ``example``, the field
    ``field`` of the answer to that example (``operation``, ``example``). ``text`` says so in the reference."""

    text: str
    path: str = ""
    operation: str = ""
    example: str = ""
    field: str = "id"


@dataclass(frozen=True)
class Example:
    """One request and the status the demo answers it with. ``params`` holds path and query parameters (a
    value or a ``Take``); ``body`` the request body (None: none). ``needs`` names what the demo does not have
    by default: ``signing key`` (ARM_AUDIT_SIGNING_KEY), ``signed checkpoint`` (a key, and a checkpoint
    taken), ``wait server`` (``make serve``, not ``make run``)."""

    summary: str
    status: int
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    needs: str = ""


PENDING_APPROVAL = Take(
    "a PENDING approval someone else requested (four eyes): GET /api/v1/approvals/?status=PENDING&tool=email.send",
    path="/api/v1/approvals/?status=PENDING&tool=email.send",
)
DENIED_APPROVAL = Take(
    "a decided approval: GET /api/v1/approvals/?status=DENIED", path="/api/v1/approvals/?status=DENIED"
)
DAILY_BUDGET_ALERT = Take(
    "an alert's id from GET /api/v1/budgets/{id}/alerts/ (Daily AI spend's)",
    path=f"/api/v1/budgets/{DAILY_BUDGET}/alerts/",
)
ANY_APPROVAL = Take("an approval's id from GET /api/v1/approvals/", path="/api/v1/approvals/")
OWN_APPROVAL = Take(
    "the approval your own evaluation opened: `approval` in the answer of POST /api/v1/policy/evaluate/ (its "
    "risky_email example)",
    operation="policy_evaluate",
    example="risky_email",
    field="approval",
)
ANY_DECISION = Take(
    "a decision's id from GET /api/v1/decisions/ (or `decision_id` in an evaluation's answer)",
    path="/api/v1/decisions/",
)
ANY_RECORD = Take("a change record's id from GET /api/v1/audit/", path="/api/v1/audit/")
WITHDRAWN_APPROVAL = Take(
    "an approval already withdrawn: the withdraw example's answer",
    operation="v1_approvals_withdraw_create",
    example="withdraw",
)
REVOKED_KEY = Take("a revoked key: the revoke example's answer", operation="v1_api_keys_destroy", example="new_key")
NEW_KEY = Take(
    "the `id` POST /api/v1/api-keys/ answered (its ci_key example), or one from GET /api/v1/api-keys/",
    operation="v1_api_keys_create",
    example="ci_key",
)

NEW_WEBHOOK = Take(
    "the `id` POST /api/v1/notification-endpoints/ answered (its ci_webhook example)",
    operation="v1_notification_endpoints_create",
    example="ci_webhook",
)
TEST_DELIVERY = Take(
    "a delivery's id from GET /api/v1/notification-deliveries/, or the answer of POST "
    "/api/v1/notification-endpoints/{id}/test/ (its approvers example)",
    operation="v1_notification_endpoints_test_create",
    example="approvers",
)

GENOME_EXAMPLE = {
    "model_config": {"provider": "openai", "name": "gpt-4.1", "parameters": {"temperature": 0.2}},
    "prompt_bundle_hash": "sha256:9f2c4a1be3d5c7e90f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70",
    "tool_manifest": [
        {"name": "crm.lookup", "version": "1.2.0", "risk": "low", "data_scopes": ["crm:read"]},
        {"name": "tickets.update", "version": "2.0.1", "risk": "medium", "data_scopes": ["tickets:write"]},
        {"name": "email.send", "risk": "high", "data_scopes": ["email:send"]},
    ],
    "provenance": {"source": "git+https://git.example.com/agents.git", "commit": "4e1f0c2", "built_by": "ci"},
}
NEW_POLICY = {
    "name": "refunds-guarded-docs-example",
    "description": "Tier 2 for agents that may issue refunds: refunds always need a person.",
    "autonomy_tier": 2,
    "allowed_tools": ["crm.*", "tickets.*", "refund.issue"],
    "denied_tools": ["*.delete", "shell.*"],
    "data_scopes": ["crm:*", "tickets:*"],
    "cost_limit_daily_usd": "40.00",
    "cost_limit_monthly_usd": "600.00",
    "approval_timeout_seconds": 3600,
    "tool_risk_overrides": {"refund.issue": "critical"},
}


def _usage(instance: str, at: str, key: str, **extra) -> dict:
    return {"instance": instance, "occurred_at": at, "idempotency_key": key, **extra}


# operationId -> {example name: Example}, in the order the reference shows them (the first is the default).
# A Take naming another example's answer is run after it: evaluate comes before the approvals, keys' create
# before their reads.
EXAMPLES: dict[str, dict[str, Example]] = {
    "health_retrieve": {"up": Example("The server and its database answer", 200)},
    "v1_environments_list": {"all": Example("The demo's environments", 200)},
    "v1_providers_list": {"all": Example("The demo's providers", 200)},
    "v1_templates_list": {
        "customer_facing": Example("Customer-facing templates", 200, params={"tags": "customer-facing"})
    },
    "v1_policies_list": {"tier_2": Example("Policies at tier 2", 200, params={"autonomy_tier": 2})},
    "v1_prices_list": {"openai": Example("OpenAI's prices", 200, params={"provider": "openai"})},
    "v1_api_keys_list": {
        "all": Example("The tenant's keys", 200),
        "support_eu_1": Example("The keys bound to support-eu-1", 200, params={"instance": SUPPORT_EU_1}),
    },
    "v1_audit_verify_retrieve": {"since_checkpoint": Example("From the newest verification checkpoint", 200)},
    "v1_audit_checkpoints_list": {"signed": Example("Signed checkpoints", 200, needs="signed checkpoint")},
    "v1_environments_create": {
        "new": Example(
            "A staging environment for the QA team",
            201,
            body={
                "name": "qa-docs-example",
                "tier": "staging",
                "description": "Release candidates checked by the QA team.",
                "config": {"region": "eu-west-1", "replicas": 2},
            },
        ),
        "name_taken": Example("A name the tenant already uses (409)", 409, body={"name": "staging", "tier": "staging"}),
        "unknown_tier": Example(
            "A tier that does not exist (400)", 400, body={"name": "qa-docs-example", "tier": "production"}
        ),
    },
    "v1_environments_retrieve": {"staging": Example("The demo's staging", 200, params={"id": STAGING})},
    "v1_environments_partial_update": {
        "describe": Example(
            "Describe staging",
            200,
            params={"id": STAGING},
            body={"description": "Release candidates, refreshed nightly."},
        ),
        "gate": Example(
            "Make staging prod while it runs a CANDIDATE (409)", 409, params={"id": STAGING}, body={"tier": "prod"}
        ),
        "config_not_an_object": Example(
            "A config that is not an object (400)", 400, params={"id": STAGING}, body={"config": ["eu-west-1"]}
        ),
    },
    "v1_providers_create": {
        "new": Example(
            "An on-premises GPU pool",
            201,
            body={
                "name": "gpu-pool-docs-example",
                "type": "local",
                "health_endpoint": "https://gpu.acme.example/healthz",
                "description": "On-premises GPU nodes for batch agents.",
            },
        ),
        "name_taken": Example("A name the tenant already uses (409)", 409, body={"name": "local-k8s", "type": "local"}),
        "federated_without_config": Example(
            "A federated provider without its federation_config (400)",
            400,
            body={"name": "partner-two-docs-example", "type": "federated"},
        ),
    },
    "v1_providers_retrieve": {"local_k8s": Example("The demo's local-k8s", 200, params={"id": LOCAL_K8S})},
    "v1_providers_partial_update": {
        "describe": Example(
            "Describe local-k8s",
            200,
            params={"id": LOCAL_K8S},
            body={"description": "Shared Kubernetes cluster in eu-west-1."},
        ),
        "name_taken": Example(
            "Another provider's name (409)", 409, params={"id": LOCAL_K8S}, body={"name": "partner-cloud"}
        ),
        "bad_endpoint": Example(
            "A health endpoint that is not an http(s) URL (400)",
            400,
            params={"id": LOCAL_K8S},
            body={"health_endpoint": "k8s.acme.example/healthz"},
        ),
    },
    "v1_templates_create": {
        "new": Example(
            "A support agent for German tickets",
            201,
            body={
                "name": "support-bot-docs-example",
                "description": "Answers customer tickets in German.",
                "owners": ["support-team@acme.example", "acme-operator"],
                "tags": ["support", "customer-facing"],
            },
        ),
        "name_taken": Example(
            "A name the tenant already uses (409)",
            409,
            body={"name": "support-bot", "owners": ["support-team@acme.example"]},
        ),
        "no_owner": Example("No owner (400)", 400, body={"name": "support-bot-docs-example", "owners": []}),
    },
    "v1_templates_retrieve": {"support_bot": Example("The demo's support-bot", 200, params={"id": SUPPORT_BOT})},
    "v1_templates_partial_update": {
        "describe": Example(
            "Describe support-bot",
            200,
            params={"id": SUPPORT_BOT},
            body={"description": "Answers customer tickets and hands over to a person when unsure."},
        ),
        "name_taken": Example(
            "Another template's name (409)", 409, params={"id": SUPPORT_BOT}, body={"name": "sales-assistant"}
        ),
        "no_owner": Example("Remove every owner (400)", 400, params={"id": SUPPORT_BOT}, body={"owners": []}),
    },
    "v1_templates_destroy": {
        "no_versions": Example("invoice-triage, which has no versions yet", 204, params={"id": INVOICE_TRIAGE}),
        "has_versions": Example("support-bot, which has versions (409)", 409, params={"id": SUPPORT_BOT}),
    },
    "v1_versions_list": {
        "support_bot_in_prod": Example(
            "support-bot's children of 1.0.0 deployed in prod-eu",
            200,
            params={"template": SUPPORT_BOT, "environment": PROD_EU, "parent": SUPPORT_100},
        ),
    },
    "v1_versions_create": {
        "new_build": Example(
            "support-bot 1.5.0, a child of 1.4.0",
            201,
            body={"template": SUPPORT_BOT, "version_label": "1.5.0", "parent": SUPPORT_140, "genome": GENOME_EXAMPLE},
        ),
        "label_taken": Example(
            "A label the template already has (409)",
            409,
            body={"template": SUPPORT_BOT, "version_label": "1.4.0", "genome": GENOME_EXAMPLE},
        ),
        "no_model": Example(
            "A genome without its model_config (400)",
            400,
            body={
                "template": SUPPORT_BOT,
                "version_label": "1.5.0",
                "genome": {k: v for k, v in GENOME_EXAMPLE.items() if k != "model_config"},
            },
        ),
    },
    "v1_versions_retrieve": {"support_110": Example("support-bot 1.1.0, verified", 200, params={"id": SUPPORT_110})},
    "v1_versions_transition_create": {
        "to_testing": Example(
            "support-bot 1.4.0 from DRAFT to TESTING",
            200,
            params={"id": SUPPORT_140},
            body={"to": "TESTING", "reason": "Ready for the regression suite."},
        ),
        "skip_ahead": Example(
            "DRAFT straight to APPROVED (409)", 409, params={"id": SUPPORT_140}, body={"to": "APPROVED"}
        ),
        "unknown_state": Example(
            "A state that does not exist (400)", 400, params={"id": SUPPORT_140}, body={"to": "SHIPPED"}
        ),
    },
    "v1_versions_lineage_retrieve": {"support_120": Example("support-bot 1.2.0", 200, params={"id": SUPPORT_120})},
    "v1_versions_diff_retrieve": {
        "against_approved": Example(
            "support-bot 1.4.0 against 1.1.0", 200, params={"id": SUPPORT_140, "against": SUPPORT_110}
        ),
        "another_template": Example(
            "Against another template's version (400)", 400, params={"id": SUPPORT_140, "against": SALES_090}
        ),
    },
    "v1_versions_evaluations_list": {"support_120": Example("support-bot 1.2.0", 200, params={"id": SUPPORT_120})},
    "v1_versions_evaluations_create": {
        "pass": Example(
            "support-bot 1.3.0 passed the regression suite",
            201,
            params={"id": SUPPORT_130},
            body={"suite": "regression-suite", "status": "PASS", "score": 0.96, "details": {"cases": 240, "failed": 9}},
        ),
        "retired": Example(
            "A RETIRED version (409)",
            409,
            params={"id": SALES_090},
            body={"suite": "regression-suite", "status": "FAIL", "score": 0.4},
        ),
        "unknown_status": Example(
            "A status other than PASS or FAIL (400)",
            400,
            params={"id": SUPPORT_130},
            body={"suite": "regression-suite", "status": "MAYBE"},
        ),
    },
    "v1_instances_list": {
        "support_bot_in_prod": Example(
            "support-bot 1.1.0 on local-k8s in prod-eu under supervised",
            200,
            params={
                "template": SUPPORT_BOT,
                "version": SUPPORT_110,
                "environment": PROD_EU,
                "provider": LOCAL_K8S,
                "policy": SUPERVISED,
            },
        ),
    },
    "v1_instances_create": {
        "deploy": Example(
            "support-bot 1.2.0 (CANDIDATE) to staging",
            201,
            body={
                "version": SUPPORT_120,
                "environment": STAGING,
                "provider": LOCAL_K8S,
                "name": "support-staging-docs-example",
            },
        ),
        "gate": Example(
            "A TESTING version to prod (400)",
            400,
            body={
                "version": SUPPORT_130,
                "environment": PROD_EU,
                "provider": LOCAL_K8S,
                "name": "support-eu-docs-example",
            },
        ),
    },
    "v1_instances_retrieve": {"support_eu_1": Example("The demo's support-eu-1", 200, params={"id": SUPPORT_EU_1})},
    "v1_instances_partial_update": {
        "attach_policy": Example(
            "Put analyst-staging under the supervised policy",
            200,
            params={"id": ANALYST_STAGING},
            body={"policy": SUPERVISED},
        ),
        "read_only_field": Example(
            "A field PATCH does not change (400)", 400, params={"id": ANALYST_STAGING}, body={"state": "ACTIVE"}
        ),
    },
    "v1_instances_transition_create": {
        "activate": Example(
            "analyst-staging from PROVISIONING to ACTIVE",
            200,
            params={"id": ANALYST_STAGING},
            body={"to": "ACTIVE", "reason": "Smoke tests passed."},
        ),
        "not_allowed": Example(
            "PROVISIONING to DRAINING (409)", 409, params={"id": ANALYST_STAGING}, body={"to": "DRAINING"}
        ),
        "unknown_state": Example(
            "A state that does not exist (400)", 400, params={"id": ANALYST_STAGING}, body={"to": "RUNNING"}
        ),
    },
    "v1_instances_heartbeat_create": {
        "beat": Example(
            "support-eu-1 is alive",
            200,
            params={"id": SUPPORT_EU_1},
            body={"status": {"queue_depth": 3, "model_latency_ms": 840}},
        ),
        "retired": Example(
            "A RETIRED instance (409)", 409, params={"id": SUPPORT_EU_LEGACY}, body={"status": {"queue_depth": 0}}
        ),
        "status_not_an_object": Example(
            "A status that is not an object (400)", 400, params={"id": SUPPORT_EU_1}, body={"status": "ok"}
        ),
    },
    "v1_instances_heartbeats_create": {
        "host": Example(
            "One host's instances, a retired one among them",
            200,
            body={
                "instances": [SUPPORT_EU_1, SUPPORT_EU_2, SUPPORT_CHAT, SUPPORT_EU_LEGACY],
                "status": {"host": "k8s-node-7"},
            },
        ),
        "not_ids": Example("Names instead of ids (400)", 400, body={"instances": ["support-eu-1"]}),
    },
    "v1_policies_create": {
        "new": Example("A policy for agents that issue refunds", 201, body=NEW_POLICY),
        "name_taken": Example(
            "A name the tenant already uses (409)", 409, body={"name": "support-standard", "autonomy_tier": 2}
        ),
        "tier_out_of_range": Example(
            "An autonomy tier above 5 (400)", 400, body={"name": "refunds-guarded-docs-example", "autonomy_tier": 7}
        ),
    },
    "v1_policies_retrieve": {"support_standard": Example("support-standard", 200, params={"id": SUPPORT_STANDARD})},
    "v1_policies_partial_update": {
        "lower_limit": Example(
            "Lower support-standard's daily cost limit",
            200,
            params={"id": SUPPORT_STANDARD},
            body={"cost_limit_daily_usd": "20.00"},
        ),
        "name_taken": Example(
            "Another policy's name (409)", 409, params={"id": SUPPORT_STANDARD}, body={"name": "supervised"}
        ),
        "tier_out_of_range": Example(
            "An autonomy tier above 5 (400)", 400, params={"id": SUPPORT_STANDARD}, body={"autonomy_tier": 9}
        ),
    },
    "v1_policies_destroy": {
        "unused": Example("contractor-trial, attached to nothing", 204, params={"id": CONTRACTOR_TRIAL}),
        "in_use": Example("support-standard, which instances use (409)", 409, params={"id": SUPPORT_STANDARD}),
    },
    "v1_policies_simulate_create": {
        "stricter": Example(
            "support-standard at tier 1 over its last 200 decisions",
            200,
            params={"id": SUPPORT_STANDARD},
            body={"autonomy_tier": 1, "limit": 200},
        ),
        "tier_out_of_range": Example(
            "An autonomy tier above 5 (400)", 400, params={"id": SUPPORT_STANDARD}, body={"autonomy_tier": 9}
        ),
    },
    "policy_evaluate": {
        "low_risk_lookup": Example(
            "A low-risk lookup: ALLOW",
            200,
            body={
                "instance": SALES_US_1,
                "tool": "crm.lookup",
                "params": {"customer_id": "C-1042"},
                "data_scopes": ["crm:read"],
                "estimated_cost_usd": "0.02",
            },
        ),
        "risky_email": Example(
            "A high-risk call: NEEDS_APPROVAL",
            200,
            body={
                "instance": SALES_US_1,
                "tool": "email.send",
                "params": {"to": "lead@example.com", "subject": "Your quote"},
                "estimated_cost_usd": "0.05",
                "idempotency_key": "lead-1042-quote-email",
            },
        ),
        "key_reused": Example(
            "An idempotency key already naming another call (409)",
            409,
            body={
                "instance": SALES_US_1,
                "tool": "email.send",
                "params": {"to": "lead@example.com", "subject": "Your quote"},
                "idempotency_key": f"demo-{SALES_US_1}-0",
            },
        ),
        "negative_cost": Example(
            "A negative cost estimate (400)",
            400,
            body={"instance": SALES_US_1, "tool": "crm.lookup", "estimated_cost_usd": "-1"},
        ),
    },
    "v1_decisions_list": {
        "sales_us_1": Example(
            "sales-us-1's decisions under support-standard",
            200,
            params={"instance": SALES_US_1, "policy": SUPPORT_STANDARD},
        ),
        "one_approval": Example("The decisions of one approval", 200, params={"approval": ANY_APPROVAL}),
    },
    "v1_decisions_retrieve": {"one": Example("One decision", 200, params={"id": ANY_DECISION})},
    "v1_approvals_list": {"sales_us_1": Example("sales-us-1's approvals", 200, params={"instance": SALES_US_1})},
    "v1_approvals_retrieve": {"one": Example("One approval", 200, params={"id": ANY_APPROVAL})},
    "v1_approvals_wait_retrieve": {
        "decided": Example(
            "Answered when the decision commits (wait server: make serve)",
            200,
            params={"id": ANY_APPROVAL, "timeout": 30},
            needs="wait server",
        ),
        "no_wait_server": Example(
            "make run's development server cannot hold waits (503)", 503, params={"id": ANY_APPROVAL, "timeout": 30}
        ),
    },
    "v1_approvals_approve_create": {
        "approve": Example(
            "Approve a pending call",
            200,
            params={"id": PENDING_APPROVAL},
            body={"note": "Checked the ticket; fine to send."},
        ),
        "already_decided": Example(
            "An approval already decided (409)", 409, params={"id": DENIED_APPROVAL}, body={"note": "Fine."}
        ),
    },
    "v1_approvals_deny_create": {
        "deny": Example(
            "Deny a pending call", 200, params={"id": PENDING_APPROVAL}, body={"note": "Not to this customer."}
        ),
        "already_decided": Example(
            "An approval already decided (409)", 409, params={"id": DENIED_APPROVAL}, body={"note": "No."}
        ),
    },
    "v1_approvals_withdraw_create": {
        "withdraw": Example(
            "Withdraw the approval your evaluation opened",
            200,
            params={"id": OWN_APPROVAL},
            body={"note": "The customer called back; no email needed."},
        ),
        "already_withdrawn": Example(
            "A request no longer PENDING (409)", 409, params={"id": WITHDRAWN_APPROVAL}, body={"note": "Not needed."}
        ),
        "not_yours": Example(
            "Someone else's request (403)", 403, params={"id": PENDING_APPROVAL}, body={"note": "Not needed."}
        ),
    },
    "runtime_context": {"sales_us_1": Example("sales-us-1's context", 200, params={"instance": SALES_US_1})},
    "v1_audit_list": {"support_bot": Example("support-bot's records", 200, params={"target_id": SUPPORT_BOT})},
    "v1_audit_retrieve": {"one": Example("One change record", 200, params={"id": ANY_RECORD})},
    "v1_audit_proof_retrieve": {
        "proved": Example(
            "A record a signed checkpoint covers", 200, params={"id": ANY_RECORD}, needs="signed checkpoint"
        ),
        "no_checkpoint": Example(
            "No signed checkpoint yet: the demo has no signing key (409)", 409, params={"id": ANY_RECORD}
        ),
    },
    "v1_audit_checkpoints_create": {
        "signed": Example("Sign the chain head", 201, needs="signing key"),
        "unchanged": Example(
            "The head has not moved since the last checkpoint: that one", 200, needs="signed checkpoint"
        ),
        "no_key": Example("The demo has no signing key (409)", 409),
    },
    "v1_api_keys_create": {
        "ci_key": Example(
            "A key for a CI job that records evaluation results",
            201,
            body={"name": "ci-evaluations-docs-example", "roles": ["operator"]},
        ),
        "runtime_key": Example(
            "A runtime key bound to support-eu-1",
            201,
            body={"name": "support-eu-1-runtime-docs-example", "roles": ["runtime"], "instance": SUPPORT_EU_1},
        ),
        "unknown_role": Example(
            "A role that does not exist (400)", 400, body={"name": "ci-docs-example", "roles": ["superuser"]}
        ),
    },
    "v1_api_keys_retrieve": {"new_key": Example("The key just created", 200, params={"id": NEW_KEY})},
    "v1_api_keys_destroy": {
        "new_key": Example("Revoke the key just created", 200, params={"id": NEW_KEY}),
        "revoked": Example("A key already revoked (409)", 409, params={"id": REVOKED_KEY}),
    },
    "usage_ingest": {
        "batch": Example(
            "Two model calls, one with its own cost",
            200,
            body={
                "entries": [
                    _usage(
                        SALES_US_1,
                        "2026-11-20T09:30:15Z",
                        "run-7731-call-1",
                        provider="anthropic",
                        model="claude-sonnet-4",
                        input_tokens=1200,
                        cached_input_tokens=800,
                        output_tokens=300,
                    ),
                    _usage(
                        SUPPORT_EU_1,
                        "2026-11-20T09:30:19Z",
                        "run-7731-call-2",
                        provider="openai",
                        model="gpt-4.1",
                        input_tokens=900,
                        output_tokens=450,
                        cost_usd="0.005400",
                        tool_name="crm.lookup",
                    ),
                ]
            },
        ),
        "entries_not_a_list": Example(
            "entries that is not a list (400)", 400, body={"entries": {"instance": SALES_US_1}}
        ),
    },
    "usage_list": {
        "support_eu_1": Example(
            "support-eu-1's entries", 200, params={"instance": SUPPORT_EU_1, "template": SUPPORT_BOT}
        ),
        "one_decision": Example("The entries reported for one decision", 200, params={"decision": ANY_DECISION}),
    },
    "v1_prices_create": {
        "new": Example(
            "A price from next July",
            201,
            body={
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "input_usd_per_mtok": "2.70",
                "cached_input_usd_per_mtok": "0.27",
                "output_usd_per_mtok": "13.50",
                "effective_from": "2027-07-01",
            },
        ),
        "date_taken": Example(
            "A model that already has a price from that date (409)",
            409,
            body={
                "provider": "openai",
                "model": "gpt-4.1",
                "input_usd_per_mtok": "1.60",
                "output_usd_per_mtok": "6.40",
                "effective_from": "2027-07-01",
            },
        ),
        "negative": Example(
            "A negative price (400)",
            400,
            body={
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "input_usd_per_mtok": "-2.70",
                "output_usd_per_mtok": "13.50",
                "effective_from": "2027-07-01",
            },
        ),
    },
    "v1_prices_retrieve": {"announced": Example("gpt-4.1's announced price", 200, params={"id": ANNOUNCED_PRICE})},
    "v1_prices_partial_update": {
        "correct": Example(
            "Correct the announced output price",
            200,
            params={"id": ANNOUNCED_PRICE},
            body={"output_usd_per_mtok": "7.00"},
        ),
        "date_taken": Example(
            "A date the model already has a price from (409)",
            409,
            params={"id": ANNOUNCED_PRICE},
            body={"effective_from": "2025-01-01"},
        ),
        "negative": Example(
            "A negative price (400)", 400, params={"id": ANNOUNCED_PRICE}, body={"input_usd_per_mtok": "-1.80"}
        ),
    },
    "v1_prices_destroy": {
        "announced": Example("Remove the announced price", 204, params={"id": ANNOUNCED_PRICE}),
    },
    "v1_budgets_list": {"support_bot": Example("support-bot's budgets", 200, params={"template": SUPPORT_BOT})},
    "v1_budgets_create": {
        "tag": Example(
            "A monthly budget for every customer-facing template",
            201,
            body={
                "name": "customer-facing monthly docs example",
                "scope": "tag",
                "tag": "customer-facing",
                "period": "monthly",
                "amount_usd": "300.00",
                "thresholds": [80, 100],
            },
        ),
        "name_taken": Example(
            "A name the tenant already uses (409)",
            409,
            body={"name": "Monthly AI spend", "scope": "tenant", "period": "monthly", "amount_usd": "50.00"},
        ),
        "template_missing": Example(
            "A template budget without its template (400)",
            400,
            body={"name": "template docs example", "scope": "template", "period": "monthly", "amount_usd": "50.00"},
        ),
    },
    "v1_budgets_retrieve": {"monthly": Example("Monthly AI spend", 200, params={"id": MONTHLY_BUDGET})},
    "v1_budgets_partial_update": {
        "thresholds": Example(
            "Alert at 90 % too",
            200,
            params={"id": MONTHLY_BUDGET},
            body={"thresholds": [50, 80, 90, 100]},
        ),
        "name_taken": Example(
            "Another budget's name (409)", 409, params={"id": MONTHLY_BUDGET}, body={"name": "Daily AI spend"}
        ),
        "negative": Example("A negative amount (400)", 400, params={"id": MONTHLY_BUDGET}, body={"amount_usd": "-5"}),
    },
    "v1_budgets_destroy": {"daily": Example("Daily AI spend", 204, params={"id": DAILY_BUDGET})},
    "v1_budgets_alerts_list": {"monthly": Example("Monthly AI spend's alerts", 200, params={"id": MONTHLY_BUDGET})},
    "v1_budget_alerts_acknowledge_create": {
        "acknowledge": Example("Acknowledge an alert of Daily AI spend", 200, params={"id": DAILY_BUDGET_ALERT})
    },
    "v1_notification_endpoints_list": {"email": Example("The email endpoints", 200, params={"kind": "email"})},
    "v1_notification_endpoints_create": {
        "ci_webhook": Example(
            "A CI system's webhook for approval requests and decisions",
            201,
            body={
                "name": "ci-approvals docs example",
                "kind": "webhook",
                "url": "https://ci.example.com/arm/webhooks",
                "event_types": ["approval.requested", "approval.decided"],
            },
        ),
        "slack": Example(
            "A Slack channel for tampered versions and quarantines",
            201,
            body={
                "name": "security-channel docs example",
                "kind": "slack",
                "url": "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
                "event_types": ["version.tampered", "instance.quarantined"],
            },
        ),
        "loopback": Example(
            "A loopback address (400)",
            400,
            body={"name": "loopback docs example", "url": "https://127.0.0.1:9000/hook"},
        ),
        "name_taken": Example(
            "A name the tenant already uses (409)", 409, body={"name": "Approvers by email", "kind": "email"}
        ),
    },
    "v1_notification_endpoints_retrieve": {
        "approvers": Example("Approvers by email", 200, params={"id": APPROVER_EMAILS})
    },
    "v1_notification_endpoints_partial_update": {
        "expired_too": Example(
            "Mail withdrawn requests too",
            200,
            params={"id": APPROVER_EMAILS},
            body={"event_types": ["approval.requested", "approval.expired", "approval.withdrawn"]},
        ),
        "pause": Example("Pause it", 200, params={"id": APPROVER_EMAILS}, body={"active": False}),
    },
    "v1_notification_endpoints_destroy": {
        "approvers": Example("Approvers by email", 204, params={"id": APPROVER_EMAILS})
    },
    "v1_notification_endpoints_rotate_secret_create": {
        "ci_webhook": Example("Rotate the new CI webhook's secret", 200, params={"id": NEW_WEBHOOK})
    },
    "v1_notification_endpoints_test_create": {
        "approvers": Example("Mail a test event to the approvers", 202, params={"id": APPROVER_EMAILS})
    },
    "v1_notification_deliveries_list": {
        "approvers": Example("Approvers by email's deliveries", 200, params={"endpoint": APPROVER_EMAILS}),
        "dead": Example("Every delivery given up on", 200, params={"status": "dead"}),
    },
    "v1_notification_deliveries_retrieve": {
        "test": Example("The test event's delivery", 200, params={"id": TEST_DELIVERY})
    },
    "v1_notification_deliveries_redeliver_create": {
        "queued": Example("A delivery still queued (409)", 409, params={"id": TEST_DELIVERY})
    },
    "costs_report": {
        "support_bot_in_prod": Example(
            "support-bot in prod-eu, by model",
            200,
            params={"template": SUPPORT_BOT, "environment": PROD_EU, "group_by": "model"},
        ),
    },
    "costs_forecast": {
        "support_bot_in_prod": Example(
            "support-bot in prod-eu", 200, params={"template": SUPPORT_BOT, "environment": PROD_EU}
        ),
    },
    "costs_estimates": {
        "support_bot_in_prod": Example(
            "support-bot in prod-eu", 200, params={"template": SUPPORT_BOT, "environment": PROD_EU}
        ),
    },
}

# operationId -> {example name: the answer's body}; every example but a 204's has one.
RESPONSES: dict[str, dict[str, Any]] = json.loads(Path(__file__).with_name("schema_responses.json").read_text())
NOT_FOUND = {"code": "not_found", "message": "Not found."}
_CHOICE = "Select a valid choice. RUNNING is not one of the available choices."
# Status -> (name, summary, body): the answer shown under a status that no example of the operation covers.
GENERIC_ANSWERS: dict[int, tuple[str, str, dict]] = {
    400: (
        "invalid_input",
        "Invalid input, named by field",
        {"code": "validation_error", "message": f"Invalid input: state: {_CHOICE}", "errors": {"state": [_CHOICE]}},
    ),
    401: (
        "no_credentials",
        "No API key and no session",
        {"code": "not_authenticated", "message": "Authentication credentials were not provided."},
    ),
    403: (
        "role_required",
        "A role that may not do this",
        {"code": "role_required", "message": "This action needs one of the roles: admin, operator."},
    ),
    404: ("not_found", "An unknown id (or another tenant's)", NOT_FOUND),
    405: (
        "method_not_allowed",
        "A method the path does not take",
        {"code": "method_not_allowed", "message": 'Method "PUT" not allowed.'},
    ),
    413: (
        "payload_too_large",
        "A body over 1 MiB",
        {"code": "payload_too_large", "message": "Request body exceeds 1048576 bytes."},
    ),
    415: (
        "unsupported_media_type",
        "A body that is not JSON",
        {
            "code": "unsupported_media_type",
            "message": 'Unsupported media type "application/x-www-form-urlencoded" in request.',
        },
    ),
    503: (
        "database_busy",
        "A collision with another transaction",
        {"code": "database_busy", "message": DATABASE_BUSY_MESSAGE},
    ),
}


def apply(operations: dict) -> None:
    """Put ``EXAMPLES`` on the generated operations: request bodies under their names, each parameter's value
    (several values: a choice of them; a ``Take``: a sentence in its description instead), the answers under
    their status; under any other error status, its ``GENERIC_ANSWERS`` example."""
    for operation_id, operation in operations.items():
        examples = EXAMPLES.get(operation_id, {})
        for name, example in examples.items():
            shown = {"summary": example.summary}
            if example.body is not None:
                for media in operation["requestBody"]["content"].values():
                    media.setdefault("examples", {})[name] = {**shown, "value": example.body}
            answer = RESPONSES.get(operation_id, {}).get(name)
            if answer is not None:
                content = operation["responses"][str(example.status)]["content"]
                for media in content.values():
                    media.setdefault("examples", {})[name] = {**shown, "value": answer}
        for parameter in operation.get("parameters", []):
            _document_parameter(parameter, examples)
        for status, response in operation["responses"].items():
            generic = GENERIC_ANSWERS.get(int(status))
            for media in response.get("content", {}).values():
                if generic and not media.get("examples"):
                    name, summary, body = generic
                    media["examples"] = {name: {"summary": summary, "value": body}}


def _document_parameter(parameter: dict, examples: dict[str, Example]) -> None:
    values = {name: e.params[parameter["name"]] for name, e in examples.items() if parameter["name"] in e.params}
    source = next((v for v in values.values() if isinstance(v, Take)), None)
    if source is not None:
        where = f"Take it from {source.text}."
        parameter["description"] = f"{parameter['description']} {where}" if parameter.get("description") else where
    given = {name: v for name, v in values.items() if not isinstance(v, Take)}
    if len(set(map(str, given.values()))) == 1:
        parameter["example"] = next(iter(given.values()))
    elif given:
        parameter["examples"] = {name: {"summary": examples[name].summary, "value": v} for name, v in given.items()}
