from django.db import models


class EnvironmentTier(models.TextChoices):
    DEV = "dev", "Development"
    STAGING = "staging", "Staging"
    PROD = "prod", "Production"


class ProviderType(models.TextChoices):
    LOCAL = "local", "Local"
    FEDERATED = "federated", "Federated"


class VersionState(models.TextChoices):
    DRAFT = "DRAFT"
    TESTING = "TESTING"
    CANDIDATE = "CANDIDATE"
    APPROVED = "APPROVED"
    DEPRECATED = "DEPRECATED"
    RETIRED = "RETIRED"


class EvalStatus(models.TextChoices):
    PENDING = "PENDING"
    PASS = "PASS"
    FAIL = "FAIL"


class EvalResultStatus(models.TextChoices):
    PASS = "PASS"
    FAIL = "FAIL"


class IntegrityStatus(models.TextChoices):
    UNCHECKED = "UNCHECKED"
    VERIFIED = "VERIFIED"
    TAMPERED = "TAMPERED"


class InstanceState(models.TextChoices):
    PROVISIONING = "PROVISIONING"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    READONLY = "READONLY"
    DRAINING = "DRAINING"
    QUARANTINED = "QUARANTINED"
    RETIRED = "RETIRED"


class Health(models.TextChoices):
    """An instance's heartbeat health (``AgentInstance.health``): within half the tenant's heartbeat
    window, within it (degraded: beats are being missed), older (stale), or no heartbeat yet."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    STALE = "stale"
    NEVER = "never"


class ProviderHealth(models.TextChoices):
    """A provider's health as its health endpoint last answered (``registry.health``); unknown until
    polled, or when it declares no endpoint."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class Risk(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


RISK_ORDER = {Risk.LOW: 1, Risk.MEDIUM: 2, Risk.HIGH: 3, Risk.CRITICAL: 4}
DEFAULT_RISK = Risk.MEDIUM

# Deployment gates: which version states each environment tier accepts (SPEC §3).
DEPLOYABLE_STATES = {
    EnvironmentTier.PROD: {VersionState.APPROVED},
    EnvironmentTier.STAGING: {VersionState.CANDIDATE, VersionState.APPROVED},
    EnvironmentTier.DEV: {
        VersionState.DRAFT,
        VersionState.TESTING,
        VersionState.CANDIDATE,
        VersionState.APPROVED,
    },
}
