"""What the API reference (``/api/docs/``) says about each operation (its resource tag, a one-line summary
and a description in the integrator's words) and about each schema component, plus the examples of
``arm.schema_examples``.

Kept apart from the views and serializers so their docstrings stay written for maintainers: a serializer's
docstring never reaches the reference (``component_description``). ``arm.schema.postprocess`` applies these
tables; ``tests/test_api_docs.py`` fails when an operation or a component is missing from them.
"""

from __future__ import annotations

DESCRIPTION = (
    "Agent Resource Management: registry, policy evaluation, approvals, audit and costs for AI agent fleets. "
    "Authenticate with `Authorization: Bearer <api key>`, or sign in: the page uses your session.\n\n"
    "Every example works as it is in the demo (`make run`, signed in as acme-admin, password admin-demo-pass): "
    "the ids are the demo's, and the names it creates are free. Ids the system makes (decisions, approvals, "
    "change records, API keys) have no example value: each such parameter says which list to take one from. A "
    "demo seeded before these examples has other ids: `make reset` rebuilds it."
)

TAGS = [
    {"name": "Environments", "description": "Deployment targets (dev, staging, prod) and their deployment gates."},
    {"name": "Providers", "description": "Where instances run: local runtimes or federated ones."},
    {"name": "Templates", "description": "Agent families: name, owners and tags shared by their versions."},
    {
        "name": "Versions",
        "description": "Immutable, SHA-256-hashed builds (genomes) with lineage, lifecycle and evaluation results.",
    },
    {"name": "Instances", "description": "Deployments of a version: lifecycle, heartbeats and the attached policy."},
    {"name": "Policies", "description": "Policy envelopes: what an instance's agent may do, and what-if simulation."},
    {"name": "Evaluation", "description": "Ask before every tool call: ALLOW, DENY or NEEDS_APPROVAL, and the log."},
    {"name": "Approvals", "description": "Human sign-off on risky calls: four eyes, timeouts, single use."},
    {"name": "Audit", "description": "The append-only, hash-chained record of every change, and its verification."},
    {
        "name": "Costs",
        "description": "What agents really spent (from the usage ledger's daily rollups): reports, CSV, forecasts.",
    },
    {"name": "API keys", "description": "Machine credentials: shown once, stored hashed, revocable."},
    {"name": "Health", "description": "Liveness of the server and its database."},
    {"name": "Usage", "description": "Report what agents really spent: model calls with tokens and cost (the ledger)."},
    {"name": "Prices", "description": "The tenant's price table: USD per million tokens per model, by date."},
    {"name": "Budgets", "description": "Spending budgets per tenant, template or tag, with alert thresholds."},
    {
        "name": "Notifications",
        "description": "Who is told when something happens: webhooks signed per Standard Webhooks, Slack, email to "
        "a role; each endpoint's delivery log.",
    },
]

