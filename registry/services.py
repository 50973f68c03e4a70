"""Every write to the registry. API views, UI views, admin actions and commands call these, so each rule
is decided here once. Each service runs in one transaction with its change record: the record of each
save (``audit.recording``), which the service annotates with its event, reason and actor (``annotate``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from arm.errors import Conflict, DomainError, InvalidTransition, NotFound
from arm.recording import annotate
from arm.writes import save, update, validate, validate_given
from audit.choices import EventType
from audit.recording import recorded_update
from audit.services import record_change
from registry import sql
from registry.choices import (
    DEPLOYABLE_STATES,
    EvalStatus,
    InstanceState,
    IntegrityStatus,
    VersionState,
)
from registry.genome import CanonicalDict, genome_hash, hash_canonical, is_json_text, validate_genome
from registry.health import provider_deploy_error
from registry.models import (
    AgentInstance,
    AgentTemplate,
    AgentVersion,
    Environment,
    EvaluationResult,
    InstanceKey,
    Provider,
    goes_live,
)
from tenancy import services as tenancy_services
from tenancy.choices import Role
from tenancy.context import Actor, current_actor
from tenancy.permissions import four_eyes_error, is_same_principal, require_roles

OPERATOR_ROLES = (Role.OPERATOR,)


def _recorded(actor):
    """The ``record`` of ``arm.writes.update``: the save's ``<MODEL>_CHANGED`` record by ``actor``, nothing
    written when no field changed."""

    def record(obj, before: dict, after: dict):
        return annotate(obj, actor=actor) if obj.changed_fields() else None

    return record


# ---------------------------------------------------------------- environments and providers

ENVIRONMENT_FIELDS = ("name", "tier", "description", "config")
PROVIDER_FIELDS = (
    "name",
    "type",
    "health_endpoint",
    "health_expected_status",
    "health_expected_body",
    "health_interval_seconds",
    "health_timeout_seconds",
    "federation_config",
    "description",
)


def _create(model, *, what: str, tenant, actor: Actor | None, data: dict, fields, pk=None, **extra):
    """The one create path of the registry's editable objects (environments, providers, templates):
    operator role, the given ``fields`` only, every validation error at once (``arm.writes.validate``), a
    unique-name race settled by the database, and the ``<MODEL>_CREATED`` record with the fields as saved,
    in one transaction. ``pk`` fixes the id (the demo's well-known objects); by default it is random."""
    actor = actor or current_actor()
    require_roles(actor, OPERATOR_ROLES, f"Creating {what}")
    if pk is not None:
        extra["pk"] = pk
    with transaction.atomic():
        obj = model(tenant=tenant, **extra, **{k: v for k, v in data.items() if k in fields})
        validate(obj)
        with annotate(obj, actor=actor):
            save(obj)
    return obj


def environment_create(*, tenant, actor: Actor | None = None, pk=None, **data) -> Environment:
    return _create(
        Environment,
        what="an environment",
        tenant=tenant,
        actor=actor,
        data=data,
        fields=ENVIRONMENT_FIELDS,
        pk=pk,
    )


def environment_update(*, environment: Environment, actor: Actor | None = None, **data) -> Environment:
    """Edit an environment. Changing its tier must not smuggle instances past the deployment gate: every
    live instance's version must be deployable at the new tier (checked under a lock on the row)."""
    with transaction.atomic():
        environment = Environment.objects.select_for_update().get(pk=environment.pk)
        new_tier = data.get("tier", environment.tier)
        if new_tier != environment.tier and new_tier in DEPLOYABLE_STATES:
            blocked = (
                AgentInstance.objects.filter(environment=environment)
                .exclude(state=InstanceState.RETIRED)
                .exclude(version__lifecycle_state__in=DEPLOYABLE_STATES[new_tier])
                .select_related("version__template")
            )
            first = blocked.first()
            if first is not None:
                raise Conflict(
                    f"Cannot make environment {environment.name} {new_tier}: {blocked.count()} live instance(s) "
                    f"run versions that {new_tier} does not accept (e.g. {first.version} is "
                    f"{first.version.lifecycle_state}).",
                    code="deployment_gate",
                )
        return _update(environment, data, ENVIRONMENT_FIELDS, actor)


def provider_create(*, tenant, actor: Actor | None = None, pk=None, **data) -> Provider:
    return _create(
        Provider,
        what="a provider",
        tenant=tenant,
        actor=actor,
        data=data,
        fields=PROVIDER_FIELDS,
        pk=pk,
    )


def provider_update(*, provider: Provider, actor: Actor | None = None, **data) -> Provider:
    return _update(provider, data, PROVIDER_FIELDS, actor)


def _update(obj, data: dict, fields, actor):
    actor = actor or current_actor()
    require_roles(actor, OPERATOR_ROLES, f"Editing a {obj._meta.verbose_name}")
    return update(obj, data, fields, record=_recorded(actor))


def _check(model, fields, *, tenant, current, data: dict) -> None:
    """What creating a ``model`` with ``data`` (or editing ``current`` with it) would refuse, writing
    nothing: the model's validation of the given ``fields`` (``arm.writes.validate_given``), for a form that
    rejected some of its fields and still shows every other problem of the submit."""
    validate_given(current or model(tenant=tenant), {k: v for k, v in data.items() if k in fields}, fields)


def environment_check(*, tenant, environment: Environment | None = None, **data) -> None:
    """``environment_create``'s (or ``environment_update``'s) validation of ``data``, writing nothing."""
    _check(Environment, ENVIRONMENT_FIELDS, tenant=tenant, current=environment, data=data)


def provider_check(*, tenant, provider: Provider | None = None, **data) -> None:
    """``provider_create``'s (or ``provider_update``'s) validation of ``data``, writing nothing."""
    _check(Provider, PROVIDER_FIELDS, tenant=tenant, current=provider, data=data)


# ---------------------------------------------------------------- templates

TEMPLATE_FIELDS = ("name", "description", "owners", "tags")


def template_create(*, tenant, actor: Actor | None = None, pk=None, **data) -> AgentTemplate:
    actor = actor or current_actor()
    return _create(
        AgentTemplate,
        what="a template",
        tenant=tenant,
        actor=actor,
        data=data,
        fields=TEMPLATE_FIELDS,
        pk=pk,
        created_by=actor.ref,
    )


def template_update(*, template: AgentTemplate, actor: Actor | None = None, **data) -> AgentTemplate:
    return _update(template, data, TEMPLATE_FIELDS, actor)


def template_check(*, tenant, template: AgentTemplate | None = None, **data) -> None:
    """``template_create``'s (or ``template_update``'s) validation of ``data``, writing nothing."""
    _check(AgentTemplate, TEMPLATE_FIELDS, tenant=tenant, current=template, data=data)


def template_delete(*, template: AgentTemplate, actor: Actor | None = None) -> None:
    """Only while the template has no versions (the PROTECT foreign key backs this in the database)."""
    actor = actor or current_actor()
    require_roles(actor, OPERATOR_ROLES, "Deleting a template")
    with transaction.atomic():
        template = AgentTemplate.objects.select_for_update().get(pk=template.pk)
        count = template.versions.count()
        if count:
            raise Conflict(
                f"Template {template.name} has {count} version(s) and cannot be deleted; retire its versions.",
                code="template_has_versions",
            )
        try:
            with transaction.atomic(), annotate(template, actor=actor):
                template.delete()
        except ProtectedError as exc:
            raise Conflict(f"Template {template.name} has versions and cannot be deleted.") from exc


# ---------------------------------------------------------------- versions


def version_create(
    *,
    tenant,
    template: AgentTemplate,
    version_label: str,
    genome,
    parent: AgentVersion | None = None,
    actor: Actor | None = None,
    pk=None,
) -> AgentVersion:
    """Validate the genome, store it canonical with its SHA-256, link the parent (same template). ``pk``
    fixes the id (the demo's well-known objects); by default it is random."""
    actor = actor or current_actor()
    require_roles(actor, OPERATOR_ROLES, "Creating a version")
    errors = {}
    if template.tenant_id != tenant.pk:
        errors["template"] = "Template not found in this tenant."
    if parent is not None and parent.tenant_id != tenant.pk:
        errors["parent"] = "Parent not found in this tenant."
    elif parent is not None and parent.template_id != template.pk:
        errors["parent"] = "The parent must be a version of the same template."
    if not isinstance(version_label, str) or not version_label.strip():
        errors["version_label"] = "Give the version a label, e.g. 1.4.0."
    try:
        canonical = validate_genome(genome)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        canonical = None
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            version = AgentVersion(
                tenant=tenant,
                template=template,
                version_label=version_label.strip(),
                # What is stored (and returned) is the canonical text the hash is computed over, not the input:
                # -0.0 reads back as 0, 1.0 as 1.
                genome=CanonicalDict(json.loads(canonical), canonical.decode("utf-8")),
                genome_hash=hash_canonical(canonical),
                parent=parent,
                created_by=actor.ref,
                **({"pk": pk} if pk is not None else {}),
            )
            # The tenant, template and parent are rows this call already read and checked above: Django's
            # per-foreign-key existence queries would only repeat that (the database's keys still hold).
            validate(version, exclude=["genome", "tenant", "template", "parent"], unique=False)
            with annotate(version, actor=actor):
                version.save(force_insert=True)
    except IntegrityError:
        # A label the template already has (its unique constraint): the insert was rolled back, and
        # ``validate`` names the field (409); any other integrity error is not ours to explain.
        validate(version, exclude=["genome", "tenant", "template", "parent"])
        raise
    return version


def transition_for(obj, field: str, to: str):
    """The django-fsm transition from the object's current state to ``to``, or None."""
    current = getattr(obj, field)
    for t in getattr(obj, f"get_all_{field}_transitions")():
        if t.source == current and t.target == to:
            return t
    return None


def allowed_targets(obj, field: str) -> list[str]:
    current = getattr(obj, field)
    return sorted({t.target for t in getattr(obj, f"get_all_{field}_transitions")() if t.source == current})


def unmet_guards(obj, transition) -> list[str]:
    return [msg for cond in transition.conditions if (msg := getattr(cond, "check", lambda o: None)(obj))]


@dataclass(frozen=True)
class TransitionOption:
    """A transition the UI can offer: ``blocked_by`` explains why it is not possible right now."""

    target: str
    name: str
    allowed: bool
    blocked_by: str = ""


def transition_options(obj, field: str, actor: Actor) -> list[TransitionOption]:
    """Every transition out of the current state, with whether ``actor`` may take it now and why not."""
    current = getattr(obj, field)
    options = []
    for t in getattr(obj, f"get_all_{field}_transitions")():
        if t.source != current:
            continue
        reason = ""
        if not actor.has_any(t.custom.get("roles", ())):
            reason = "Needs role: " + ", ".join(t.custom.get("roles", ()))
        elif t.custom.get("four_eyes") and is_same_principal(actor, getattr(obj, "created_by", "")):
            reason = "Four eyes: you created this version"
        else:
            unmet = unmet_guards(obj, t)
            reason = "; ".join(unmet)
        options.append(TransitionOption(target=t.target, name=t.name, allowed=not reason, blocked_by=reason))
    return sorted(options, key=lambda o: o.target)


def _check_transition(obj, field, to, actor, label, kind):
    current = getattr(obj, field)
    t = transition_for(obj, field, to)
    if t is None:
        targets = allowed_targets(obj, field)
        hint = f"from {current} it can go to {', '.join(targets)}" if targets else f"{current} is final"
        raise InvalidTransition(f"Cannot move {kind} {label} from {current} to {to}: no such transition ({hint}).")
    require_roles(actor, t.custom.get("roles", ()), f"Moving a {kind} from {current} to {to}")
    return t


def version_for_update(tenant_id, pk) -> AgentVersion | None:
    """The version, locked for the rest of the transaction. Locks the version's row only (``of``): the
    template is joined for labels, and locking it too made every transition of a template's versions, and
    every edit of the template, wait for the others."""
    return (
        AgentVersion.objects.select_for_update(of=("self",))
        .select_related("template")
        .filter(tenant_id=tenant_id, pk=pk)
        .first()
    )


def version_transition(*, version: AgentVersion, to: str, actor: Actor | None = None, reason: str = "") -> AgentVersion:
    """Move a version along its lifecycle. The row is read again here, locked and within the version's
    tenant (``NotFound`` when it is not there), so racing transitions are serialized and nothing the
    caller read earlier is trusted."""
    actor = actor or current_actor()
    with transaction.atomic():
        version = version_for_update(version.tenant_id, version.pk)
        if version is None:
            raise NotFound("Version not found.")
        current = version.lifecycle_state
        t = _check_transition(version, "lifecycle_state", to, actor, version.version_label, "version")
        if t.custom.get("four_eyes") and is_same_principal(actor, version.created_by):
            raise four_eyes_error(
                actor, version.created_by, did=f"created version {version.version_label}", cannot="approve it"
            )
        unmet = unmet_guards(version, t)
        if unmet:
            raise InvalidTransition(
                f"Cannot move version {version.version_label} from {current} to {to}: {'; '.join(unmet)}."
            )
        getattr(version, t.name)()
        with annotate(version, EventType.VERSION_TRANSITIONED, reason=reason or "", actor=actor):
            version.save(update_fields=["lifecycle_state", "updated_at"])
    return version


@dataclass(frozen=True)
class IntegrityResult:
    status: str
    stored_hash: str
    computed_hash: str
    checked_at: datetime

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "stored_hash": self.stored_hash,
            "computed_hash": self.computed_hash,
            "checked_at": self.checked_at,
        }


