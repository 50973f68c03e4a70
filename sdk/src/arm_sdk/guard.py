"""``guard`` as a function and as a decorator, on a process-wide default client.

    arm_sdk.guard("email.send", {"to": to})          # evaluate; returns the ALLOW, raises Denied…

    @arm_sdk.guard                                   # the function's name is the tool's call name
    def crm_lookup(customer_id: str): ...

    @arm_sdk.guarded("email.send", data_scopes=["email:send"])
    async def send(to: str, body: str): ...          # async functions are guarded with the async client

The decorator evaluates the call's bound arguments (defaults applied; ``self``/``cls`` and the names in
``exclude`` left out) before the body runs, and waits for an approval the same way ``Client.guard`` does.
The default clients come from the environment (``ARM_URL``, ``ARM_API_KEY``, ``ARM_INSTANCE_ID``) or from
``arm_sdk.configure(...)``; the async one is per event loop (an ``httpx.AsyncClient`` belongs to the loop it
was first used in).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from .client import AsyncClient, Client
from .models import Decision

_lock = threading.Lock()
_client: Client | None = None
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_settings: dict[str, Any] = {}


def configure(**settings: Any) -> None:
    """Settings for the default clients (``url``, ``api_key``, ``instance``, ``timeout``, ``retries``…);
    clients made before are closed and replaced on next use."""
    global _client
    with _lock:
        _settings.clear()
        _settings.update(settings)
        old, _client = _client, None
        _async_clients.clear()
    if old is not None:
        old.close()


def default_client() -> Client:
    global _client
    with _lock:
        if _client is None:
            _client = Client(**_settings)
        return _client


def default_async_client() -> AsyncClient:
    loop = asyncio.get_running_loop()
    with _lock:
        client = _async_clients.get(loop)
        if client is None:
            client = _async_clients[loop] = AsyncClient(**_settings)
        return client


def guard(tool, params: Mapping[str, Any] | None = None, *, client: Client | None = None, **options) -> Any:
    """``guard(tool, params, …)`` evaluates now (see ``Client.guard``); ``@guard`` on a function guards
    each of its calls under the function's name."""
    if callable(tool) and not isinstance(tool, str):
        return guarded(None, client=client, **options)(tool)
    return (client or default_client()).guard(tool, params, **options)


async def aguard(tool: str, params: Mapping[str, Any] | None = None, *, client: AsyncClient | None = None, **options):
    """``guard`` for async code (``AsyncClient.guard``)."""
    return await (client or default_async_client()).guard(tool, params, **options)


def guarded(
    tool: str | None = None,
    *,
    client: Client | AsyncClient | None = None,
    exclude: tuple[str, ...] = (),
    estimated_cost_usd: Any = None,
    **options: Any,
) -> Callable[[Callable], Callable]:
    """Decorator factory: every call of the function is guarded as ``tool`` (default: its name).
    ``estimated_cost_usd`` may be a callable of the params; other options are ``Client.guard``'s
    (``instance``, ``data_scopes``, ``run_id``, ``wait``, ``timeout``)."""

    def decorate(fn: Callable) -> Callable:
        name = tool or fn.__name__
        signature = inspect.signature(fn)

        def params_of(args, kwargs) -> dict:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            out: dict[str, Any] = {}
            for pname, value in bound.arguments.items():
                kind = signature.parameters[pname].kind
                if pname in exclude or (pname in ("self", "cls") and kind is inspect.Parameter.POSITIONAL_OR_KEYWORD):
                    continue
                if kind is inspect.Parameter.VAR_KEYWORD:
                    out.update({k: v for k, v in value.items() if k not in exclude})
                else:
                    out[pname] = value
            return out

        def guard_options(params: dict) -> dict:
            estimate = estimated_cost_usd(params) if callable(estimated_cost_usd) else estimated_cost_usd
            return {**options, "estimated_cost_usd": estimate}

        is_async = inspect.iscoroutinefunction(fn)
        if client is not None and isinstance(client, AsyncClient) != is_async:
            kind = "an async" if is_async else "a sync"
            raise TypeError(
                f"{fn.__qualname__} is {kind} function: guard it with {'AsyncClient' if is_async else 'Client'}."
            )

        if is_async:

            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                params = params_of(args, kwargs)
                arm = client or default_async_client()
                await arm.guard(name, params, **guard_options(params))
                return await fn(*args, **kwargs)

            async_wrapper.arm_tool = name  # type: ignore[attr-defined]
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            params = params_of(args, kwargs)
            arm = client or default_client()
            arm.guard(name, params, **guard_options(params))
            return fn(*args, **kwargs)

        wrapper.arm_tool = name  # type: ignore[attr-defined]
        return wrapper

    return decorate


__all__ = ["Decision", "aguard", "configure", "default_async_client", "default_client", "guard", "guarded"]
