"""UI forms for the registry. They parse and shape what the operator typed; the services validate and
write (``template_create``, ``version_create``, ``instance_create`` …), and their errors are put back
next to the fields (``arm.forms.submit``)."""

from __future__ import annotations

import json
import re

from django import forms
from django.core.validators import URLValidator

from arm.forms import ServiceForm, same
from arm.jsonutil import loads_strict
from arm.ui import StyledForm
from arm.validators import as_uuid
from registry.choices import (
    DEFAULT_RISK,
    DEPLOYABLE_STATES,
    EnvironmentTier,
    EvalResultStatus,
    InstanceState,
    ProviderType,
    VersionState,
)
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, Provider
from registry.selectors import deployable_version_choices
from registry.services import deployment_gate_error
from tenancy import views as tenancy_views

SPLIT_RE = re.compile(r"[\s,]+")


def split_list(value: str) -> list[str]:
    return [item for item in SPLIT_RE.split(value or "") if item]


class TemplateForm(ServiceForm, StyledForm, forms.Form):
    name = forms.CharField(max_length=200, help_text="Unique in the tenant, e.g. support-triage.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    owners = forms.CharField(
        max_length=2000, help_text="Emails or usernames, separated by commas or spaces. At least one."
    )
    tags = forms.CharField(
        required=False, max_length=1000, help_text="Short slugs (lowercase, digits, dashes), comma-separated."
    )

    @classmethod
    def initial_for(cls, template: AgentTemplate) -> dict:
        return {
            "name": template.name,
            "description": template.description,
            "owners": ", ".join(template.owners or []),
            "tags": ", ".join(template.tags or []),
        }

    service_fields = {"name": str.strip, "description": same, "owners": split_list, "tags": split_list}


class ToolRow:
    """One row of the structured tool-manifest editor (kept as typed when the form comes back)."""

    def __init__(self, name="", version="", risk=DEFAULT_RISK, scopes=""):
        self.name, self.version, self.risk, self.scopes = name, version, risk, scopes

    def as_tool(self) -> dict:
        tool = {"name": self.name.strip(), "risk": self.risk or DEFAULT_RISK}
        if self.version.strip():
            tool["version"] = self.version.strip()
        scopes = split_list(self.scopes)
        if scopes:
            tool["data_scopes"] = scopes
        return tool


GENOME_FIELD_FOR_PATH = (
    ("model_config.provider", "model_provider"),
    ("model_config.name", "model_name"),
    ("model_config.parameters", "model_parameters"),
    ("model_config", "model_name"),
    ("prompt_bundle_hash", "prompt_bundle_hash"),
    ("tool_manifest", "tools"),
    ("provenance", "provenance_source"),
)