def compute_integrity(version: AgentVersion) -> tuple[str, str]:
    """(status, computed hash) from the genome as stored: the SHA-256 of the stored text. A stored text
    that is not JSON never verifies (its computed hash is that of the text as a JSON string)."""
    genome = version.genome
    try:
        if isinstance(genome, str) and is_json_text(genome):
            # JSON that is not a readable object (``parse_stored_json``): still the hash of what is stored.
            computed = hash_canonical(genome)
        else:
            # The stored text itself when there is one: it is what the API returns, so it must be what was hashed.
            computed = genome_hash(genome)
    except ValidationError:
        computed = hash_canonical(str(genome))
    return (IntegrityStatus.VERIFIED if computed == version.genome_hash else IntegrityStatus.TAMPERED), computed


def version_verify_integrity(*, version: AgentVersion, actor: Actor | None = None) -> IntegrityResult:
    """Recompute the hash and record the outcome when it differs from the last recorded one (the first
    check, VERIFIED → TAMPERED, TAMPERED → VERIFIED). A check that finds what the last one found stamps
    ``integrity_checked_at`` only (an unrecorded column): the trail records changes, not reads, and the
    row carries the time of the latest check, which the API and drawers show. Decided by the database (a
    conditional UPDATE on the stored status), so two readers never both skip a change. TAMPERED
    quarantines every live instance of the version (each with its own change record) and makes policy
    evaluation deny them, on every check.

    The hash is always of the stored row, never of an earlier copy (one read earlier may predate a
    tampering): the genome and its hash are read again here."""
    actor = actor or current_actor()
    stored = AgentVersion.objects.filter(pk=version.pk).values("genome", "genome_hash").first()
    if stored is not None:
        version.genome, version.genome_hash = stored["genome"], stored["genome_hash"]
    status, computed = compute_integrity(version)
    now = timezone.now()
    event = EventType.INTEGRITY_VERIFIED if status == IntegrityStatus.VERIFIED else EventType.INTEGRITY_FAILED
    with transaction.atomic():
        unchanged = AgentVersion.objects.filter(pk=version.pk, integrity_status=status).update(integrity_checked_at=now)
        if unchanged:
            version.integrity_checked_at = now
        else:
            with annotate(
                version, event, actor=actor, status=status, stored_hash=version.genome_hash, computed_hash=computed
            ):
                version.integrity_status, version.integrity_checked_at = status, now
                version.save(update_fields=["integrity_status", "integrity_checked_at"])
        if status == IntegrityStatus.TAMPERED:
            _quarantine_instances_of(version)
    return IntegrityResult(status, version.genome_hash, computed, now)


