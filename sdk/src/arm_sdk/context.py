"""Who is calling, for code that cannot pass it down: the instance (a host of many agents runs each
agent's work inside ``arm_sdk.context(instance=…)``) and the run (``run_id=``: a thread, a job, a
conversation), from which idempotency keys are derived so a resumed run asks about the same calls."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_instance: contextvars.ContextVar[str | None] = contextvars.ContextVar("arm_instance", default=None)
_run: contextvars.ContextVar[str | None] = contextvars.ContextVar("arm_run", default=None)


@contextlib.contextmanager
def context(*, instance: str | None = None, run_id: str | None = None) -> Iterator[None]:
    """Within the block, calls default to this instance and derive their keys from this run id
    (the OpenTelemetry span processor of ``instrument()`` stamps spans with the instance too)."""
    tokens = []
    if instance is not None:
        tokens.append((_instance, _instance.set(str(instance))))
    if run_id is not None:
        tokens.append((_run, _run.set(str(run_id))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_instance() -> str | None:
    return _instance.get()


def current_run_id() -> str | None:
    return _run.get()