# operationId -> (tag, summary, description)
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "health_retrieve": ("Health", "Check the server", "200 when the database answers, 503 when it does not."),
    "costs_report": (
        "Costs",
        "Cost report",
        "Actual spend (reported or priced usage) grouped by template, version, instance, environment, provider, "
        "model, tag or owner, per day, week (Monday) or month, between since and until (UTC days, default the last "
        "30, at most 366), optionally for one environment or template. Each group has its series, tokens, the ALLOW "
        "decisions of its instances and the cost per allowed tool call. Tag and owner come from the template's "
        "lists, so a template with two tags counts in both. format=csv streams every (bucket, group) row. Read from "
        "daily rollups: fast whatever the number of entries. Errors: 400 unknown_parameter, invalid_parameter "
        "(also another tenant's id), invalid_range.",
    ),
    "costs_forecast": (
        "Costs",
        "Month-end forecast",
        "This UTC month's spend so far and its forecast from the run rate (mean daily spend of the last 14 complete "
        "days) with a 95 % band (1.96 standard deviations of daily spend x the square root of the days left). "
        "method states the arithmetic. A budget's own forecast and run-out date are in GET /budgets/{id}/.",
    ),
    "costs_estimates": (
        "Costs",
        "Estimated vs actual per instance",
        "Per instance over the range: the estimates its runtime sent with ALLOWed policy evaluations against the "
        "actual cost it reported to the ledger (the day spend counters policy cost limits read), paginated, sorted "
        "by actual (default), estimated, difference or name.",
    ),
    "v1_environments_list": ("Environments", "List environments", "Every environment of your tenant, by name."),
    "v1_environments_create": (
        "Environments",
        "Create an environment",
        "Name (unique in the tenant), tier (dev, staging or prod: the tier decides which version states may "
        "deploy there), description and a JSON object of configuration. Needs the operator role.",
    ),
    "v1_environments_retrieve": ("Environments", "Get an environment", "One environment by id."),
    "v1_environments_partial_update": (
        "Environments",
        "Edit an environment",
        "Change name, description, config or tier. A tier change is refused (409 deployment_gate) while a live "
        "instance there runs a version the new tier would not accept.",
    ),
    "v1_providers_list": ("Providers", "List providers", "Every provider of your tenant, by name."),
    "v1_providers_create": (
        "Providers",
        "Create a provider",
        "A local or federated runtime; a federated one needs a non-empty federation_config. Operator role.",
    ),
    "v1_providers_retrieve": ("Providers", "Get a provider", "One provider by id."),
    "v1_providers_partial_update": ("Providers", "Edit a provider", "Change any of its fields. Operator role."),
    "v1_templates_list": (
        "Templates",
        "List templates",
        "Filter by tags (all of them), owner, search by name; sort by created or updated time.",
    ),
    "v1_templates_create": (
        "Templates",
        "Create a template",
        "An agent family: a unique name, at least one owner (email or username) and optional tags. Operator role.",
    ),
    "v1_templates_retrieve": ("Templates", "Get a template", "One template by id."),
    "v1_templates_partial_update": (
        "Templates",
        "Edit a template",
        "Change name, description, owners or tags. Operator role.",
    ),
    "v1_templates_destroy": (
        "Templates",
        "Delete a template",
        "Only while it has no versions (409 template_has_versions otherwise). Operator role.",
    ),
    "v1_versions_list": (
        "Versions",
        "List versions",
        "Filter by template, lifecycle state, evaluation status; up to 1000 per page. Lists never verify hashes.",
    ),
    "v1_versions_create": (
        "Versions",
        "Create a version",
        "Register a build: its genome is validated, stored in RFC 8785 canonical form and hashed (SHA-256). The "
        "response returns the genome exactly as stored, byte for byte what genome_hash covers. The genome, its "
        "hash and the parent can never change afterwards. Operator role.",
    ),
    "v1_versions_retrieve": (
        "Versions",
        "Get a version and verify it",
        "Recomputes the genome hash and answers integrity VERIFIED or TAMPERED with both hashes; the check is "
        "recorded, and a TAMPERED version's live instances are quarantined.",
    ),
    "v1_versions_transition_create": (
        "Versions",
        "Move a version along its lifecycle",
        "DRAFT, TESTING, CANDIDATE, APPROVED, DEPRECATED, RETIRED. CANDIDATE needs a passing evaluation; APPROVED "
        "needs an approver who did not create the version (four eyes). 409 names the unmet guard.",
    ),
    "v1_versions_lineage_retrieve": (
        "Versions",
        "Get a version's lineage",
        "Its ancestors up to the root (nearest first) and its direct children.",
    ),
    "v1_versions_diff_retrieve": (
        "Versions",
        "Compare two genomes",
        "Model changes, prompt hash change, tools added, removed and changed, from `against` (default: the "
        "parent) to this version. Both versions must belong to the same template.",
    ),
    "v1_versions_evaluations_list": (
        "Versions",
        "List a version's evaluation results",
        "Results recorded by evaluation harnesses, newest first.",
    ),
    "v1_versions_evaluations_create": (
        "Versions",
        "Record an evaluation result",
        "For evaluation harnesses: suite, PASS or FAIL, optional score and details. The version's eval_status "
        "becomes the status of its latest result. Operator role; refused for RETIRED versions.",
    ),
    "v1_instances_list": (
        "Instances",
        "List instances",
        "Filter by state, environment, version, health; each row carries its health (healthy, stale, never).",
    ),
    "v1_instances_create": (
        "Instances",
        "Deploy a version",
        "Creates an instance in PROVISIONING after the environment's deployment gate and an integrity check of "
        "the version (a TAMPERED version is never deployed: 409 version_tampered). Operator role.",
    ),
    "v1_instances_retrieve": ("Instances", "Get an instance", "One instance with its state and health."),
    "v1_instances_partial_update": (
        "Instances",
        "Rename an instance or attach a policy",
        "`name` needs the operator role; `policy` (an id, or null to detach) needs the compliance role.",
    ),
    "v1_instances_transition_create": (
        "Instances",
        "Move an instance along its lifecycle",
        "Activation and lifting a quarantine re-verify the version first. Lifting a quarantine needs an approver.",
    ),
    "v1_instances_heartbeat_create": (
        "Instances",
        "Send a heartbeat",
        "Marks the instance alive, with an optional small status object. Runtime keys (for their bound instance) "
        "or operators. RETIRED instances answer 409.",
    ),
    "v1_instances_heartbeats_create": (
        "Instances",
        "Send heartbeats for many instances",
        "Up to 1000 instance ids in one call and one UPDATE, with one optional status object for all. Answers each "
        "id's result: ok, not_found (unknown, another tenant's, or not the instance a bound runtime key is bound "
        "to) or retired (RETIRED instances take no heartbeats). More than 1000 ids answer 400. Runtime keys or "
        "operators.",
    ),
    "v1_policies_list": ("Policies", "List policies", "Every policy envelope of your tenant."),
    "v1_policies_create": (
        "Policies",
        "Create a policy",
        "Autonomy tier 0-5, allowed and denied tool patterns, data scopes, cost limits, approval timeout and "
        "per-tool risk overrides. Compliance role.",
    ),
    "v1_policies_retrieve": ("Policies", "Get a policy", "One policy envelope with its revision."),
    "v1_policies_partial_update": (
        "Policies",
        "Edit a policy",
        "Every change increments the revision and is recorded with its before/after. Compliance role.",
    ),
    "v1_policies_destroy": ("Policies", "Delete a policy", "Refused while an instance uses it. Compliance role."),
    "v1_policies_simulate_create": (
        "Policies",
        "Simulate a policy change",
        "Replays the last decisions made under this policy with the proposed change and reports which would "
        "flip. Writes nothing. Compliance role.",
    ),
    "policy_evaluate": (
        "Evaluation",
        "Evaluate a tool call",
        "Call before every tool call. Answers ALLOW, DENY or NEEDS_APPROVAL with the reasons. NEEDS_APPROVAL opens "
        "an approval request (an identical pending call reuses it): poll it, then ask again with `approval` set "
        "to its id; an approval is good for one call. Runtime keys (for their bound instance) or operators. "
        "`tool` is the manifest name or its call name (email.send or email_send). An idempotency_key names one call "
        "for its whole life: asked again, it answers the stored decision (replay: true, nothing counted again) or, "
        "once the call's approval is approved, ALLOW through it, once; another call under the key is 409 "
        "idempotency_conflict.",
    ),
    "v1_decisions_list": ("Evaluation", "List decisions", "The decision log: every evaluation, newest first."),
    "v1_decisions_retrieve": ("Evaluation", "Get a decision", "One logged evaluation with its reasons."),
    "v1_approvals_list": (
        "Approvals",
        "List approval requests",
        "Filter by status (e.g. PENDING) or idempotency_key. Runtime keys see only their own requests.",
    ),
    "v1_approvals_retrieve": (
        "Approvals",
        "Get an approval request",
        "Poll this while waiting: status PENDING, APPROVED, DENIED, EXPIRED or WITHDRAWN. estimated_cost_usd and "
        "data_scopes are what an approval grants at most.",
    ),
    "v1_approvals_wait_retrieve": (
        "Approvals",
        "Wait for a decision",
        "Long-poll instead of polling: answers the approval the moment its decision commits (header X-ARM-Wait: "
        "decided; also when it expires), or after timeout seconds (0-60, default 30) with its current state "
        "(X-ARM-Wait: timeout). Served by ARM's wait server, which holds no worker or database connection per "
        "waiting call (route /api/v1/approvals/*/wait/ to it: docs/runtime-integration.md); a server that cannot "
        "wait answers 503 wait_unavailable, a wait server at its limit 503 too_many_waiters, both with "
        "Retry-After. 404 for another tenant's approval, or another instance's for a key bound to one.",
    ),
    "v1_approvals_approve_create": (
        "Approvals",
        "Approve a request",
        "The requester's next evaluation carrying this approval id is allowed, once. Approver role, and not the "
        "person who requested it (four eyes); 409 if already decided or expired.",
    ),
    "v1_approvals_deny_create": (
        "Approvals",
        "Deny a request",
        "The call stays refused; the runtime sees DENIED when it polls. Approver role, and not the person who "
        "requested it (four eyes); 409 if already decided or expired.",
    ),
    "v1_approvals_withdraw_create": (
        "Approvals",
        "Withdraw a request",
        "The runtime that opened a PENDING request no longer needs it: it becomes WITHDRAWN (final), leaves the "
        "queue, and waiters are answered. A key bound to its instance, the key that opened it, or the person behind "
        "that key (else 403 not_requester); 409 not_pending once it is decided, expired or withdrawn.",
    ),
    "runtime_context": (
        "Evaluation",
        "Read a runtime's context",
        "One document about the instance a runtime acts for: the instance, its version with the tool manifest "
        "(each tool's call name), the attached policy with what evaluate answers now for each tool (allow, "
        "needs_approval, deny), and the day's and month's budget left. A key bound to an instance reads its own; "
        "other keys and members name it with ?instance= (a bound key naming another: 403 instance_binding).",
    ),
    "v1_audit_list": (
        "Audit",
        "List change records",
        "Newest first (cursor pagination); filter by event type, target, actor and time range.",
    ),
    "v1_audit_retrieve": ("Audit", "Get a change record", "One record with its payload and hashes."),
    "v1_audit_verify_retrieve": (
        "Audit",
        "Verify the audit chain",
        "Recomputes the tenant's hash chain up to its head (from the newest checkpoint, or from the first "
        "record with full=true) and names the first broken record.",
    ),
    "v1_audit_checkpoints_list": (
        "Audit",
        "List signed checkpoints",
        "Newest first. Each is signed with an Ed25519 key held outside the database; verify it with the keys at "
        "/.well-known/arm-audit-keys.json. Archive them: the chain must always extend every one.",
    ),
    "v1_audit_checkpoints_create": (
        "Audit",
        "Sign a checkpoint now",
        "Signs the chain head (seq, hash, Merkle root, time): 201, or 200 with the existing checkpoint when the head "
        "has not moved. Compliance or admin; 409 chain_broken when the chain does not extend the previous "
        "checkpoint, 409 signing_not_configured without a key.",
    ),
    "v1_audit_proof_retrieve": (
        "Audit",
        "Prove a record is in a signed checkpoint",
        "The record, a signed checkpoint at or after it (the newest, or ?checkpoint=seq) and the RFC 6962 audit "
        "path from the record's hash to the checkpoint's Merkle root: check it offline with python "
        "audit/merkle.py PROOF.json --public-keys KEYS.json. 409 no_checkpoint until a checkpoint covers it.",
    ),
    "v1_api_keys_list": ("API keys", "List API keys", "Tenant admins see every key of the tenant."),
    "v1_api_keys_create": (
        "API keys",
        "Create an API key",
        "The secret is in this response only; store it now. A key never holds more than its minter.",
    ),
    "v1_api_keys_retrieve": ("API keys", "Get an API key", "Its name, roles and binding; never the secret."),
    "v1_api_keys_destroy": (
        "API keys",
        "Revoke an API key",
        "Revokes the key and every key it minted; the rows stay for the audit trail.",
    ),
}