@dataclass
class SweepResult:
    checked: int = 0
    verified: int = 0
    tampered: list = field(default_factory=list)  # (version, IntegrityResult)


SWEEP_CHUNK = 500


def integrity_sweep(*, tenant, actor: Actor | None = None, progress=None) -> SweepResult:
    """Recompute every version's hash in ``tenant`` (``verify_integrity``). Healthy versions are marked
    VERIFIED in bulk, without a record each; every failure goes through ``version_verify_integrity`` (its
    INTEGRITY_FAILED record and quarantines), so does a version recovering from TAMPERED; the sweep ends
    with one INTEGRITY_SWEEP record carrying the counts. ``progress(done)`` is called after each chunk."""
    actor = actor or current_actor()
    result = SweepResult()
    rows = AgentVersion.objects.filter(tenant=tenant).only("id", "genome", "genome_hash", "integrity_status")
    chunk: list = []

    def flush():
        if chunk:
            # A version marked TAMPERED meanwhile (by a read in another process) keeps that mark; one that
            # was not VERIFIED yet gets its VERSION_CHANGED record.
            recorded_update(
                AgentVersion.objects.filter(pk__in=chunk).exclude(integrity_status=IntegrityStatus.TAMPERED),
                reason="integrity sweep",
                actor=actor,
                integrity_status=IntegrityStatus.VERIFIED,
                integrity_checked_at=timezone.now(),
            )
            chunk.clear()
        if progress is not None:
            progress(result.checked)

    for version in rows.order_by("pk").iterator(chunk_size=SWEEP_CHUNK):
        status, _ = compute_integrity(version)
        result.checked += 1
        if status == IntegrityStatus.VERIFIED and version.integrity_status != IntegrityStatus.TAMPERED:
            result.verified += 1
            chunk.append(version.pk)
        else:
            checked = version_verify_integrity(version=version, actor=actor)
            if checked.status == IntegrityStatus.VERIFIED:
                result.verified += 1
            else:
                result.tampered.append((version, checked))
        if result.checked % SWEEP_CHUNK == 0:
            flush()
    flush()
    record_change(
        tenant=tenant,
        event_type=EventType.INTEGRITY_SWEEP,
        target=tenant,
        payload={
            "checked": result.checked,
            "verified": result.verified,
            "tampered": [str(version.pk) for version, _ in result.tampered],
        },
        actor=actor,
    )
    return result


