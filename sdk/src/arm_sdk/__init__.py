"""ARM's runtime SDK: guard tool calls with ARM's policies and approvals, send traces for the usage
ledger, heartbeat a fleet, deploy instances. See sdk/README.md.

Framework adapters are modules of their own, each an optional extra: ``arm_sdk.langgraph``,
``arm_sdk.openai_agents``, ``arm_sdk.pydantic_ai``; ``arm_sdk.telemetry`` needs the ``otel`` extra.
"""

__version__ = "0.1.0"

from .client import AsyncClient, Client  # noqa: E402
from .config import Config  # noqa: E402
from .context import context, current_instance, current_run_id  # noqa: E402
from .deploy import Deployer  # noqa: E402
from .errors import (  # noqa: E402
    ApprovalDenied,
    ApprovalExpired,
    ApprovalPending,
    ApprovalTimeout,
    ApprovalWithdrawn,
    ArmError,
    ConfigurationError,
    Conflict,
    Denied,
    Forbidden,
    IdempotencyConflict,
    NotFound,
    Unauthorized,
    Unavailable,
)
from .guard import aguard, configure, guard, guarded  # noqa: E402
from .heartbeats import AsyncHeartbeats, Heartbeats  # noqa: E402
from .models import ALLOW, DENY, NEEDS_APPROVAL, Decision, Reason  # noqa: E402
from .normalize import call_name, derive_idempotency_key  # noqa: E402


def instrument(**options):
    """``arm_sdk.telemetry.instrument`` (imported on use: it needs the ``otel`` extra)."""
    from .telemetry import instrument as _instrument

    return _instrument(**options)


__all__ = [
    "ALLOW",
    "DENY",
    "NEEDS_APPROVAL",
    "ApprovalDenied",
    "ApprovalExpired",
    "ApprovalPending",
    "ApprovalTimeout",
    "ApprovalWithdrawn",
    "ArmError",
    "AsyncClient",
    "AsyncHeartbeats",
    "Client",
    "Config",
    "ConfigurationError",
    "Conflict",
    "Decision",
    "Deployer",
    "Denied",
    "Forbidden",
    "Heartbeats",
    "IdempotencyConflict",
    "NotFound",
    "Reason",
    "Unauthorized",
    "Unavailable",
    "aguard",
    "call_name",
    "configure",
    "context",
    "current_instance",
    "current_run_id",
    "derive_idempotency_key",
    "guard",
    "guarded",
    "instrument",
]
