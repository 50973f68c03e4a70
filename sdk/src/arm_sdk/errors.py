"""The SDK's errors. Every one is an ``ArmError`` carrying ARM's stable ``code``, its message and, for a
decision, the reasons ARM gave. HTTP errors keep the status and ARM's JSON error body
(``{"code", "message"[, "errors"]}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Decision, Reason


class ArmError(Exception):
    """Anything ARM (or the way to it) refused. ``code`` is ARM's stable machine-readable code."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "arm_error",
        status: int | None = None,
        reasons: tuple[Reason, ...] = (),
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.reasons = tuple(reasons)
        self.body = body

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConfigurationError(ArmError):
    """The SDK lacks what it needs (ARM_URL, ARM_API_KEY, an instance id)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="configuration")


class Unavailable(ArmError):
    """ARM did not answer, or answered 503, on every attempt (``database_busy``, ``database_unavailable``,
    a connection error)."""


class Unauthorized(ArmError):
    """401: no key, or a revoked or unknown one."""


class Forbidden(ArmError):
    """403: the key lacks the role, or is bound to another instance (``instance_binding``)."""


class NotFound(ArmError):
    """404: no such object in the key's tenant (or, for a bound key, for its instance)."""


class Conflict(ArmError):
    """409: the object's state forbids the change (``invalid_transition``, ``not_pending``…)."""


class IdempotencyConflict(Conflict):
    """409 ``idempotency_conflict``: this idempotency key already names a different call."""


class Denied(ArmError):
    """ARM answered DENY. ``reasons`` say why (each a ``Reason(code, message)``); ``decision`` is the
    whole answer (``decision.decision_id`` names it in ARM's decision log)."""

    def __init__(self, decision: Decision | None, reasons: tuple[Reason, ...], message: str | None = None) -> None:
        code = reasons[0].code if reasons else "denied"
        text = message or "; ".join(r.message for r in reasons) or "ARM denied the call."
        super().__init__(text, code=code, reasons=reasons)
        self.decision = decision


class ApprovalDenied(Denied):
    """A person denied the approval this call waited for."""


class ApprovalExpired(Denied):
    """The approval this call waited for expired before anyone decided it."""


class ApprovalWithdrawn(Denied):
    """The approval this call waited for was withdrawn."""


class ApprovalPending(ArmError):
    """ARM answered NEEDS_APPROVAL and the call was not to wait (``wait=False``): ``approval_id`` names the
    request; the same idempotency key finds it again later."""

    def __init__(self, decision: Decision, message: str | None = None) -> None:
        super().__init__(
            message or f"Approval {decision.approval} is pending.",
            code="approval_pending",
            reasons=decision.reasons,
        )
        self.decision = decision
        self.approval_id = decision.approval


class ApprovalTimeout(ApprovalPending):
    """The call waited until its deadline and the approval is still pending (it stays open: the same
    idempotency key finds it again; ``Client.withdraw`` withdraws it)."""


def error_for_status(status: int, body: Any, *, default_message: str) -> ArmError:
    """ArmError subclass for an HTTP error answer, from ARM's ``{"code", "message"}`` body when it is one."""
    code = f"http_{status}"
    message = default_message
    if isinstance(body, dict):
        code = str(body.get("code") or code)
        message = str(body.get("message") or body.get("detail") or message)
    if status == 409 and code == "idempotency_conflict":
        cls: type[ArmError] = IdempotencyConflict
    else:
        cls = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 503: Unavailable}.get(status, ArmError)
    return cls(message, code=code, status=status, body=body)


# The decision reason codes that say a DENY came from the approval the call went through.
APPROVAL_DENY_CODES: dict[str, type[Denied]] = {
    "approval_denied": ApprovalDenied,
    "approval_expired": ApprovalExpired,
    "approval_withdrawn": ApprovalWithdrawn,
}
APPROVAL_STATUS_ERRORS: dict[str, tuple[type[Denied], str]] = {
    "DENIED": (ApprovalDenied, "approval_denied"),
    "EXPIRED": (ApprovalExpired, "approval_expired"),
    "WITHDRAWN": (ApprovalWithdrawn, "approval_withdrawn"),
}