def _quarantine_instances_of(version: AgentVersion) -> None:
    live = (
        AgentInstance.objects.select_for_update()
        .filter(version=version)
        .exclude(state__in=[InstanceState.RETIRED, InstanceState.QUARANTINED])
    )
    system = Actor.system()
    for instance in live:
        instance.quarantine()
        with annotate(instance, EventType.INSTANCE_TRANSITIONED, reason="integrity check failed", actor=system):
            instance.save(update_fields=["state", "updated_at"])


def evaluation_record(
    *, version: AgentVersion, suite: str, status: str, score=None, details=None, actor: Actor | None = None
) -> EvaluationResult:
    """Store a harness result; the version's eval_status becomes the status of its latest result."""
    actor = actor or current_actor()
    require_roles(actor, OPERATOR_ROLES, "Recording an evaluation result")
    with transaction.atomic():
        version = AgentVersion.objects.select_for_update().get(pk=version.pk)
        if version.lifecycle_state == VersionState.RETIRED:
            raise Conflict(f"Version {version.version_label} is RETIRED; it takes no more evaluation results.")
        result = EvaluationResult(
            tenant=version.tenant,
            version=version,
            suite=suite,
            status=status,
            score=score,
            details=details if details is not None else {},
            created_by=actor.ref,
        )
        validate(result)
        version.eval_status = EvalStatus(status)
        # Two rows, two records: the result's EVALUATION_CREATED, and the version's, which says why its
        # eval_status moved.
        with annotate(result, actor=actor):
            result.save()
        context = {"evaluation": str(result.pk), "suite": suite, "status": status}
        with annotate(version, EventType.EVALUATION_RECORDED, actor=actor, **context):
            version.save(update_fields=["eval_status", "updated_at"])
    return result