class VersionForm(StyledForm, forms.Form):
    """Structured genome input (model, parameters, prompt hash, tool rows, provenance) or raw JSON."""

    template = forms.ModelChoiceField(queryset=AgentTemplate.objects.none(), empty_label="Choose a template…")
    version_label = forms.CharField(max_length=100, help_text="Unique within the template, e.g. 1.4.0.")
    parent = forms.ModelChoiceField(
        queryset=AgentVersion.objects.none(),
        required=False,
        empty_label="No parent (a new lineage)",
        help_text="Only versions of the chosen template.",
    )
    genome_mode = forms.ChoiceField(choices=[("structured", "Structured"), ("raw", "Raw JSON")], initial="structured")
    # Not required as form fields (the raw-JSON tab does without them), but the genome needs them: the
    # template marks them required (``genome_required``) and errors name them by these labels.
    model_provider = forms.CharField(
        required=False,
        max_length=100,
        initial="openai",
        label="Model provider",
        widget=forms.TextInput(attrs={"placeholder": "e.g. openai"}),
    )
    model_name = forms.CharField(
        required=False,
        max_length=200,
        label="Model name",
        widget=forms.TextInput(attrs={"placeholder": "e.g. gpt-5"}),
    )
    model_parameters = forms.CharField(
        required=False,
        label="Model parameters (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "placeholder": 'e.g. {"temperature": 0.2}'}),
        initial="{}",
        help_text="A JSON object.",
    )
    prompt_bundle_hash = forms.CharField(
        required=False,
        max_length=80,
        label="Prompt bundle hash",
        help_text="sha256: followed by 64 lowercase hex characters.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. sha256:9f86d08…", "class": "mono"}),
    )
    tools = forms.CharField(required=False, label="Tool manifest", widget=forms.HiddenInput)  # tool-row errors
    provenance_source = forms.CharField(
        required=False,
        max_length=500,
        label="Source",
        widget=forms.TextInput(attrs={"placeholder": "e.g. git+https://git.example.com/agents.git"}),
    )
    provenance_commit = forms.CharField(
        required=False, max_length=100, label="Commit", widget=forms.TextInput(attrs={"placeholder": "e.g. 4f2c1ab"})
    )
    provenance_built_by = forms.CharField(
        required=False, max_length=100, label="Built by", widget=forms.TextInput(attrs={"placeholder": "e.g. ci"})
    )
    genome_json = forms.CharField(
        required=False, label="Genome JSON", widget=forms.Textarea(attrs={"rows": 16, "class": "mono"})
    )
    genome_required = ("model_provider", "model_name", "prompt_bundle_hash")

    def __init__(self, *args, tenant, template_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["template"].queryset = AgentTemplate.objects.filter(tenant=tenant).order_by("name")
        chosen = self.data.get("template") if self.is_bound else (template_id or self.initial.get("template"))
        self.fields["parent"].queryset = parent_choices(tenant, chosen if as_uuid(chosen) else None)
        # Same wording as the htmx-loaded options, and no query per option for the template name.
        self.fields["parent"].label_from_instance = lambda v: f"@{v.version_label} ({v.lifecycle_state.lower()})"
        self.tool_rows = self._tool_rows()
        self.genome = None

    def _tool_rows(self) -> list[ToolRow]:
        if not self.is_bound:
            return [ToolRow(**row) for row in self.initial.get("tool_rows", [])]
        names = self.data.getlist("tool_name")
        versions = self.data.getlist("tool_version")
        risks = self.data.getlist("tool_risk")
        scopes = self.data.getlist("tool_scopes")
        rows = []
        for i, name in enumerate(names):
            row = ToolRow(
                name,
                versions[i] if i < len(versions) else "",
                risks[i] if i < len(risks) else DEFAULT_RISK,
                scopes[i] if i < len(scopes) else "",
            )
            rows.append(row)
        return rows

    def clean(self):
        data = super().clean()
        if data.get("genome_mode") == "raw":
            text = (data.get("genome_json") or "").strip()
            if not text:
                self.add_error("genome_json", "Paste the genome as a JSON object.")
                return data
            try:
                self.genome = loads_strict(text)
            except ValueError as exc:
                self.add_error("genome_json", f"Not valid JSON: {exc}.")
            return data
        try:
            parameters = loads_strict(data.get("model_parameters") or "{}")
        except ValueError as exc:
            self.add_error("model_parameters", f"Not valid JSON: {exc}.")
            return data
        model = {"provider": (data.get("model_provider") or "").strip(), "name": (data.get("model_name") or "").strip()}
        if parameters != {} or (data.get("model_parameters") or "").strip() not in ("", "{}"):
            model["parameters"] = parameters
        genome = {
            "model_config": model,
            "prompt_bundle_hash": (data.get("prompt_bundle_hash") or "").strip(),
            "tool_manifest": [row.as_tool() for row in self.tool_rows if row.name.strip() or row.version.strip()],
        }
        provenance = {
            key: (data.get(f"provenance_{key}") or "").strip()
            for key in ("source", "commit", "built_by")
            if (data.get(f"provenance_{key}") or "").strip()
        }
        if provenance:
            genome["provenance"] = provenance
        self.genome = genome
        return data

    def genome_error_message(self, message: str) -> str:
        """A genome rule's message in the words of the structured form: "Prompt bundle hash is required…",
        "Tool 2 name 'crm.lookup' is declared twice…" instead of JSON paths (raw mode keeps the paths, which
        are what the operator typed there)."""
        if self.cleaned_data.get("genome_mode") == "raw":
            return message
        message = message.removeprefix("genome.")
        match = re.match(r"tool_manifest\[(\d+)\]\.?(\w*)", message)
        if match:
            index, key = int(match.group(1)), match.group(2)
            label = f"Tool {index + 1}" + (f" {key.replace('_', ' ')}" if key else "")
            return label + message[match.end() :]
        for path, field in (
            ("model_config.provider", "model_provider"),
            ("model_config.name", "model_name"),
            ("model_config.parameters", "model_parameters"),
            ("prompt_bundle_hash", "prompt_bundle_hash"),
            ("tool_manifest", "tools"),
            ("provenance", "provenance_source"),
            ("model_config", "model_name"),
        ):
            if message.startswith(path):
                label = "Model" if path == "model_config" else "Provenance" if path == "provenance" else None
                return (label or str(self.fields[field].label)) + message[len(path) :]
        return message

    def genome_error_field(self, message: str) -> str | None:
        """Which input a genome error belongs next to (raw mode: the JSON box)."""
        if self.cleaned_data.get("genome_mode") == "raw":
            return "genome_json"
        for prefix, field in GENOME_FIELD_FOR_PATH:
            if message.startswith(prefix) or message.startswith(f"genome.{prefix}"):
                return field
        return None


def parent_choices(tenant, template_id):
    if not template_id:
        return AgentVersion.objects.none()
    return (
        AgentVersion.objects.filter(tenant=tenant, template_id=template_id)
        .only("id", "version_label", "lifecycle_state", "template_id", "created_at")
        .order_by("-created_at")
    )


def version_options(tenant, search: str, chosen) -> tuple[list, bool]:
    """The create-instance form's version <option>s: a bounded search, with the chosen version kept first
    when the search does not find it (so a re-rendered form never loses the choice)."""
    options, more = deployable_version_choices(tenant, search)
    if chosen is not None and all(v.pk != chosen.pk for v in options):
        options = [chosen, *options]
    return options, more


class InstanceForm(ServiceForm, StyledForm, forms.Form):
    """Only environments the chosen version may deploy to are offered (the service re-checks). The policy
    the instance starts under is chosen in ``policies.forms.InstanceForm`` (the binding is policies')."""

    service_fields = {"version": same, "environment": same, "provider": same, "name": same}

    version = forms.ModelChoiceField(queryset=AgentVersion.objects.none(), empty_label="Choose a version…")
    environment = forms.ModelChoiceField(queryset=Environment.objects.none(), empty_label="Choose an environment…")
    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), empty_label="Choose a provider…")
    name = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        # Validation looks the chosen id up in this queryset; the page only ever lists ``version_options``
        # (a bounded search, ``selectors.deployable_version_choices``), never the whole registry.
        self.fields["version"].queryset = AgentVersion.objects.filter(tenant=tenant).exclude(
            lifecycle_state__in=[VersionState.DEPRECATED, VersionState.RETIRED]
        )
        self.fields["provider"].queryset = Provider.objects.filter(tenant=tenant).order_by("name")
        version_id = self.data.get("version") if self.is_bound else self.initial.get("version")
        self.chosen_version = None
        if version_id:
            self.chosen_version = (
                AgentVersion.objects.filter(tenant=tenant, pk=version_id).select_related("template").first()
                if as_uuid(version_id)
                else None
            )
        search = (self.data.get("version_search") if self.is_bound else self.initial.get("version_search")) or ""
        self.version_search = search
        self.version_options, self.more_versions = version_options(tenant, search, self.chosen_version)
        envs = list(Environment.objects.filter(tenant=tenant).order_by("name"))
        self.blocked_environments = []
        if self.chosen_version is not None:
            allowed = []
            for env in envs:
                reason = deployment_gate_error(self.chosen_version, env)
                if reason:
                    self.blocked_environments.append((env, reason))
                else:
                    allowed.append(env.pk)
            self.fields["environment"].queryset = Environment.objects.filter(tenant=tenant, pk__in=allowed)
        else:
            self.fields["environment"].queryset = Environment.objects.none()


