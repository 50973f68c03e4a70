"""Registry models. Write paths live in ``registry.services``; models hold fields, constraints and the
two lifecycles as django-fsm-2 transitions (guards and roles declared on each transition)."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower
from django_fsm import FSMField, FSMModelMixin, transition

from arm.errors import Immutable
from arm.models import Recorded, RecordedModel, Unrecorded
from arm.validators import (
    MAX_DESCRIPTION_LENGTH,
    MAX_OWNER_LENGTH,
    MAX_OWNERS,
    MAX_TAGS,
    unsafe_character,
    validate_description_length,
    validate_json_object_size,
    validate_name,
)
from registry.choices import (
    EnvironmentTier,
    EvalResultStatus,
    EvalStatus,
    Health,
    InstanceState,
    IntegrityStatus,
    ProviderHealth,
    ProviderType,
    VersionState,
)
from registry.genome import CanonicalDict, canonicalize, load_stored_object
from tenancy.choices import Role
from tenancy.models import TenantKey
from tenancy.usernames import member_usernames

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}\Z")
OWNER_RE = re.compile(r"^([^@\s]+@[^@\s]+\.[^@\s]+|[\w.@+-]{1,150})\Z")  # the shape; _unknown_owners decides


def _is_email(value: str) -> bool:
    try:
        EmailValidator()(value)
    except ValidationError:
        return False
    return True


class TenantOwned(RecordedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def check_same_tenant(self, **related) -> None:
        """Cross-tenant references are validation errors (400), phrased like a missing object."""
        errors = {
            field: f"{field.capitalize()} not found in this tenant."
            for field, obj in related.items()
            if obj is not None and obj.tenant_id != self.tenant_id
        }
        if errors:
            raise ValidationError(errors)


def validate_nfkc(value) -> None:
    """A name people pick and others select by (environment, provider, template) is written in Unicode
    NFKC form: full-width letters (``ｐｒｏｄ``), ligatures (``ﬁ``) and other compatibility characters look
    like plain ones but would make a different name. Together with the case-insensitive unique constraint
    (``unique_name_per_tenant``) one tenant cannot hold two names that read alike."""
    if isinstance(value, str):
        plain = unicodedata.normalize("NFKC", value)
        if plain != value:
            raise ValidationError(
                f"Write this name in its plain form, '{plain}': full-width, ligature and other compatibility "
                "characters look like plain ones but would make a different name.",
                code="not_nfkc",
            )


def unique_name_per_tenant(model_name: str, what: str) -> models.UniqueConstraint:
    """Names are unique per tenant ignoring case (``Prod`` is ``prod``), held by the database: the
    database's ``lower()`` folds the case (ASCII letters on SQLite, every cased letter on PostgreSQL); the
    spelling given is what is stored and shown."""
    return models.UniqueConstraint(
        F("tenant"),
        Lower("name"),
        name=f"{model_name}_unique_name_ci_per_tenant",
        violation_error_message=f"{what} with this name already exists (names are compared ignoring case).",
    )


NAME_VALIDATORS = [validate_name, validate_nfkc]


def require_json_object(value, field: str) -> None:
    if not isinstance(value, dict):
        raise ValidationError({field: "Must be a JSON object."})


class Environment(TenantOwned):
    """A deployment target: dev, staging or prod, with its own configuration."""

    audit = Recorded("ENVIRONMENT")

    name = models.CharField(max_length=100, validators=NAME_VALIDATORS)
    tier = models.CharField(max_length=10, choices=EnvironmentTier.choices)
    description = models.TextField(
        blank=True, max_length=MAX_DESCRIPTION_LENGTH, validators=[validate_description_length]
    )
    config = models.JSONField(default=dict, blank=True, validators=[validate_json_object_size])

    class Meta:
        ordering = ["name"]
        constraints = [
            unique_name_per_tenant("environment", "An environment"),
            models.CheckConstraint(condition=models.Q(tier__in=EnvironmentTier.values), name="environment_tier_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tier})"

    def clean(self) -> None:
        require_json_object(self.config, "config")


class Provider(TenantOwned):
    """Where instances run: a local runtime or a federated one (with its federation config)."""

    audit = Recorded(
        "PROVIDER",
        # What the last health poll found (registry.health): written by every poll; a change of
        # health_state is recorded as PROVIDER_HEALTH_CHANGED in the same transaction, with the answer.
        unrecorded_columns=(
            "health_state",
            "health_checked_at",
            "health_next_check_at",
            "health_status_code",
            "health_latency_ms",
            "health_reason",
        ),
        events=("PROVIDER_HEALTH_CHANGED",),
    )

    name = models.CharField(max_length=100, validators=NAME_VALIDATORS)
    type = models.CharField(max_length=10, choices=ProviderType.choices)
    health_endpoint = models.CharField(max_length=500, blank=True)
    # The answer a healthy provider gives its health endpoint: this status code, and this text somewhere
    # in the body when given; polled every health_interval_seconds, waiting health_timeout_seconds at most.
    health_expected_status = models.PositiveSmallIntegerField(
        default=200, validators=[MinValueValidator(100), MaxValueValidator(599)]
    )
    health_expected_body = models.CharField(max_length=200, blank=True)
    health_interval_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(5), MaxValueValidator(86400)]
    )
    health_timeout_seconds = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    health_state = models.CharField(max_length=10, choices=ProviderHealth.choices, default=ProviderHealth.UNKNOWN)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    health_next_check_at = models.DateTimeField(null=True, blank=True)
    health_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    health_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    health_reason = models.CharField(max_length=500, blank=True)
    federation_config = models.JSONField(default=dict, blank=True, validators=[validate_json_object_size])
    description = models.TextField(
        blank=True, max_length=MAX_DESCRIPTION_LENGTH, validators=[validate_description_length]
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            unique_name_per_tenant("provider", "A provider"),
            models.CheckConstraint(condition=models.Q(type__in=ProviderType.values), name="provider_type_valid"),
            models.CheckConstraint(
                condition=models.Q(health_state__in=ProviderHealth.values), name="provider_health_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        require_json_object(self.federation_config, "federation_config")
        if self.type == ProviderType.FEDERATED and not self.federation_config:
            raise ValidationError({"federation_config": "A federated provider needs a non-empty federation_config."})
        if self.health_endpoint:
            try:
                URLValidator(schemes=["http", "https"])(self.health_endpoint)
            except ValidationError as exc:
                raise ValidationError({"health_endpoint": "Enter a valid http(s) URL."}) from exc


class AgentTemplate(TenantOwned):
    """A family of agents: the name, owners and tags its versions share."""

    audit = Recorded("TEMPLATE")

    name = models.CharField(max_length=200, validators=NAME_VALIDATORS)
    description = models.TextField(
        blank=True, max_length=MAX_DESCRIPTION_LENGTH, validators=[validate_description_length]
    )
    owners = models.JSONField(default=list)
    tags = models.JSONField(default=list, blank=True)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            unique_name_per_tenant("template", "A template"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="template_tenant_created")]

    def __str__(self) -> str:
        return self.name

    def _unknown_owners(self, owners: list[str]) -> list[str]:
        """The owners that are neither a valid email address (Django's EmailValidator) nor the username of
        a member of the template's tenant, compared by the username rule (``tenancy.usernames``: ``OPS`` is
        ``ops``). Another tenant's people are not named here, so the error reveals none of them. Owners the
        stored template already lists stay valid: a person who left or was renamed does not block an edit."""
        kept = set()
        if not self._state.adding:
            kept = set(AgentTemplate.objects.filter(pk=self.pk).values_list("owners", flat=True).first() or [])
        candidates = [owner for owner in owners if owner not in kept and not _is_email(owner)]
        members = member_usernames(self.tenant_id, candidates) if candidates else set()
        return [owner for owner in candidates if owner not in members]

    def clean(self) -> None:
        errors = {}
        if not self.name or not self.name.strip():
            errors["name"] = "Give the template a name."
        owners = self.owners
        if not isinstance(owners, list) or not owners:
            errors["owners"] = "List at least one owner (email or username)."
        elif len(owners) > MAX_OWNERS:
            errors["owners"] = f"At most {MAX_OWNERS} owners."
        elif not all(isinstance(o, str) and len(o) <= MAX_OWNER_LENGTH for o in owners):
            errors["owners"] = f"Each owner is at most {MAX_OWNER_LENGTH} characters."
        elif not all(OWNER_RE.match(o) and not unsafe_character(o) for o in owners):
            errors["owners"] = "Owners must be emails or usernames."
        elif len({unicodedata.normalize("NFKC", o).casefold() for o in owners}) != len(owners):
            # usernames are unique up to case and form (accounts), emails are read ignoring case
            errors["owners"] = "Owners must not repeat (compared ignoring case)."
        elif unknown := self._unknown_owners(owners):
            errors["owners"] = (
                "Owners are email addresses or usernames of people in this tenant; not: " + ", ".join(unknown) + "."
            )
        tags = self.tags
        if isinstance(tags, list) and len(tags) > MAX_TAGS:
            errors["tags"] = f"At most {MAX_TAGS} tags."
        elif not isinstance(tags, list) or not all(isinstance(t, str) and TAG_RE.match(t) for t in tags):
            errors["tags"] = "Tags are short slugs: lowercase letters, digits and dashes, up to 40 characters."
        elif len(set(tags)) != len(tags):
            errors["tags"] = "Tags must not repeat."
        if errors:
            raise ValidationError(errors)


class CanonicalJSONField(models.TextField):
    """A JSON value stored as its RFC 8785 canonical text, so the stored bytes are what is hashed.

    An object reads back as a ``CanonicalDict`` carrying the stored text, which the API returns verbatim
    and the integrity check hashes. Any other stored text (not strict JSON, not an object, nested too
    deep: a row edited in the database) reads back as the raw string (``parse_stored_json``).
    """

    def from_db_value(self, value, expression, connection):
        return None if value is None else parse_stored_json(value)

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValidationError("Enter valid JSON.") from exc
        return value

    def get_prep_value(self, value):
        if value is None or isinstance(value, str):
            return value
        return canonicalize(value).decode("utf-8")

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))


def parse_stored_json(text: str):
    """Stored canonical text as a value: a JSON object any client can read back becomes a
    ``CanonicalDict`` carrying the text; any other text (``registry.genome.load_stored_object``) stays the
    raw string, so whoever reads a genome finds either an object or the stored text, never a value that
    breaks on rendering (a lone surrogate, nesting deeper than any decoder takes)."""
    parsed = load_stored_object(text)
    return text if parsed is None else CanonicalDict(parsed, text)


def guard(check):
    """Wrap a guard (returns a failure message or None) as a django-fsm condition, keeping the message."""

    def condition(instance) -> bool:
        return check(instance) is None

    condition.check = check
    return condition


def eval_is_pass(version: AgentVersion) -> str | None:
    if version.eval_status != EvalStatus.PASS:
        return f"evaluation status is {version.eval_status}, PASS is required"
    return None


def no_live_instances(version: AgentVersion) -> str | None:
    live = version.instances.exclude(state=InstanceState.RETIRED).count()
    if live:
        return f"{live} instance(s) are not RETIRED yet"
    return None


OPERATOR = (Role.OPERATOR,)
APPROVER = (Role.APPROVER,)
WRITE_ONCE_FIELDS = ("genome", "genome_hash", "template_id", "parent_id", "tenant_id")
WRITE_ONCE_NAMES = {*WRITE_ONCE_FIELDS, "template", "parent", "tenant"}


def canonicalize_or_raw(value) -> bytes:
    if isinstance(value, str):
        return value.encode()
    try:
        return canonicalize(value)
    except ValidationError:
        return repr(value).encode()


class AgentVersion(FSMModelMixin, TenantOwned):
    """An immutable build of a template. ``genome`` and ``genome_hash`` are write-once (model, admin,
    API and database triggers); only lifecycle, eval and integrity-check columns ever change."""

    audit = Recorded(
        "VERSION",
        # Write-once and possibly large; its SHA-256 (genome_hash) is in the record.
        name_only=("genome",),
        # When the last verification ran, stamped by each (its record says so when it is one of its own).
        unrecorded_columns=("integrity_checked_at",),
        delete_refused="versions are immutable history: the model and a database trigger refuse deletes",
        events=(
            "VERSION_TRANSITIONED",
            "EVALUATION_RECORDED",  # a result stored for it (its own EVALUATION_CREATED record) set eval_status
            "INTEGRITY_VERIFIED",
            "INTEGRITY_FAILED",
            "INTEGRITY_SWEEP",  # the counts of one sweep over a tenant's versions (target: the tenant)
        ),
    )

    template = models.ForeignKey(AgentTemplate, on_delete=models.PROTECT, related_name="versions")
    version_label = models.CharField(max_length=100, validators=[validate_name])
    genome = CanonicalJSONField()
    genome_hash = models.CharField(max_length=64)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    lifecycle_state = FSMField(default=VersionState.DRAFT, choices=VersionState.choices, protected=True)
    eval_status = models.CharField(max_length=10, choices=EvalStatus.choices, default=EvalStatus.PENDING)
    integrity_status = models.CharField(
        max_length=10, choices=IntegrityStatus.choices, default=IntegrityStatus.UNCHECKED
    )
    integrity_checked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "version_label"],
                name="version_unique_label_per_template",
                violation_error_message="This template already has a version with this label.",
            ),
            models.CheckConstraint(
                condition=models.Q(lifecycle_state__in=VersionState.values), name="version_state_valid"
            ),
            models.CheckConstraint(condition=models.Q(eval_status__in=EvalStatus.values), name="version_eval_valid"),
            models.CheckConstraint(condition=~models.Q(parent=models.F("id")), name="version_parent_not_self"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="version_tenant_created"),
            models.Index(fields=["tenant", "lifecycle_state"], name="version_tenant_state"),
            # "recently updated" sort of the directory
            models.Index(fields=["tenant", "-updated_at"], name="version_tenant_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.template.name}@{self.version_label}" if self.template_id else self.version_label

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        touches_write_once = update_fields is None or bool(set(update_fields) & WRITE_ONCE_NAMES)
        if not self._state.adding and touches_write_once:
            # Compare with the stored row (only full saves pay this query; services save update_fields).
            stored = AgentVersion.objects.filter(pk=self.pk).values(*WRITE_ONCE_FIELDS).first()
            if stored is not None:
                changed = [f for f in WRITE_ONCE_FIELDS if f != "genome" and stored[f] != getattr(self, f)]
                if canonicalize_or_raw(stored["genome"]) != canonicalize_or_raw(self.genome):
                    changed.insert(0, "genome")
                if changed:
                    raise Immutable(f"A version's {', '.join(changed)} cannot change once written.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise Immutable("Versions cannot be deleted; retire them instead.")

    def clean(self) -> None:
        if self.parent_id and self.template_id:
            if self.parent.template_id != self.template_id:
                raise ValidationError({"parent": "The parent must be a version of the same template."})

    # Lifecycle (SPEC §3). ``custom["roles"]`` is who may take each transition; guards explain refusals.
    @transition(lifecycle_state, VersionState.DRAFT, VersionState.TESTING, custom={"roles": OPERATOR})
    def start_testing(self):
        pass

    @transition(
        lifecycle_state,
        VersionState.TESTING,
        VersionState.CANDIDATE,
        conditions=[guard(eval_is_pass)],
        custom={"roles": OPERATOR},
    )
    def promote(self):
        pass

    @transition(lifecycle_state, VersionState.TESTING, VersionState.DRAFT, custom={"roles": OPERATOR})
    def send_back(self):
        pass

    @transition(
        lifecycle_state,
        VersionState.CANDIDATE,
        VersionState.APPROVED,
        conditions=[guard(eval_is_pass)],
        custom={"roles": APPROVER, "four_eyes": True},
    )
    def approve(self):
        pass

    @transition(
        lifecycle_state,
        VersionState.CANDIDATE,
        VersionState.TESTING,
        custom={"roles": (*OPERATOR, *APPROVER)},
    )
    def reject(self):
        pass

    @transition(lifecycle_state, VersionState.APPROVED, VersionState.DEPRECATED, custom={"roles": OPERATOR})
    def deprecate(self):
        pass

    @transition(
        lifecycle_state,
        [VersionState.DRAFT, VersionState.TESTING, VersionState.CANDIDATE, VersionState.DEPRECATED],
        VersionState.RETIRED,
        conditions=[guard(no_live_instances)],
        custom={"roles": OPERATOR},
    )
    def retire(self):
        pass


class EvaluationResult(TenantOwned):
    """One result posted by an external evaluation harness; the latest sets the version's eval_status."""

    audit = Recorded("EVALUATION")

    version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="evaluations")
    suite = models.CharField(max_length=200, validators=[validate_name])
    status = models.CharField(max_length=4, choices=EvalResultStatus.choices)
    score = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True, validators=[validate_json_object_size])
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=EvalResultStatus.values), name="evaluation_status_valid"
            )
        ]
        indexes = [models.Index(fields=["version", "-created_at"], name="evaluation_version_created")]

    def __str__(self) -> str:
        return f"{self.suite}: {self.status}"

    def clean(self) -> None:
        require_json_object(self.details, "details")