# ---------------------------------------------------------------- instances


def instance_create(
    *,
    tenant,
    version: AgentVersion,
    environment: Environment,
    provider: Provider,
    name: str = "",
    actor: Actor | None = None,
    pk=None,
) -> AgentInstance:
    """Create an instance in PROVISIONING after the deployment gate for the environment's tier. Deploying
    verifies the version's integrity (recorded); a TAMPERED version is never deployed (409). ``pk`` fixes
    the id (the demo's well-known objects); by default it is random. The policy it starts under is
    ``policies.services.instance_create``'s."""
    actor = actor or current_actor()
    require_roles(actor, OPERATOR_ROLES, "Creating an instance")
    instance = AgentInstance(
        tenant=tenant,
        version=version,
        environment=environment,
        provider=provider,
        name=name or "",
        created_by=actor.ref,
        **({"pk": pk} if pk is not None else {}),
    )
    instance.check_same_tenant(version=version, environment=environment, provider=provider)
    gate_error = deployment_gate_error(version, environment)
    if gate_error:
        raise ValidationError({"version": gate_error})
    # Its own transaction: the verification record stands even when the deployment is refused.
    _refuse_tampered(version_verify_integrity(version=version, actor=actor), version, "Cannot deploy")
    with transaction.atomic():
        # Lock the version, then check again: a concurrent retirement or integrity failure takes the same
        # lock, so it either commits first (and is seen here) or finds this instance afterwards.
        version = AgentVersion.objects.select_for_update().get(pk=version.pk)
        instance.version = version
        if version.integrity_status == IntegrityStatus.TAMPERED:
            _refuse_tampered(None, version, "Cannot deploy")
        gate_error = deployment_gate_error(version, environment)
        if gate_error:
            raise ValidationError({"version": gate_error})
        _refuse_unhealthy_provider(provider.pk)
        validate(instance)
        with annotate(instance, actor=actor):
            instance.save(force_insert=True)
    return instance