# The economic ledger (the ledger app).
OPERATIONS.update(
    {
        "usage_ingest": (
            "Usage",
            "Report usage",
            "Up to 1000 entries per batch (more: 413 too_many_entries, nothing stored; split the batch): "
            "instance, occurred_at (with a time zone), provider, model, "
            "input_tokens (every input token, cached ones included), cached_input_tokens (the part read from the "
            "provider's prompt cache, priced at the cached price), output_tokens, optionally cost_usd (else priced "
            "from the tenant's price table), "
            "tool_name and the policy decision id, and an idempotency_key (unique per instance: a retried "
            "batch counts nothing twice). Always 200 once the batch is well formed, with one result per entry "
            "in order: accepted (with its id and cost), duplicate (the same entry already counted), conflict "
            "(the instance already used the key for an entry with other content: code idempotency_conflict, "
            "nothing stored), or rejected with a stable code (validation_error naming the field, "
            "instance_not_found, decision_not_found, total_out_of_range: past the ledger's bounds) and a message; "
            "valid entries are stored even when others "
            "are refused. Operator or runtime role; a key bound to "
            "an instance reports only for it. OpenTelemetry exporters can post spans to /otlp/v1/traces instead "
            "(OTLP/HTTP, protobuf or JSON, gzip inflating to at most 8 MiB): the first 1000 spans with GenAI "
            "usage of an export are ingested, any more are refused in partial_success (too_many_spans). Entries "
            "without a cost and without a price for their model are stored unpriced (cost 0) and counted in the "
            "answer (unpriced, unpriced_models); adding the price prices them.",
        ),
        "usage_list": (
            "Usage",
            "List usage entries",
            "The ledger's entries, newest first (cursor pagination): instance, model, provider, tokens (input, the "
            "cached part of it, output), cost and cost_source (reported, priced, or unpriced: no price known yet, "
            "cost 0 until the tenant adds one, which prices them). Filters: instance, template, decision, "
            "provider (ignoring case), model, cost_source, source (api, otlp), since/until (occurred_at). Every "
            "member role.",
        ),
        "v1_prices_list": ("Prices", "List prices", "Filter by provider and model; search either."),
        "v1_prices_create": (
            "Prices",
            "Add a price",
            "Provider (stored lowercase) and model as runtimes report them, USD per million input, cached input "
            "(optional: null is the input price) and output tokens (decimal strings) and the UTC date it applies "
            "from. One row per model and date (409 otherwise). Compliance or admin role. Usage already priced "
            "keeps its cost; the tenant's unpriced usage of that model from that date on is priced now, in the "
            "same transaction (the change record says how many entries).",
        ),
        "v1_prices_retrieve": ("Prices", "Get a price", "One price row by id."),
        "v1_prices_partial_update": ("Prices", "Edit a price", "Change any field. Compliance or admin role."),
        "v1_prices_destroy": (
            "Prices",
            "Remove a price",
            "Usage of that model is then priced by the previous row, if any. Compliance or admin role.",
        ),
        "v1_budgets_list": (
            "Budgets",
            "List budgets",
            "Each with its current period: spend so far (actual usage), percent of the amount, thresholds crossed.",
        ),
        "v1_budgets_create": (
            "Budgets",
            "Create a budget",
            "scope tenant (no template or tag), template (a template id) or tag (a template tag); period daily "
            "(UTC day) or monthly; amount_usd; thresholds in percent (default 50, 80, 100). Crossing a "
            "threshold (checked after each usage batch) raises one alert per period and a change record. "
            "Compliance or admin role.",
        ),
        "v1_budgets_retrieve": ("Budgets", "Get a budget", "With its current period and its newest alerts."),
        "v1_budgets_partial_update": (
            "Budgets",
            "Edit a budget",
            "Change any field; alerts already raised stay. Compliance or admin role.",
        ),
        "v1_budgets_destroy": ("Budgets", "Delete a budget", "Its alerts go with it. Compliance or admin role."),
        "v1_budgets_alerts_list": ("Budgets", "List a budget's alerts", "Thresholds crossed, newest first."),
        "v1_budget_alerts_acknowledge_create": (
            "Budgets",
            "Acknowledge a budget alert",
            "Stamps who and when (acknowledged_by, acknowledged_at) and records BUDGET_ALERT_ACKNOWLEDGED on the "
            "budget; the alert then leaves the Cost page's banner. Once only: an alert already acknowledged is a "
            "409 already_acknowledged. Compliance or admin role.",
        ),
    }
)

