"""Policy editor form: shapes what was typed (one pattern per line, ``tool = risk`` overrides); the
envelope's own validation (via ``policy_create`` / ``policy_update``) decides what is acceptable."""

from __future__ import annotations

import re

from django import forms

from arm.forms import ServiceForm, same
from arm.ui import StyledForm
from policies.engine import TIER_DESCRIPTIONS
from policies.models import PolicyEnvelope
from registry import forms as registry_forms
from registry.choices import Risk

SPLIT_RE = re.compile(r"[\s,]+")
TIER_NAMES = {0: "Observe", 1: "Supervised", 2: "Assisted", 3: "Guarded", 4: "Trusted", 5: "Autonomous"}


def patterns(value: str) -> list[str]:
    return [p for p in SPLIT_RE.split(value or "") if p]


class PolicyForm(ServiceForm, StyledForm, forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    autonomy_tier = forms.TypedChoiceField(
        label="Autonomy tier",
        coerce=int,
        choices=[(t, f"{t} · {TIER_NAMES[t]}") for t in TIER_DESCRIPTIONS],
        widget=forms.RadioSelect,
        initial=1,
    )
    allowed_tools = forms.CharField(
        label="Allowed tools",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "mono"}),
        help_text="Glob patterns, one per line (crm.*). * allows all; empty allows none.",
    )
    denied_tools = forms.CharField(
        label="Denied tools",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "mono"}),
        help_text="Win over the allowed patterns (email.* denies every email tool).",
    )
    data_scopes = forms.CharField(
        label="Data scopes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "mono"}),
        help_text="Scopes the agent may touch, e.g. crm:read, tickets:*.",
    )
    cost_limit_daily_usd = forms.DecimalField(
        label="Daily cost limit (USD)",
        required=False,
        min_value=0,
        decimal_places=2,
        max_digits=12,
        help_text="Empty: no daily limit.",
    )
    cost_limit_monthly_usd = forms.DecimalField(
        label="Monthly cost limit (USD)",
        required=False,
        min_value=0,
        decimal_places=2,
        max_digits=12,
        help_text="Empty: no monthly limit.",
    )
    approval_timeout_seconds = forms.IntegerField(
        label="Approval timeout (seconds)",
        min_value=1,
        initial=3600,
        help_text="How long an approval request waits before it expires (auto-deny).",
    )
    tool_risk_overrides = forms.CharField(
        label="Risk overrides",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "mono"}),
        help_text="One per line: tool.name = low | medium | high | critical. Overrides the manifest's risk.",
    )

    @classmethod
    def initial_for(cls, policy) -> dict:
        return {
            "name": policy.name,
            "description": policy.description,
            "autonomy_tier": policy.autonomy_tier,
            "allowed_tools": "\n".join(policy.allowed_tools or []),
            "denied_tools": "\n".join(policy.denied_tools or []),
            "data_scopes": "\n".join(policy.data_scopes or []),
            "cost_limit_daily_usd": policy.cost_limit_daily_usd,
            "cost_limit_monthly_usd": policy.cost_limit_monthly_usd,
            "approval_timeout_seconds": policy.approval_timeout_seconds,
            "tool_risk_overrides": "\n".join(f"{k} = {v}" for k, v in (policy.tool_risk_overrides or {}).items()),
        }

    def clean_tool_risk_overrides(self) -> dict:
        overrides = {}
        for number, line in enumerate((self.cleaned_data.get("tool_risk_overrides") or "").splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            tool, sep, risk = line.partition("=")
            if not sep:
                tool, _, risk = line.partition(":")
            tool, risk = tool.strip(), risk.strip().lower()
            if not tool or risk not in Risk.values:
                raise forms.ValidationError(
                    f"Line {number}: write 'tool.name = risk' with risk one of {', '.join(Risk.values)}."
                )
            overrides[tool] = risk
        return overrides

    service_fields = {
        "name": str.strip,
        "description": same,
        "autonomy_tier": same,
        "allowed_tools": patterns,
        "denied_tools": patterns,
        "data_scopes": patterns,
        "cost_limit_daily_usd": same,
        "cost_limit_monthly_usd": same,
        "approval_timeout_seconds": same,
        "tool_risk_overrides": same,
    }


class InstanceForm(registry_forms.InstanceForm):
    """Registry's New instance form with the policy the instance starts under (``ui:instance_create``)."""

    service_fields = {**registry_forms.InstanceForm.service_fields, "policy": same}

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, tenant=tenant, **kwargs)
        self.fields["policy"] = forms.ModelChoiceField(
            queryset=PolicyEnvelope.objects.filter(tenant=tenant).order_by("name"),
            required=False,
            empty_label="No policy (every call is denied)",
            help_text="Evaluation fails closed without a policy.",
        )
        self.order_fields(["version", "environment", "provider", "policy", "name"])
