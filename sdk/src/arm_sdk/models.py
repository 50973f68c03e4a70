"""What ARM answers, as plain dataclasses: a decision and its reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALLOW = "ALLOW"
DENY = "DENY"
NEEDS_APPROVAL = "NEEDS_APPROVAL"


@dataclass(frozen=True)
class Reason:
    """One reason of a decision: ARM's stable ``code`` and a message for people."""

    code: str
    message: str

    @classmethod
    def from_json(cls, data: Any) -> Reason:
        if isinstance(data, dict):
            return cls(str(data.get("code", "")), str(data.get("message", "")))
        return cls("", str(data))


@dataclass(frozen=True)
class Decision:
    """ARM's answer to ``POST /api/v1/policy/evaluate/`` (SPEC §4 and the runtime protocol).

    ``replay`` is true when ARM returned a stored answer for the same idempotency key; ``decided_by``
    names the person whose approval let an ALLOW through. ``idempotency_key`` is the key the SDK sent."""

    decision: str
    risk: str | None
    reasons: tuple[Reason, ...]
    approval: str | None
    decision_id: str | None
    policy: dict | None = None
    replay: bool = False
    decided_by: str | None = None
    idempotency_key: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @classmethod
    def from_json(cls, data: dict, *, idempotency_key: str | None = None) -> Decision:
        return cls(
            decision=str(data.get("decision")),
            risk=data.get("risk"),
            reasons=tuple(Reason.from_json(r) for r in data.get("reasons") or ()),
            approval=str(data["approval"]) if data.get("approval") else None,
            decision_id=str(data["decision_id"]) if data.get("decision_id") else None,
            policy=data.get("policy"),
            replay=bool(data.get("replay", False)),
            decided_by=data.get("decided_by"),
            idempotency_key=idempotency_key,
            raw=data,
        )

    def explain(self) -> str:
        """The reasons in one line, for a model or a log."""
        return "; ".join(f"{r.code}: {r.message}" for r in self.reasons) or self.decision