OPERATIONS.update(
    {
        "v1_notification_endpoints_list": (
            "Notifications",
            "List notification endpoints",
            "The tenant's webhook, Slack and email endpoints with their event filters and their newest delivery. "
            "Filter by kind and active, search by name or URL. Admin role (every operation here).",
        ),
        "v1_notification_endpoints_create": (
            "Notifications",
            "Create a notification endpoint",
            "kind webhook (a JSON POST signed per Standard Webhooks), slack (an incoming webhook URL) or email (to "
            "the tenant's active members holding email_role, approver by default); event_types empty: every type. "
            "The URL is checked: https outside DEBUG, no loopback, private or link-local address. The answer holds "
            "the signing secret, this once: store it. 409 when the name is taken.",
        ),
        "v1_notification_endpoints_retrieve": (
            "Notifications",
            "Get a notification endpoint",
            "Its settings and newest delivery; never its secret.",
        ),
        "v1_notification_endpoints_partial_update": (
            "Notifications",
            "Edit a notification endpoint",
            "Change its name, URL, role, event types, or pause it (active false). Queued deliveries go to it as it is "
            "when they are sent.",
        ),
        "v1_notification_endpoints_destroy": (
            "Notifications",
            "Delete a notification endpoint",
            "Its delivery log goes with it; events not delivered yet are not sent.",
        ),
        "v1_notification_endpoints_rotate_secret_create": (
            "Notifications",
            "Rotate an endpoint's signing secret",
            "A new secret, in this answer only. Until previous_secret_expires_at (24 hours) every request carries two "
            "signatures in webhook-signature, the new secret's and the previous one's, so the receiver switches "
            "without refusing an event.",
        ),
        "v1_notification_endpoints_test_create": (
            "Notifications",
            "Send a test event",
            "Queues an arm.test event for this endpoint only (also a paused one); 202 with its delivery, which the "
            "worker sends within a second. Follow it in GET /notification-deliveries/{id}/.",
        ),
        "v1_notification_deliveries_list": (
            "Notifications",
            "List deliveries",
            "One row per event and endpoint, newest first (cursor pagination): status (pending, failed: retried at "
            "next_attempt_at, succeeded, dead: given up), attempts, the last response code, latency and error. "
            "Filter by endpoint, status, event_type, since and until.",
        ),
        "v1_notification_deliveries_retrieve": (
            "Notifications",
            "Get a delivery",
            "With every attempt: when, how long, the receiver's status code or the error.",
        ),
        "v1_notification_deliveries_redeliver_create": (
            "Notifications",
            "Redeliver",
            "Queues the delivery again, now, with the same webhook-id (a receiver that has it drops it). 409 "
            "already_queued while it is pending or being sent.",
        ),
    }
)


