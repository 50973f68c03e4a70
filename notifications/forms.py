"""The endpoint modal of the Notifications page; ``notifications.services`` decides what is acceptable
(the model's ``clean``: the URL's safety, the kind's fields, known event types)."""

from django import forms

from arm.forms import ServiceForm, same
from arm.ui import StyledForm
from notifications import catalogue
from notifications.choices import EndpointKind
from notifications.models import URL_MAX_LENGTH
from tenancy.choices import MEMBER_ROLES, Role


def event_type_choices() -> list[tuple[str, str]]:
    """The catalogue's types, labelled with their title where the producer registered one."""
    choices = []
    for name in catalogue.EVENT_TYPES:
        spec = catalogue.CATALOGUE.get(name)
        choices.append((name, f"{name} · {spec.title}" if spec is not None and spec.title else name))
    return choices


class EndpointForm(ServiceForm, StyledForm, forms.Form):
    """An endpoint as ``endpoint_create``/``endpoint_update`` take it. No event type ticked: every type."""

    name = forms.CharField(max_length=200, help_text="Who or what it reaches, e.g. ci-approvals or #oncall.")
    kind = forms.ChoiceField(
        choices=EndpointKind.choices,
        initial=EndpointKind.WEBHOOK,
        help_text="Webhook: a JSON POST signed per Standard Webhooks. Slack: an incoming webhook URL. Email: the "
        "members holding a role.",
    )
    url = forms.CharField(
        label="URL",
        required=False,
        max_length=URL_MAX_LENGTH,
        help_text="https:// (webhook or Slack). Empty for email.",
    )
    email_role = forms.ChoiceField(
        label="Email to",
        choices=[(r, r) for r in MEMBER_ROLES],
        initial=Role.APPROVER,
        required=False,
        help_text="For email: the active members holding this role (approvers by default). A request's "
        "requester is never mailed their own approval.",
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=event_type_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event type, including ones added later.",
    )
    active = forms.BooleanField(required=False, initial=True, help_text="A paused endpoint receives nothing.")

    @classmethod
    def initial_for(cls, endpoint) -> dict:
        return {
            "name": endpoint.name,
            "kind": endpoint.kind,
            "url": endpoint.url,
            "email_role": endpoint.email_role or Role.APPROVER,
            "event_types": list(endpoint.event_types),
            "active": endpoint.active,
        }

    def clean(self):
        cleaned = super().clean()
        # The fields of the other kinds are left out, so switching kind in the modal never trips on them.
        if cleaned.get("kind") == EndpointKind.EMAIL:
            cleaned["url"] = ""
        elif "kind" in cleaned:
            cleaned["email_role"] = Role.APPROVER
        return cleaned

    service_fields = {
        "name": str.strip,
        "kind": same,
        "url": str.strip,
        "email_role": same,
        "event_types": list,
        "active": same,
    }