class EvaluationRequest(models.Model):
    """One evaluation run the registry asked for when a version entered TESTING (the
    ``evaluation.requested`` event): the nonce its signed callback URL is bound to
    (``registry.evaluation_requests``). ``used_at`` is set by the one conditional UPDATE that accepts a
    result, so the URL records at most one evaluation."""

    # The request is in the event and the VERSION_TRANSITIONED record that caused it; the result it brings
    # back is recorded (EVALUATION_CREATED, by "evaluation-request:<id>"), and that names this row.
    audit = Unrecorded("an evaluation callback's single-use nonce, written with the event that hands it out")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="evaluation_requests")
    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    result = models.OneToOneField(
        EvaluationResult, null=True, blank=True, on_delete=models.PROTECT, related_name="evaluation_request"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["version", "-created_at"], name="evalrequest_version_created")]

    def __str__(self) -> str:
        return f"evaluation request {str(self.pk)[:8]}"


def _version_not_tampered(instance: AgentInstance) -> str | None:
    if instance.version.integrity_status == IntegrityStatus.TAMPERED:
        return f"version {instance.version.version_label} failed its integrity check (TAMPERED)"
    return None


# A version whose last integrity result is TAMPERED never runs again: none of its instances goes (back)
# to ACTIVE. (Quarantine happens automatically on the failure; this closes every way back.)
version_not_tampered = guard(_version_not_tampered)


