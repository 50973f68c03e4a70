"""``Client`` (sync) and ``AsyncClient``: one connection pool each (an ``httpx.Client`` /
``httpx.AsyncClient`` reused for every request), timeouts, retries, and ARM's endpoints as methods.

Retries. A request is tried again, after a backoff that doubles from ``backoff`` up to ``max_backoff``
(with jitter; ``Retry-After`` is honoured when it asks for longer, up to ``max_retry_after``), when:
- ARM answers 503 (``database_busy``: the transaction was rolled back; ``database_unavailable``): nothing
  was written, so any request may be sent again;
- the connection could not be made (nothing was sent);
- for idempotent requests only (reads; evaluations, which always carry an idempotency key; heartbeats):
  the connection broke or timed out after the request went out, and 502/504 from a proxy.
After ``retries`` more attempts the SDK raises ``Unavailable``. An evaluation keeps its idempotency key
across retries, so a retry of an ALLOW that ARM did record is answered from that record and spends nothing
twice.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from . import __version__
from ._flow import Evaluate, Flow, GetApproval, Op, Sleep, Wait, guard_flow, wait_flow
from .config import Config
from .context import current_instance, current_run_id
from .errors import ConfigurationError, Unavailable, error_for_status
from .models import Decision
from .normalize import Call

API = "/api/v1"
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
MAX_HEARTBEATS_PER_REQUEST = 1000  # the batch endpoint's cap
# 503s of the wait endpoint that say "poll instead" (a server without ARM's wait server; all waiters taken).
WAIT_REFUSALS = ("wait_unavailable", "too_many_waiters")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    data: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _reply(response: httpx.Response) -> Reply:
    data: Any = None
    if response.content:
        if "json" in response.headers.get("content-type", ""):
            try:
                data = response.json()
            except ValueError:
                data = response.text
        else:
            data = response.text
    return Reply(response.status_code, response.headers, data)


def _code(reply: Reply) -> str | None:
    return reply.data.get("code") if isinstance(reply.data, dict) else None


def _wait_fallback(reply: Reply) -> bool | None:
    """How a wait request that was not answered with the approval is read: True when this server cannot
    hold waits at all (no endpoint: 404/405; ``wait_unavailable``: a server without ARM's wait server),
    False when it cannot now (``too_many_waiters``), None when it is an answer (or an error) to keep."""
    if reply.status in (404, 405) or _code(reply) == "wait_unavailable":
        return True
    if _code(reply) == "too_many_waiters":
        return False
    return None


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class _Base:
    """What the sync and the async client share: configuration, instance resolution, retry decisions."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        instance: str | None = None,
        *,
        config: Config | None = None,
        **options: Any,
    ) -> None:
        self.config = config or Config.resolve(url, api_key, instance, **options)
        self._wait_supported = True
        self._clock = time.monotonic

    # -- shared helpers
    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.api_key}",
            "Accept": "application/json",
            "User-Agent": f"arm-sdk-python/{__version__}",
        }

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.config.timeout)

    def instance_for(self, instance: str | None = None) -> str:
        """The instance a call is made for: given, else the context's, else the configured one."""
        chosen = instance or current_instance() or self.config.instance
        if not chosen:
            raise ConfigurationError(
                "No ARM instance: pass instance=, set ARM_INSTANCE_ID, or run inside arm_sdk.context(instance=...)."
            )
        return str(chosen)

    def make_call(self, tool, params=None, *, instance=None, data_scopes=None, estimated_cost_usd=None) -> Call:
        return Call.make(
            instance=self.instance_for(instance),
            tool=tool,
            params=params,
            data_scopes=data_scopes,
            estimated_cost_usd=estimated_cost_usd,
        )

    @staticmethod
    def key_for(call: Call, *, idempotency_key: str | None, run_id: str | None) -> str:
        if idempotency_key:
            return idempotency_key
        return call.key(run_id if run_id is not None else current_run_id())

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.config.max_backoff, self.config.backoff * (2**attempt))
        delay = random.uniform(cap / 2, cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.max_retry_after))
        return delay

    def _should_retry_reply(self, reply: Reply, attempt: int, idempotent: bool) -> bool:
        if attempt >= self.config.retries:
            return False
        if reply.status == 503:
            return _code(reply) not in WAIT_REFUSALS  # the guard polls instead of waiting
        return idempotent and reply.status in (502, 504)

    def _should_retry_error(self, exc: Exception, attempt: int, idempotent: bool) -> bool:
        if attempt >= self.config.retries:
            return False
        return isinstance(exc, NOT_SENT) or (idempotent and isinstance(exc, MAYBE_SENT))

    def _unavailable(self, exc: Exception) -> Unavailable:
        return Unavailable(f"ARM at {self.config.url} did not answer: {exc!r}", code="connection_error")

    @staticmethod
    def _check(reply: Reply, what: str) -> Any:
        if not reply.ok:
            raise error_for_status(reply.status, reply.data, default_message=f"{what} failed (HTTP {reply.status}).")
        return reply.data

    @staticmethod
    def _idempotent(method: str, idempotent: bool | None) -> bool:
        return method in ("GET", "HEAD", "OPTIONS") if idempotent is None else idempotent

    @staticmethod
    def _heartbeat_bodies(instances: Iterable[str], status: dict | None) -> list[dict]:
        ids = list(dict.fromkeys(str(i) for i in instances))
        bodies = []
        for start in range(0, len(ids), MAX_HEARTBEATS_PER_REQUEST):
            body: dict[str, Any] = {"instances": ids[start : start + MAX_HEARTBEATS_PER_REQUEST]}
            if status is not None:
                body["status"] = status
            bodies.append(body)
        return bodies

    @staticmethod
    def _merge_heartbeats(answers: list[dict]) -> dict:
        merged: dict[str, Any] = {"ok": 0, "not_found": 0, "retired": 0, "results": [], "last_heartbeat_at": None}
        for answer in answers:
            for count in ("ok", "not_found", "retired"):
                merged[count] += int(answer.get(count, 0))
            merged["results"].extend(answer.get("results", []))
            merged["last_heartbeat_at"] = answer.get("last_heartbeat_at") or merged["last_heartbeat_at"]
        return merged