def _refuse_unhealthy_provider(provider_id) -> None:
    """409 ``provider_unhealthy`` when the provider's health endpoint last answered wrong
    (``registry.health.provider_deploy_error``). The row is locked (``FOR NO KEY UPDATE``, as a health
    poll's record takes it), so a deployment sees the health before or after a concurrent poll's change,
    never a deployment slipping past a change committed first."""
    locked = Provider.objects.select_for_update(no_key=True).filter(pk=provider_id).first()
    error = provider_deploy_error(locked) if locked is not None else None
    if error:
        raise Conflict(error, code="provider_unhealthy")


def _refuse_tampered(result: IntegrityResult | None, version: AgentVersion, doing: str) -> None:
    """409 ``version_tampered`` when the integrity check failed: no instance of a TAMPERED version is
    deployed or goes live, in any environment, through any path."""
    if result is not None and result.status == IntegrityStatus.VERIFIED:
        return
    hashes = f": stored {result.stored_hash[:12]}…, computed {result.computed_hash[:12]}…" if result else ""
    raise Conflict(
        f"{doing}: version {version.version_label} is TAMPERED (its genome no longer matches its hash{hashes}); "
        "no instance of it may be deployed or go live.",
        code="version_tampered",
    )


def deployment_gate_error(version: AgentVersion, environment: Environment) -> str | None:
    """Why ``version`` may not deploy to ``environment`` (None when it may)."""
    allowed = DEPLOYABLE_STATES[environment.tier]
    if version.lifecycle_state in allowed:
        return None
    needed = " or ".join(sorted(allowed)) if len(allowed) < 3 else "any state but DEPRECATED or RETIRED"
    return (
        f"Version {version.version_label} is {version.lifecycle_state}; the {environment.tier} environment "
        f"{environment.name} needs {needed}."
    )