# Component name -> its description in the reference. ``XRequest`` falls back to ``X``, ``PatchedXRequest`` to
# ``XRequest``'s (or ``X``'s) with "send only the fields to change"; pages of lists are described generically.
COMPONENTS: dict[str, str] = {
    "Endpoint": "A notification endpoint: a webhook, Slack incoming webhook or email to a role; the event types it "
    "receives (empty: all), whether it is active, and its newest delivery. Its secret is never shown again.",
    "EndpointSecret": "A notification endpoint with its signing secret (whsec_…), shown in this answer only.",
    "LastDelivery": "An endpoint's newest delivery: its status, when, and the receiver's last status code.",
    "Delivery": "One event sent to one endpoint: its status, attempts, next attempt, last response and error.",
    "DeliveryDetail": "A delivery with each of its attempts.",
    "DeliveryAttempt": "One try of a delivery: start, latency, the receiver's status code or the error, outcome.",
    "EventSummary": "The event delivered: its webhook-id (msg_…, kept on retries), type and time.",
    "ApiKey": "An API key: its name, roles, the instance it acts for (if bound) and when it was last used. The "
    "secret is never shown again.",
    "ApiKeyCreated": "A new API key with its secret in `key`: shown in this answer only, so store it now.",
    "ApiKeyRequest": "A new API key: a name, its roles (never more than yours) and, for a runtime key, the "
    "instance it acts for.",
    "Approval": "A request for a person to approve one tool call: what was asked, why, its status and who decided.",
    "Budget": "A spending budget for the tenant, a template or a tag, per UTC day or month, with its current "
    "period's spend.",
    "BudgetAlert": "A threshold a budget crossed in one period.",
    "BudgetDetail": "A budget with its current period, its newest alerts and its forecast.",
    "BudgetDetailRequest": "A budget: a name, its scope (tenant; template, with `template`; or tag, with `tag`), "
    "its period, its amount in USD and the alert thresholds in percent.",
    "BudgetPeriod": "Spent, limit and what is left, for a day or a month.",
    "BudgetStatus": "A budget's current period: its spend and the thresholds crossed.",
    "ChainVerification": "The result of verifying the audit chain: the range checked and the first broken "
    "record, if any.",
    "ChangeRecord": "One entry of the append-only audit trail: what changed, who changed it, and the hashes that "
    "chain it to the record before.",
    "CostForecast": "This UTC month's spend so far and its forecast, with the arithmetic used.",
    "CostGroup": "One group of a cost report (a template, a model…): its spend per bucket, its tokens and its "
    "allowed calls.",
    "CostReport": "Actual spend over a range of UTC days, grouped, and bucketed by day, week or month.",
    "DecideRequest": "An optional note, kept with the approval.",
    "Decision": "One evaluation from the decision log: the call, the decision, its reasons and the policy "
    "revision that made it.",
    "DecisionCounts": "How many decisions were ALLOW, DENY and NEEDS_APPROVAL.",
    "Environment": "A deployment target (dev, staging or prod): its tier decides which versions may be deployed there.",
    "Error": "Every error answer: a stable `code`, a `message` for people and, for invalid input, the messages "
    "per field in `errors`.",
    "EstimateRow": "One instance's estimated cost (sent with its evaluations) against its actual cost (its "
    "reported usage).",
    "EvaluateRequest": "A tool call to decide: the instance, the tool, its parameters, the data scopes it "
    "touches, its estimated cost and, to go through an approval, the approval's id.",
    "EvaluateResponse": "The decision on a tool call (ALLOW, DENY or NEEDS_APPROVAL, with the approval to wait "
    "for), its reasons and the policy revision that decided.",
    "Evaluation": "One evaluation result an evaluation harness recorded for a version.",
    "EvaluationRequest": "An evaluation result: the suite, PASS or FAIL, an optional score and details.",
    "Flip": "A replayed decision the proposed policy would decide differently.",
    "Forecast": "A budget period's spend so far, its run rate and forecast, and the dates it is expected to "
    "cross its amount.",
    "HeartbeatBatchResponse": "The heartbeat's time and each instance's result: ok, not_found or retired.",
    "HeartbeatBatchSchemaRequest": "Up to 1000 instance ids, and one optional status object for all of them.",
    "HeartbeatItem": "One instance's heartbeat result.",
    "HeartbeatRequest": "An optional small status object reported with the heartbeat.",
    "HeartbeatResponse": "When the instance was last seen alive, and its health.",
    "InclusionProof": "Proof that a change record is in a signed checkpoint: the record, its Merkle audit path "
    "and the checkpoint.",
    "Instance": "A deployment of a version to an environment on a provider: its lifecycle state, its policy and "
    "its health.",
    "InstanceRequest": "A deployment: the version, the environment and the provider, and optionally a name and a "
    "policy.",
    "PatchedInstanceUpdateRequest": "A new name for the instance, or the policy to attach (an id; null detaches "
    "it). Send only what changes.",
    "InstanceTransitionRequest": "The state to move the instance to, and why.",
    "Integrity": "The result of recomputing a version's genome hash: VERIFIED or TAMPERED, with both hashes.",
    "Lineage": "A version's ancestors (nearest first) and its direct children.",
    "Policy": "A policy envelope: autonomy tier, allowed and denied tools, data scopes, cost limits, approval "
    "timeout and per-tool risk overrides.",
    "PolicyRef": "The policy, and its revision, that decided.",
    "PatchedSimulateRequest": "A proposed change to the policy (any of its fields) and how many recent decisions "
    "to replay (`limit`).",
    "Price": "What a model costs from a date on, in USD per million input, cached input and output tokens.",
    "ProofRecord": "The change record exactly as it was hashed.",
    "Provider": "Where instances run: a local runtime, or a federated one reached through its federation_config.",
    "Reason": "Why: a stable code and a message.",
    "RuntimeBudget": "What is left of the policy's daily and monthly cost limits.",
    "RuntimeContext": "What a runtime needs about its instance: the instance, its version's tools, the attached "
    "policy (with what each tool gets now) and the budget left.",
    "RuntimeInstance": "The instance the runtime acts for.",
    "RuntimePolicy": "The attached policy, and what an evaluation answers for each tool right now.",
    "RuntimeTool": "A tool of the version's manifest, with the name to call it by.",
    "RuntimeVersion": "The version the instance runs, and its integrity.",
    "SignedCheckpoint": "A signed checkpoint of the audit chain, to verify with the public keys at "
    "/.well-known/arm-audit-keys.json (tenant_slug is informational: it is not signed).",
    "Simulation": "What the proposed policy change would do to the replayed decisions: the counts now and then, "
    "and the decisions that would flip.",
    "Template": "An agent family: a unique name, its owners and its tags, shared by all its versions.",
    "UnpricedModel": "A model with usage but no price yet.",
    "UsageBatchRequest": "Up to 1000 usage entries, each judged on its own.",
    "UsageBatchResult": "The counts, and one result per entry in order: accepted, duplicate, conflict or rejected.",
    "UsageEntry": "One ledger entry: a model call's tokens and cost.",
    "UsageEntryInRequest": "One model call: instance, time, provider, model, tokens, optionally its cost, and an "
    "idempotency key (unique per instance).",
    "UsageResult": "One entry's result: its id and cost when accepted, its code and message when refused.",
    "Version": "An immutable build of a template: its genome, the genome's SHA-256, its parent, its lifecycle "
    "state and its evaluation status.",
    "VersionDetail": "A version read on its own: its genome's hash is recomputed, with the result in `integrity`.",
    "VersionRequest": "A new build: the template, a label, the genome and, optionally, the parent version.",
    "VersionTransitionRequest": "The lifecycle state to move the version to, and why.",
    "_EnvironmentRef": "The environment an instance runs in.",
    "_ProviderRef": "The provider an instance runs on.",
}
PATCH_NOTE = " Send only the fields to change."
PAGE_DESCRIPTION = "One page of a list: `results`, and the links to the next and previous pages."