def goes_live(transition) -> bool:
    """Whether taking ``transition`` runs the version again: every way INTO ACTIVE (activation, resume,
    writable again, lifting a quarantine). ``registry.services.instance_transition`` re-verifies the
    genome (and records it) before each, since the last recorded result may predate a tampering; derived
    from the target, so a transition added later cannot skip it."""
    return transition.target == InstanceState.ACTIVE


def health_cutoffs(now, window_seconds: int):
    """(degraded before, stale before): the heartbeat times at which an instance stops being healthy and
    stops being degraded (``health_of``; the health filter and the sweep query by them)."""
    return now - timedelta(seconds=window_seconds / 2), now - timedelta(seconds=window_seconds)


def health_of(last_heartbeat_at, now, window_seconds: int) -> str:
    if last_heartbeat_at is None:
        return Health.NEVER
    degraded_before, stale_before = health_cutoffs(now, window_seconds)
    if last_heartbeat_at < stale_before:
        return Health.STALE
    if last_heartbeat_at < degraded_before:
        return Health.DEGRADED
    return Health.HEALTHY


NOT_RETIRED = [s for s in InstanceState.values if s not in (InstanceState.RETIRED, InstanceState.QUARANTINED)]


class AgentInstance(FSMModelMixin, TenantOwned):
    """A deployment of one version in one environment on one provider. The policy it runs under is bound
    from above (``policies.PolicyAttachment``): registry knows nothing of policies."""

    audit = Recorded(
        "INSTANCE",
        # Heartbeats: the hottest write path, one UPDATE and no record (SPEC §3).
        # recorded_health: the health the stale-heartbeat sweep last saw (registry.health), written with
        # its own INSTANCE_HEALTH_CHANGED record.
        unrecorded_columns=("last_heartbeat_at", "heartbeat_status", "recorded_health"),
        events=("INSTANCE_TRANSITIONED", "INSTANCE_HEALTH_CHANGED"),
    )

    version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="instances")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="instances")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="instances")
    name = models.CharField(max_length=200, blank=True, validators=[validate_name])
    state = FSMField(default=InstanceState.PROVISIONING, choices=InstanceState.choices, protected=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    heartbeat_status = models.JSONField(null=True, blank=True)
    recorded_health = models.CharField(max_length=10, choices=Health.choices, default=Health.NEVER)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=InstanceState.values), name="instance_state_valid"),
            models.CheckConstraint(
                condition=models.Q(recorded_health__in=Health.values), name="instance_recorded_health_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="instance_tenant_created"),
            models.Index(fields=["tenant", "state"], name="instance_tenant_state"),
            models.Index(fields=["tenant", "-updated_at"], name="instance_tenant_updated"),
        ]

    def __str__(self) -> str:
        return self.name or f"instance {str(self.id)[:8]}"

    def health(self, now, window_seconds: int) -> str:
        """THE health rule (API, UI, filters and the stale-heartbeat sweep): stale once the last heartbeat
        is older than the tenant's window, degraded once older than half of it (beats are being missed,
        e.g. two at the demo's 30 s cadence in a 120 s window), healthy otherwise; never without one."""
        return health_of(self.last_heartbeat_at, now, window_seconds)

    # Every transition into ACTIVE goes live: the service re-verifies the version first (``goes_live``).
    @transition(
        state,
        InstanceState.PROVISIONING,
        InstanceState.ACTIVE,
        conditions=[version_not_tampered],
        custom={"roles": OPERATOR},
    )
    def activate(self):
        pass

    @transition(state, InstanceState.ACTIVE, InstanceState.PAUSED, custom={"roles": OPERATOR})
    def pause(self):
        pass

    @transition(
        state, InstanceState.PAUSED, InstanceState.ACTIVE, conditions=[version_not_tampered], custom={"roles": OPERATOR}
    )
    def resume(self):
        pass

    @transition(state, InstanceState.ACTIVE, InstanceState.READONLY, custom={"roles": OPERATOR})
    def make_readonly(self):
        pass

    @transition(
        state,
        InstanceState.READONLY,
        InstanceState.ACTIVE,
        conditions=[version_not_tampered],
        custom={"roles": OPERATOR},
    )
    def make_writable(self):
        pass

    @transition(
        state,
        [InstanceState.ACTIVE, InstanceState.PAUSED, InstanceState.READONLY],
        InstanceState.DRAINING,
        custom={"roles": OPERATOR},
    )
    def drain(self):
        pass

    @transition(state, NOT_RETIRED, InstanceState.QUARANTINED, custom={"roles": OPERATOR})
    def quarantine(self):
        pass

    @transition(
        state,
        InstanceState.QUARANTINED,
        InstanceState.ACTIVE,
        conditions=[version_not_tampered],
        custom={"roles": APPROVER},
    )
    def lift_quarantine(self):
        pass

    @transition(
        state,
        [InstanceState.DRAINING, InstanceState.QUARANTINED, InstanceState.PROVISIONING],
        InstanceState.RETIRED,
        custom={"roles": OPERATOR},
    )
    def retire(self):
        pass


class InstanceKey(RecordedModel):
    """The instance a runtime API key is bound to: such a key may heartbeat, evaluate, read the context of
    and report usage for that instance only (``tenancy.context.Actor.bound_instance_id``).

    The binding lives here, above tenancy, so the key points nowhere up (``tenancy.ApiKey`` knows no
    instance) and tenancy's migrations never wait for registry's. Written once, with the key, by
    ``registry.services.api_key_create``; authentication reads it in the key's own query, through the
    relation it adds to the key (``instance_binding``). Its primary key is the key, so its record names the
    key's id, as the key's own records do."""

    audit = Recorded("INSTANCE_KEY")

    key = models.OneToOneField(
        "arm.ApiKey", primary_key=True, on_delete=models.CASCADE, related_name="instance_binding"
    )
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    # PROTECT: a key never outlives its instance's row unbound (which would widen what it may do).
    instance = models.ForeignKey(AgentInstance, on_delete=models.PROTECT, related_name="key_bindings")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"key {str(self.key_id)[:8]} bound to instance {str(self.instance_id)[:8]}"