def instance_update(*, instance: AgentInstance, actor: Actor | None = None, name: str) -> AgentInstance:
    """Rename an instance (attach/detach of a policy is ``policies.services.policy_attach``)."""
    return _update(instance, {"name": name}, ("name",), actor)


def instance_transition(
    *, instance: AgentInstance, to: str, actor: Actor | None = None, reason: str = ""
) -> AgentInstance:
    """Move an instance along its lifecycle. Every move into ACTIVE (``goes_live``) re-verifies the
    version first: a tampered genome refuses the move (409 ``version_tampered``), is recorded as
    INTEGRITY_FAILED and quarantines every live instance of the version, this one included."""
    actor = actor or current_actor()
    t = _check_transition(instance, "state", to, actor, instance.name or str(instance.pk)[:8], "instance")
    label = instance.name or str(instance.pk)[:8]
    verified = {}
    if goes_live(t):
        # Going live runs the version again: verify the stored genome now, not the last recorded result.
        # Its own transaction, so the verification record stands even when the move is refused.
        check = version_verify_integrity(version=instance.version, actor=actor)
        _refuse_tampered(check, instance.version, f"Cannot move instance {label} from {instance.state} to {to}")
        # The proof of this check is on the move's own record (a repeated VERIFIED writes none of its own).
        verified = {"verified_genome_hash": check.computed_hash}
    with transaction.atomic():
        instance = AgentInstance.objects.select_for_update().get(pk=instance.pk)
        current = instance.state
        t = _check_transition(instance, "state", to, actor, label, "instance")
        # Lock the version too: a concurrent integrity failure either commits first (and the guard below
        # sees TAMPERED) or waits, then finds this instance to quarantine.
        instance.version = AgentVersion.objects.select_for_update().get(pk=instance.version_id)
        unmet = unmet_guards(instance, t)
        if unmet:
            raise Conflict(
                f"Cannot move instance {label} from {current} to {to}: {'; '.join(unmet)}.", code="version_tampered"
            )
        if current == InstanceState.PROVISIONING and to == InstanceState.ACTIVE:
            _refuse_unhealthy_provider(instance.provider_id)  # activating is the deployment going live
        getattr(instance, t.name)()
        with annotate(instance, EventType.INSTANCE_TRANSITIONED, reason=reason or "", actor=actor, **verified):
            instance.save(update_fields=["state", "updated_at"])
    return instance


HEARTBEAT_ROLES = (Role.OPERATOR, Role.RUNTIME)


def instance_heartbeat(*, tenant, instance_id, status: dict | None = None, actor: Actor | None = None) -> datetime:
    """One UPDATE, no change record (documented exception: the hottest write path). A key bound to an
    instance may beat only for it; RETIRED instances do not beat."""
    actor = actor or current_actor()
    require_roles(actor, HEARTBEAT_ROLES, "Sending a heartbeat")
    bound = actor.bound_instance_id
    if bound is not None and str(bound) != str(instance_id):
        raise NotFound("Instance not found.")
    now = timezone.now()
    try:
        if sql.commits_async():
            updated = sql.beat(tenant.pk, instance_id, now, status)
        else:
            updated = (
                AgentInstance.objects.filter(tenant=tenant, pk=instance_id)
                .exclude(state=InstanceState.RETIRED)
                .update(last_heartbeat_at=now, heartbeat_status=status)
            )
    except (ValidationError, ValueError) as exc:
        raise NotFound("Instance not found.") from exc
    if not updated:
        if AgentInstance.objects.filter(tenant=tenant, pk=instance_id).exists():
            raise Conflict("This instance is RETIRED and takes no heartbeats.", code="instance_retired")
        raise NotFound("Instance not found.")
    return now