class Client(_Base):
    """ARM's runtime API, synchronous. ``Client()`` reads ``ARM_URL``, ``ARM_API_KEY`` and
    ``ARM_INSTANCE_ID``; arguments override them. Use one per process (it pools connections) and
    ``close()`` it, or use it as a context manager."""

    def __init__(
        self, url=None, api_key=None, instance=None, *, config=None, http: httpx.Client | None = None, **options
    ):
        super().__init__(url, api_key, instance, config=config, **options)
        self._http = http or httpx.Client(base_url=self.config.url, timeout=self._timeout())
        self._http.headers.update(self._headers())
        self._sleep = time.sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method, path, *, json=None, params=None, idempotent=None, timeout=None) -> Reply:
        """One API request with the retries described in the module docstring; any answer is returned."""
        idempotent = self._idempotent(method, idempotent)
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as exc:
                if not self._should_retry_error(exc, attempt, idempotent):
                    raise self._unavailable(exc) from exc
                self._sleep(self._delay(attempt, None))
                attempt += 1
                continue
            reply = _reply(response)
            if not self._should_retry_reply(reply, attempt, idempotent):
                return reply
            self._sleep(self._delay(attempt, _retry_after(reply.headers)))
            attempt += 1

    def _json(self, method, path, what, **kwargs) -> Any:
        return self._check(self.request(method, path, **kwargs), what)

    def api(self, method: str, path: str, **kwargs) -> Any:
        """Any ARM API call (``path`` from ``/api/v1/…``; ``json=``, ``params=``): its JSON answer, or the
        ``ArmError`` for an error answer. For the endpoints the SDK has no method for."""
        return self._json(method, path, f"{method} {path}", **kwargs)

    # -- evaluation and the guard
    def evaluate(
        self,
        tool: str,
        params=None,
        *,
        instance=None,
        data_scopes=None,
        estimated_cost_usd=None,
        approval: str | None = None,
        idempotency_key: str | None = None,
        run_id: str | None = None,
    ) -> Decision:
        """Ask ARM about one tool call and return its answer whatever it is (no exception for DENY)."""
        call = self.make_call(
            tool, params, instance=instance, data_scopes=data_scopes, estimated_cost_usd=estimated_cost_usd
        )
        key = self.key_for(call, idempotency_key=idempotency_key, run_id=run_id)
        return self._evaluate(Evaluate(call, key, approval))

    def guard(
        self,
        tool: str,
        params=None,
        *,
        instance=None,
        data_scopes=None,
        estimated_cost_usd=None,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> Decision:
        """The call may run when this returns (the ALLOW). DENY raises ``Denied`` with ARM's reasons;
        NEEDS_APPROVAL waits for a person's decision (``timeout`` seconds at most; None: until the
        approval is decided or expires) and then asks again with the same idempotency key, or raises
        ``ApprovalPending`` at once with ``wait=False``."""
        call = self.make_call(
            tool, params, instance=instance, data_scopes=data_scopes, estimated_cost_usd=estimated_cost_usd
        )
        key = self.key_for(call, idempotency_key=idempotency_key, run_id=run_id)
        return self._drive(guard_flow(call, idempotency_key=key, wait=wait, timeout=timeout, clock=self._clock))

    def guarded(self, tool: str | None = None, **options):
        """Decorator: ``@client.guarded("email.send")`` guards every call of the function (see ``arm_sdk.guarded``)."""
        from .guard import guarded

        return guarded(tool, client=self, **options)

    def _evaluate(self, op: Evaluate) -> Decision:
        body = op.call.body(idempotency_key=op.idempotency_key, approval=op.approval)
        data = self._json("POST", f"{API}/policy/evaluate/", "Evaluation", json=body, idempotent=True)
        return Decision.from_json(data, idempotency_key=op.idempotency_key)

    def _drive(self, flow: Flow) -> Any:
        try:
            op = next(flow)
            while True:
                op = flow.send(self._run(op))
        except StopIteration as done:
            return done.value
        finally:
            flow.close()

    def _run(self, op: Op) -> Any:
        if isinstance(op, Evaluate):
            return self._evaluate(op)
        if isinstance(op, Wait):
            return self._wait_once(op.approval, op.seconds)
        if isinstance(op, GetApproval):
            return self.approval(op.approval)
        if isinstance(op, Sleep):
            self._sleep(max(0.0, op.seconds))
            return None
        raise TypeError(op)

    # -- approvals
    def approval(self, approval_id: str) -> dict:
        return self._json("GET", f"{API}/approvals/{approval_id}/", "Reading the approval")

    def find_approval(self, idempotency_key: str) -> dict | None:
        """The approval opened for this idempotency key, if any (``GET /approvals/?idempotency_key=``)."""
        data = self._json("GET", f"{API}/approvals/", "Listing approvals", params={"idempotency_key": idempotency_key})
        matches = [a for a in data.get("results", []) if a.get("idempotency_key") == idempotency_key]
        return matches[0] if matches else None

    def wait_for_approval(self, approval_id: str, *, timeout: float | None = None) -> dict:
        """The approval once decided (or expired, withdrawn), or as it stands after ``timeout`` seconds."""
        deadline = None if timeout is None else self._clock() + timeout
        return self._drive(wait_flow(str(approval_id), deadline=deadline, clock=self._clock))

    def _wait_once(self, approval_id: str, seconds: int) -> tuple[dict, bool]:
        if self._wait_supported:
            reply = self.request(
                "GET",
                f"{self.config.wait_url or ''}{API}/approvals/{approval_id}/wait/",
                params={"timeout": seconds},
                timeout=self.config.timeout + seconds,
            )
            fallback = _wait_fallback(reply)
            if fallback is None:
                return self._check(reply, "Waiting for the approval"), True
            self._wait_supported = not fallback
        # Poll instead (the read raises NotFound when the 404 meant no such approval).
        return self.approval(approval_id), False

    def withdraw(self, approval_id: str, note: str = "") -> dict:
        """Withdraw a pending approval this runtime opened (409 ``not_pending`` once decided)."""
        return self._json("POST", f"{API}/approvals/{approval_id}/withdraw/", "Withdrawing", json={"note": note})

    # -- runtime context, heartbeats
    def runtime_context(self, instance: str | None = None) -> dict:
        """The instance, its version and tools, the policy as applied and the remaining budget."""
        params = {"instance": instance} if instance else None
        return self._json("GET", f"{API}/runtime/context/", "Reading the runtime context", params=params)

    def heartbeat(self, instances: Iterable[str] | None = None, *, status: dict | None = None) -> dict:
        """One heartbeat for each instance (the batch endpoint, 1000 per request); the answers merged:
        counts ``ok``/``not_found``/``retired`` and ``results`` ``[{"id", "result"}]``."""
        ids = list(instances) if instances is not None else [self.instance_for(None)]
        answers = [
            self._json("POST", f"{API}/instances/heartbeats/", "Heartbeat", json=body, idempotent=True)
            for body in self._heartbeat_bodies(ids, status)
        ]
        return self._merge_heartbeats(answers)


class AsyncClient(_Base):
    """``Client``'s asynchronous twin (``httpx.AsyncClient``); the same methods, awaited."""

    def __init__(
        self, url=None, api_key=None, instance=None, *, config=None, http: httpx.AsyncClient | None = None, **options
    ):
        super().__init__(url, api_key, instance, config=config, **options)
        self._http = http or httpx.AsyncClient(base_url=self.config.url, timeout=self._timeout())
        self._http.headers.update(self._headers())
        self._sleep = asyncio.sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def request(self, method, path, *, json=None, params=None, idempotent=None, timeout=None) -> Reply:
        idempotent = self._idempotent(method, idempotent)
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as exc:
                if not self._should_retry_error(exc, attempt, idempotent):
                    raise self._unavailable(exc) from exc
                await self._sleep(self._delay(attempt, None))
                attempt += 1
                continue
            reply = _reply(response)
            if not self._should_retry_reply(reply, attempt, idempotent):
                return reply
            await self._sleep(self._delay(attempt, _retry_after(reply.headers)))
            attempt += 1

    async def _json(self, method, path, what, **kwargs) -> Any:
        return self._check(await self.request(method, path, **kwargs), what)

    async def api(self, method: str, path: str, **kwargs) -> Any:
        return await self._json(method, path, f"{method} {path}", **kwargs)

    async def evaluate(
        self,
        tool: str,
        params=None,
        *,
        instance=None,
        data_scopes=None,
        estimated_cost_usd=None,
        approval: str | None = None,
        idempotency_key: str | None = None,
        run_id: str | None = None,
    ) -> Decision:
        call = self.make_call(
            tool, params, instance=instance, data_scopes=data_scopes, estimated_cost_usd=estimated_cost_usd
        )
        key = self.key_for(call, idempotency_key=idempotency_key, run_id=run_id)
        return await self._evaluate(Evaluate(call, key, approval))

    async def guard(
        self,
        tool: str,
        params=None,
        *,
        instance=None,
        data_scopes=None,
        estimated_cost_usd=None,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> Decision:
        call = self.make_call(
            tool, params, instance=instance, data_scopes=data_scopes, estimated_cost_usd=estimated_cost_usd
        )
        key = self.key_for(call, idempotency_key=idempotency_key, run_id=run_id)
        return await self._drive(guard_flow(call, idempotency_key=key, wait=wait, timeout=timeout, clock=self._clock))

    def guarded(self, tool: str | None = None, **options):
        from .guard import guarded

        return guarded(tool, client=self, **options)

    async def _evaluate(self, op: Evaluate) -> Decision:
        body = op.call.body(idempotency_key=op.idempotency_key, approval=op.approval)
        data = await self._json("POST", f"{API}/policy/evaluate/", "Evaluation", json=body, idempotent=True)
        return Decision.from_json(data, idempotency_key=op.idempotency_key)

    async def _drive(self, flow: Flow) -> Any:
        try:
            op = next(flow)
            while True:
                op = flow.send(await self._run(op))
        except StopIteration as done:
            return done.value
        finally:
            flow.close()

    async def _run(self, op: Op) -> Any:
        if isinstance(op, Evaluate):
            return await self._evaluate(op)
        if isinstance(op, Wait):
            return await self._wait_once(op.approval, op.seconds)
        if isinstance(op, GetApproval):
            return await self.approval(op.approval)
        if isinstance(op, Sleep):
            await self._sleep(max(0.0, op.seconds))
            return None
        raise TypeError(op)

    async def approval(self, approval_id: str) -> dict:
        return await self._json("GET", f"{API}/approvals/{approval_id}/", "Reading the approval")

    async def find_approval(self, idempotency_key: str) -> dict | None:
        data = await self._json(
            "GET", f"{API}/approvals/", "Listing approvals", params={"idempotency_key": idempotency_key}
        )
        matches = [a for a in data.get("results", []) if a.get("idempotency_key") == idempotency_key]
        return matches[0] if matches else None

    async def wait_for_approval(self, approval_id: str, *, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else self._clock() + timeout
        return await self._drive(wait_flow(str(approval_id), deadline=deadline, clock=self._clock))

    async def _wait_once(self, approval_id: str, seconds: int) -> tuple[dict, bool]:
        if self._wait_supported:
            reply = await self.request(
                "GET",
                f"{self.config.wait_url or ''}{API}/approvals/{approval_id}/wait/",
                params={"timeout": seconds},
                timeout=self.config.timeout + seconds,
            )
            fallback = _wait_fallback(reply)
            if fallback is None:
                return self._check(reply, "Waiting for the approval"), True
            self._wait_supported = not fallback
        return await self.approval(approval_id), False

    async def withdraw(self, approval_id: str, note: str = "") -> dict:
        return await self._json("POST", f"{API}/approvals/{approval_id}/withdraw/", "Withdrawing", json={"note": note})

    async def runtime_context(self, instance: str | None = None) -> dict:
        params = {"instance": instance} if instance else None
        return await self._json("GET", f"{API}/runtime/context/", "Reading the runtime context", params=params)

    async def heartbeat(self, instances: Iterable[str] | None = None, *, status: dict | None = None) -> dict:
        ids = list(instances) if instances is not None else [self.instance_for(None)]
        answers = [
            await self._json("POST", f"{API}/instances/heartbeats/", "Heartbeat", json=body, idempotent=True)
            for body in self._heartbeat_bodies(ids, status)
        ]
        return self._merge_heartbeats(answers)


__all__ = ["AsyncClient", "Client", "Reply"]
