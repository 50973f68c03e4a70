"""Normalisation done once, at the SDK's edge, so that every path (guard, the decorator, each framework
adapter) sends ARM the same call and derives the same idempotency key for it.

- Tool call names follow the runtime protocol: every character outside ``[A-Za-z0-9_-]`` becomes ``_``
  (``email.send`` → ``email_send``), the name frameworks and model APIs call a tool by. ARM's evaluate
  takes either the manifest name or the call name; idempotency keys are derived from the call name, so
  both spellings of one call get one key.
- Params are made plain JSON the way ARM stores and hashes them: tuples, sets and frozensets become
  lists (sets sorted), ``Decimal`` becomes its string (exact: JSON numbers are floats), integers beyond
  ±(2^53-1) (which ARM refuses: I-JSON) become strings, ``datetime``/``date``/``time`` ISO strings,
  ``UUID`` and ``Path`` strings, ``Enum`` its value, ``bytes`` base64, dataclasses and pydantic models
  their fields. Non-finite floats and mapping keys that are not strings are refused (``ValueError``).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import PurePath
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
CALL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_NOT_CALL_CHAR = re.compile(r"[^A-Za-z0-9_-]")
KEY_PREFIX = "arm-sdk:"


def call_name(tool: str) -> str:
    """The name a framework calls ``tool`` by (protocol: characters outside ``[A-Za-z0-9_-]`` → ``_``)."""
    if not isinstance(tool, str) or not tool:
        raise ValueError("A tool name is a non-empty string.")
    return _NOT_CALL_CHAR.sub("_", tool)


def to_json(value: Any, *, _path: str = "params") -> Any:
    """``value`` as plain JSON (dict/list/str/int/float/bool/None); see the module docstring."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return to_json(value.value, _path=_path)
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{_path}: {value!r} is not a JSON number.")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{_path}: {value!r} is not a JSON number.")
        return format(value, "f")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | PurePath):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(key, enum.Enum):
                key = key.value
            if not isinstance(key, str):
                raise ValueError(f"{_path}: key {key!r} is not a string.")
            out[key] = to_json(item, _path=f"{_path}.{key}")
        return out
    if isinstance(value, set | frozenset):
        items = [to_json(v, _path=f"{_path}[]") for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
    if isinstance(value, list | tuple):
        return [to_json(v, _path=f"{_path}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, _path=_path)
    dump = getattr(value, "model_dump", None)  # pydantic v2 models
    if callable(dump):
        return to_json(dump(mode="json"), _path=_path)
    raise ValueError(f"{_path}: {type(value).__name__} is not JSON (give ARM plain data).")


def normalize_params(params: Mapping[str, Any] | None) -> dict:
    """A tool call's params as the JSON object ARM receives."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ValueError("Tool call params are a mapping of argument names to values.")
    return to_json(params)


def normalize_scopes(scopes) -> list[str]:
    """Data scopes as ARM compares them (a set): unique, sorted."""
    if scopes is None:
        return []
    if isinstance(scopes, str):
        scopes = [scopes]
    out = sorted({str(s) for s in scopes})
    if any(not s for s in out):
        raise ValueError("Data scopes are non-empty strings.")
    return out


def normalize_estimate(value) -> str | None:
    """An estimate as ARM's decimal string (``0.25``); floats go through their shortest repr."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("estimated_cost_usd is a decimal amount.")
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value))
    except ArithmeticError as exc:
        raise ValueError(f"estimated_cost_usd {value!r} is not a decimal amount.") from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"estimated_cost_usd {value!r} is not an amount of 0 or more.")
    return format(amount, "f")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def derive_idempotency_key(*, instance: str, tool: str, params: dict, run_id: str) -> str:
    """One key per (instance, tool, params, run) so a resumed or retried run asks ARM about the same call:
    ARM then answers from that call's record (its decision, or the approval it opened) instead of opening
    a second request."""
    material = canonical([str(instance), call_name(tool), params, str(run_id)])
    return KEY_PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest()[:48]


def random_idempotency_key() -> str:
    return KEY_PREFIX + uuid.uuid4().hex


@dataclasses.dataclass(frozen=True)
class Call:
    """One tool call, normalised: what the SDK sends ARM for it, and what its key is derived from."""

    instance: str
    tool: str
    params: dict
    data_scopes: tuple[str, ...] = ()
    estimated_cost_usd: str | None = None

    @classmethod
    def make(cls, *, instance: str, tool: str, params=None, data_scopes=None, estimated_cost_usd=None) -> Call:
        if not isinstance(tool, str) or not tool.strip():
            raise ValueError("A tool name is a non-empty string.")
        return cls(
            instance=str(instance),
            tool=tool.strip(),
            params=normalize_params(params),
            data_scopes=tuple(normalize_scopes(data_scopes)),
            estimated_cost_usd=normalize_estimate(estimated_cost_usd),
        )

    def key(self, run_id: str | None) -> str:
        if run_id is None:
            return random_idempotency_key()
        return derive_idempotency_key(instance=self.instance, tool=self.tool, params=self.params, run_id=run_id)

    def body(self, *, idempotency_key: str, approval: str | None = None) -> dict:
        body: dict[str, Any] = {
            "instance": self.instance,
            "tool": self.tool,
            "params": self.params,
            "idempotency_key": idempotency_key,
        }
        if self.data_scopes:
            body["data_scopes"] = list(self.data_scopes)
        if self.estimated_cost_usd is not None:
            body["estimated_cost_usd"] = self.estimated_cost_usd
        if approval:
            body["approval"] = approval
        return body
