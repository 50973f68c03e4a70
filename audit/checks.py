"""``manage.py check``: every model of ARM's own apps declares whether its writes are recorded
(``audit = Recorded(...)`` or ``Unrecorded("why")``, ``audit.coverage``), and each declaration holds."""

from django.core.checks import Error, register


@register()
def check_audit_coverage(app_configs=None, **kwargs):
    from arm.models import Recorded, RecordedModel, Unrecorded
    from audit.choices import ALIASES
    from audit.coverage import declaration, domain_models

    errors, owners = [], {}
    for model in sorted(domain_models(), key=lambda m: m._meta.label):
        label, declared = model._meta.label, declaration(model)
        if declared is None:
            errors.append(
                Error(
                    f"{label} does not declare whether its writes are recorded.",
                    hint="Give it audit = Recorded(...) (a RecordedModel) or audit = Unrecorded('why') (arm.models).",
                    id="audit.E001",
                )
            )
            continue
        if isinstance(declared, Unrecorded) and (issubclass(model, RecordedModel) or len(declared.reason) < 20):
            errors.append(
                Error(f"{label}: say why it writes no record, and do not make it a RecordedModel.", id="audit.E002")
            )
        names = list(declared.events)
        if isinstance(declared, Recorded):
            names += declared.generic_events
            if not issubclass(model, RecordedModel):
                errors.append(
                    Error(
                        f"{label} is recorded but does not subclass arm.models.RecordedModel.",
                        hint="Its save() must run in a transaction so the row and its record commit together.",
                        id="audit.E004",
                    )
                )
            fields = {f.name for f in model._meta.concrete_fields}
            unknown = [n for n in (*declared.name_only, *declared.unrecorded_columns) if n not in fields]
            if declared.tenant and declared.tenant not in fields:
                unknown.append(declared.tenant)
            if unknown:
                errors.append(
                    Error(f"{label}'s audit declaration names unknown fields: {', '.join(unknown)}.", id="audit.E006")
                )
            if model._meta.many_to_many:
                errors.append(
                    Error(
                        f"{label} has many-to-many fields, which audit.recording does not record yet.",
                        hint="Connect m2m_changed in audit/recording.py before adding one.",
                        id="audit.E007",
                    )
                )
        for name in names:
            owner = owners.setdefault(name, label)
            if name in ALIASES or owner != label:
                why = f"the old name of {ALIASES[name]}" if name in ALIASES else f"declared by {owner} too"
                errors.append(Error(f"{label} declares the event {name}, {why}.", id="audit.E005"))
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