def component_description(name: str) -> str | None:
    """The reference's description of the component ``name`` (None: none written yet)."""
    if name in COMPONENTS:
        return COMPONENTS[name]
    if name.startswith("Paginated") and name.endswith("List"):
        return PAGE_DESCRIPTION
    if name.startswith("Patched") and name.endswith("Request"):
        base = component_description(name.removeprefix("Patched"))
        return base + PATCH_NOTE if base else None
    if name.endswith("Request"):
        return component_description(name.removesuffix("Request"))
    return None


def apply(operations: dict, components: dict) -> None:
    """Set tags, summaries, descriptions and examples on the generated operations, and the components'
    descriptions (an enum keeps its generated list of values; any other text, a serializer's docstring, goes)."""
    from arm import schema_examples  # the examples are needed only when a schema is generated

    missing = sorted(set(operations) - set(OPERATIONS))
    assert not missing, f"operations without API docs in arm/schema_docs.py: {missing}"
    for operation_id, operation in operations.items():
        tag, summary, description = OPERATIONS[operation_id]
        operation["tags"] = [tag]
        operation["summary"] = summary
        operation["description"] = description
    schema_examples.apply(operations)
    for name, component in components.items():
        if "enum" in component:
            continue
        description = component_description(name)
        if description:
            component["description"] = description
        else:
            component.pop("description", None)
