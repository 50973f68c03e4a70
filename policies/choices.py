from django.db import models


class Decision(models.TextChoices):
    ALLOW = "ALLOW"
    DENY = "DENY"
    NEEDS_APPROVAL = "NEEDS_APPROVAL"


class ReasonCode(models.TextChoices):
    INSTANCE_STATE = "instance_state"
    INTEGRITY = "integrity"
    NO_POLICY = "no_policy"
    UNDECLARED_TOOL = "undeclared_tool"
    TOOL_NOT_ALLOWED = "tool_not_allowed"
    DATA_SCOPE = "data_scope"
    COST_LIMIT = "cost_limit"
    OBSERVE_ONLY = "observe_only"
    TIER_ALLOWS = "tier_allows"
    NEEDS_APPROVAL = "needs_approval"
    APPROVAL_PENDING = "approval_pending"
    APPROVAL_GRANTED = "approval_granted"
    APPROVAL_INVALID = "approval_invalid"
    # The answer to an idempotency key whose call's approval was refused, expired or withdrawn.
    APPROVAL_DENIED = "approval_denied"
    APPROVAL_EXPIRED = "approval_expired"
    APPROVAL_WITHDRAWN = "approval_withdrawn"


class SpendPeriod(models.TextChoices):
    DAY = "day"
    MONTH = "month"