def _http_url(value: str) -> str:
    value = (value or "").strip()
    if value:
        try:
            URLValidator(schemes=["http", "https"])(value)
        except forms.ValidationError as exc:
            raise forms.ValidationError("Enter a full http(s) URL, e.g. https://ci.example.com/runs/42.") from exc
    return value


def _json_object(value: str, what: str) -> dict:
    """Parse a JSON textarea: blank is ``{}``, anything but an object is an error on the field."""
    text = (value or "").strip()
    if not text:
        return {}
    try:
        parsed = loads_strict(text)
    except ValueError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc}.") from exc
    if not isinstance(parsed, dict):
        raise forms.ValidationError(f"{what} must be a JSON object ({{...}}), not {type(parsed).__name__}.")
    return parsed


def _json_text(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value else ""


class EvaluationForm(StyledForm, forms.Form):
    """What an evaluation harness would post to /api/v1/versions/<id>/evaluations/, typed by a person.
    Notes and the run link have no model field: they go into ``details`` (``details_data``)."""

    suite = forms.CharField(max_length=200, help_text="The evaluation suite, e.g. regression or safety-redteam.")
    status = forms.ChoiceField(
        choices=EvalResultStatus.choices,
        widget=forms.RadioSelect,
        help_text="The version's eval status becomes this (the latest result wins).",
    )
    score = forms.FloatField(required=False, help_text="Optional, any number (e.g. 0.93).")
    run_url = forms.CharField(
        required=False,
        max_length=2000,
        label="Link to the run",
        help_text="Optional: the harness or CI run (http or https).",
    )
    notes = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_suite(self):
        suite = self.cleaned_data["suite"].strip()
        if not suite:
            raise forms.ValidationError("Name the suite.")
        return suite

    def clean_run_url(self):
        return _http_url(self.cleaned_data.get("run_url", ""))

    def details_data(self) -> dict:
        data = self.cleaned_data
        details = {}
        if (data.get("notes") or "").strip():
            details["notes"] = data["notes"].strip()
        if data.get("run_url"):
            details["run_url"] = data["run_url"]
        return details


def gate_text(tier: str) -> str:
    """The deployment gate of a tier in words (the same rule as ``services.deployment_gate_error``)."""
    allowed = DEPLOYABLE_STATES[tier]
    if len(allowed) == 1:
        return f"{next(iter(allowed))} versions only"
    if len(allowed) < 3:
        return " or ".join(s for s in VersionState.values if s in allowed)  # lifecycle order
    return "any state but DEPRECATED or RETIRED"


TIER_GATES = [(tier.value, tier.label, gate_text(tier)) for tier in EnvironmentTier]


class EnvironmentForm(ServiceForm, StyledForm, forms.Form):
    name = forms.CharField(max_length=100, help_text="Unique in the tenant, e.g. prod-eu.")
    tier = forms.ChoiceField(choices=EnvironmentTier.choices)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    config = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "mono", "spellcheck": "false"}),
        help_text="A JSON object (blank = {}).",
    )

    @classmethod
    def initial_for(cls, env) -> dict:
        return {"name": env.name, "tier": env.tier, "description": env.description, "config": _json_text(env.config)}

    def clean_config(self):
        return _json_object(self.cleaned_data.get("config"), "The config")

    service_fields = {"name": str.strip, "tier": same, "description": same, "config": same}