MAX_HEARTBEATS_PER_BATCH = 1000


class TooManyHeartbeats(DomainError):
    """A batch heartbeat naming more than ``MAX_HEARTBEATS_PER_BATCH`` instances: refused whole before
    anything is written (413, like every body that fans out into rows)."""

    status = 413
    code = "too_many_instances"


class HeartbeatResult:
    OK = "ok"
    NOT_FOUND = "not_found"
    RETIRED = "retired"


def instance_heartbeats(
    *, tenant, instance_ids, status: dict | None = None, actor: Actor | None = None
) -> tuple[datetime, dict[str, str]]:
    """Heartbeats for up to ``MAX_HEARTBEATS_PER_BATCH`` instances at once (a runtime host beating for
    the agents it runs): ONE UPDATE for every id, then one SELECT to tell each id's result apart, in one
    transaction — two queries whatever the batch size. Same rules as ``instance_heartbeat``: operator or
    runtime; a key bound to an instance beats only for it (any other id is ``not_found``, exactly like an
    id of another tenant or none at all); RETIRED instances are not touched (``retired``). No change
    record (the documented heartbeat exception). Returns (the heartbeat time, {id: result}) with the ids
    as given (lowercase UUID text), in their first order."""
    actor = actor or current_actor()
    require_roles(actor, HEARTBEAT_ROLES, "Sending a heartbeat")
    ids = list(dict.fromkeys(str(i).lower() for i in instance_ids))
    if not ids:
        raise ValidationError({"instances": "Give at least one instance id."})
    if len(ids) > MAX_HEARTBEATS_PER_BATCH:
        raise TooManyHeartbeats(
            f"At most {MAX_HEARTBEATS_PER_BATCH} instances per call, not {len(ids)}: split it into smaller batches."
        )
    bound = actor.bound_instance_id
    allowed = [i for i in ids if bound is None or str(bound).lower() == i]
    results = dict.fromkeys(ids, HeartbeatResult.NOT_FOUND)
    now = timezone.now()
    if not allowed:
        return now, results
    scope = AgentInstance.objects.filter(tenant=tenant, pk__in=allowed)
    asynchronous = sql.commits_async()
    with transaction.atomic():
        if asynchronous:  # its own transaction: commit without the flush wait (``registry.sql``)
            sql.commit_without_flush_wait()
        # The UPDATE locks the rows it changes until commit, so the SELECT below sees them as updated
        # (RETIRED is terminal: a row the UPDATE skipped for being RETIRED stays RETIRED).
        scope.exclude(state=InstanceState.RETIRED).update(last_heartbeat_at=now, heartbeat_status=status)
        for pk, state in scope.values_list("pk", "state"):
            results[str(pk)] = HeartbeatResult.RETIRED if state == InstanceState.RETIRED else HeartbeatResult.OK
    return now, results


# ---------------------------------------------------------------- keys bound to an instance


def api_key_create(*, tenant, name: str, roles: list[str], instance=None, actor: Actor | None = None):
    """``tenancy.services.api_key_create``, binding the key to ``instance`` (``InstanceKey``) in the same
    transaction; returns (key, secret). A key bound to an instance mints only keys bound to it (tenancy
    decides): without ``instance``, such a minter's key is bound to its own instance. Every caller that
    may bind a key goes through here (the key API and page, ``create_api_key``, the demo)."""
    actor = actor or current_actor()
    bound = actor.bound_instance_id
    if instance is None and bound is not None:
        instance = AgentInstance.objects.get(pk=bound)
    if instance is not None and instance.tenant_id != tenant.pk:
        raise ValidationError({"instance": "Instance not found in this tenant."})
    with transaction.atomic():
        key, secret = tenancy_services.api_key_create(
            tenant=tenant, name=name, roles=roles, bound_to=instance.pk if instance is not None else None, actor=actor
        )
        if instance is not None:
            binding = InstanceKey(key=key, tenant_id=tenant.pk, instance=instance)
            with annotate(binding, actor=actor):
                binding.save(force_insert=True)
    return key, secret
