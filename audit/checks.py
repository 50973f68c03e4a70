"""``manage.py check``: every model of ARM's own apps is either recorded or listed as unrecorded with a
reason (``audit.coverage``), and each recorded one can be recorded."""

from django.apps import apps
from django.core.checks import Error, register


@register()
def check_audit_coverage(app_configs=None, **kwargs):
    from arm.models import RecordedModel
    from audit.choices import EventType
    from audit.coverage import RECORDED, UNRECORDED, domain_models

    errors = []
    labels = {model._meta.label for model in domain_models()}
    for label in sorted(labels - RECORDED.keys() - UNRECORDED.keys()):
        errors.append(
            Error(
                f"{label} is neither recorded nor listed as unrecorded.",
                hint="Add it to RECORDED (its saves write change records) or UNRECORDED (with the reason) "
                "in audit/coverage.py.",
                id="audit.E001",
            )
        )
    for label in sorted(RECORDED.keys() & UNRECORDED.keys()):
        errors.append(Error(f"{label} is both recorded and unrecorded in audit/coverage.py.", id="audit.E002"))
    for label in sorted((RECORDED.keys() | UNRECORDED.keys()) - labels):
        errors.append(Error(f"audit/coverage.py names {label}, which is not a model of ARM's apps.", id="audit.E003"))
    for label, recorded in sorted(RECORDED.items()):
        if label not in labels:
            continue
        model = apps.get_model(label)
        if not issubclass(model, RecordedModel):
            errors.append(
                Error(
                    f"{label} is recorded but does not subclass arm.models.RecordedModel.",
                    hint="Its save() must run in a transaction so the row and its record commit together.",
                    id="audit.E004",
                )
            )
        events = ["CREATED", "CHANGED"] + ([] if recorded.delete_refused else ["DELETED"])
        missing = [recorded.event(e) for e in events if recorded.event(e) not in EventType.values]
        if missing:
            errors.append(
                Error(
                    f"{label} is recorded but EventType lacks {', '.join(missing)}.",
                    hint="Add them to audit/choices.py (and make the migration).",
                    id="audit.E005",
                )
            )
        fields = {f.name for f in model._meta.concrete_fields}
        unknown = [n for n in (*recorded.name_only, *recorded.unrecorded_columns) if n not in fields]
        if recorded.tenant and recorded.tenant not in fields:
            unknown.append(recorded.tenant)
        if unknown:
            errors.append(
                Error(f"audit/coverage.py names unknown fields of {label}: {', '.join(unknown)}.", id="audit.E006")
            )
        if model._meta.many_to_many:
            errors.append(
                Error(
                    f"{label} has many-to-many fields, which audit.recording does not record yet.",
                    hint="Connect m2m_changed in audit/recording.py before adding one.",
                    id="audit.E007",
                )
            )
    return errors


@register()
def check_audit_keys(app_configs=None, **kwargs):
    """The audit signing keys load (``audit.keys``): a typo in a key path fails ``manage.py check`` and the
    deploy, not the first checkpoint at night."""
    from django.core.exceptions import ImproperlyConfigured

    from audit.keys import configured_keyring

    try:
        configured_keyring()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="See README, 'Auditors: proving the audit trail'.", id="audit.E008")]
    return []