class ProviderForm(ServiceForm, StyledForm, forms.Form):
    name = forms.CharField(max_length=100, help_text="Unique in the tenant, e.g. k8s-eu or partner-cloud.")
    type = forms.ChoiceField(
        choices=ProviderType.choices,
        help_text="Local: ARM's own runtimes. Federated: another platform runs the instances and needs its "
        "federation config.",
    )
    health_endpoint = forms.CharField(
        required=False,
        max_length=500,
        help_text="Optional http(s) URL the provider answers health checks on; the worker polls it, and new "
        "deployments to a provider that answers wrong are refused.",
    )
    health_expected_status = forms.IntegerField(
        label="Expected status",
        required=False,
        min_value=100,
        max_value=599,
        initial=200,
        help_text="The status code a healthy provider answers.",
    )
    health_expected_body = forms.CharField(
        label="Expected text",
        required=False,
        max_length=200,
        help_text="Optional text a healthy answer contains, e.g. ok.",
    )
    health_interval_seconds = forms.IntegerField(
        label="Poll every (s)",
        required=False,
        min_value=5,
        max_value=86400,
        initial=60,
        help_text="Seconds between polls (5 to 86,400).",
    )
    health_timeout_seconds = forms.IntegerField(
        label="Timeout (s)",
        required=False,
        min_value=1,
        max_value=30,
        initial=5,
        help_text="Seconds to wait for the answer (1 to 30).",
    )
    federation_config = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
        help_text="A JSON object; required (non-empty) for a federated provider: how ARM reaches it, e.g. "
        '{"endpoint": "https://partner.example.com/arm", "region": "eu-west-1"}. Blank for local.',
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    @classmethod
    def initial_for(cls, provider) -> dict:
        return {
            "name": provider.name,
            "type": provider.type,
            "health_endpoint": provider.health_endpoint,
            "health_expected_status": provider.health_expected_status,
            "health_expected_body": provider.health_expected_body,
            "health_interval_seconds": provider.health_interval_seconds,
            "health_timeout_seconds": provider.health_timeout_seconds,
            "federation_config": _json_text(provider.federation_config),
            "description": provider.description,
        }

    def clean_health_endpoint(self):
        return _http_url(self.cleaned_data.get("health_endpoint", ""))

    def clean_federation_config(self):
        return _json_object(self.cleaned_data.get("federation_config"), "The federation config")

    service_fields = {
        "name": str.strip,
        "type": same,
        "health_endpoint": same,
        # Left empty: the model's default (a form posted without them, e.g. by an older page, still saves).
        "health_expected_status": lambda v: 200 if v is None else v,
        "health_expected_body": str.strip,
        "health_interval_seconds": lambda v: 60 if v is None else v,
        "health_timeout_seconds": lambda v: 5 if v is None else v,
        "federation_config": same,
        "description": same,
    }


class ApiKeyForm(tenancy_views.ApiKeyForm):
    """The API keys page's form with the instance a key is bound to (``registry.InstanceKey``)."""

    instance = forms.ModelChoiceField(
        queryset=AgentInstance.objects.none(),
        required=False,
        empty_label="Any instance (not bound)",
        help_text="A bound key may heartbeat and evaluate only for this instance.",
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, tenant=tenant, **kwargs)
        self.fields["instance"].queryset = (
            AgentInstance.objects.filter(tenant=tenant).exclude(state=InstanceState.RETIRED).order_by("name")
        )
