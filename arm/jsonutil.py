"""JSON values ARM can store and hash exactly: a strict decoder and the I-JSON check every input passes.

RFC 8785 canonical JSON (genome hashes, approval params hashes, the audit chain) writes numbers the way
ECMAScript does, and integers are exact only within ±(2^53-1) (I-JSON, RFC 7493). A float of magnitude
2^53 or more is an integer value outside that range: its canonical text (``1e20`` becomes
``100000000000000000000``) reads back as an integer no canonicalizer accepts, so ARM could store it but
never hash it again. Such numbers are refused on the way in, whatever their notation, with the JSON path
of the value at fault. Used by the API body parser, the genome rules, policy params and the UI forms.
"""

from __future__ import annotations

import json
import math

MAX_JSON_DEPTH = 100
MAX_SAFE_INTEGER = 2**53 - 1


class DuplicateKeyError(ValueError):
    """An object names the same key twice (JSON leaves the meaning open; ARM refuses it)."""


def _no_duplicates(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(f"duplicate key {json.dumps(key, ensure_ascii=False)} in an object")
            seen.add(key)
    return result


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def loads_strict(text):
    """``json.loads`` that refuses duplicate keys (DuplicateKeyError) and NaN / Infinity (ValueError)."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def json_path(parent: str, key) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def json_problem(value, *, root: str = "", max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``value`` cannot be stored and hashed exactly, as ``"<path>: <reason>"``, or None.

    Refused: nesting deeper than ``max_depth``; NUL characters (PostgreSQL cannot store them) and lone
    surrogates (not Unicode text) in strings and keys; numbers that are not finite or whose magnitude
    exceeds 2^53-1 (whatever the notation: ``1e20``, ``9007199254740992.0``, ``1e300``). ``root`` names
    the value itself (``"genome"``); the path goes on with ``.key`` and ``[index]``. Iterative: no
    recursion of its own, and problems are reported in document order."""
    stack = [(value, 1, root)]
    while stack:
        node, depth, path = stack.pop()
        where = path or "the body"
        if isinstance(node, str):
            problem = _string_problem(node)
            if problem:
                return f"{where}: {problem}"
            continue
        if isinstance(node, bool) or node is None:
            continue
        if isinstance(node, int):
            if abs(node) > MAX_SAFE_INTEGER:
                return f"{where}: {_RANGE}"
            continue
        if isinstance(node, float):
            if not math.isfinite(node):
                return f"{where}: numbers must be finite"
            if abs(node) > MAX_SAFE_INTEGER:
                return f"{where}: {_RANGE}"
            continue
        if isinstance(node, dict):
            if depth > max_depth:
                return f"{where}: nested deeper than {max_depth} levels"
            children = []
            for key, child in node.items():
                if isinstance(key, str):
                    problem = _string_problem(key)
                    if problem:
                        return f"{where}: a key {problem.replace('strings', 'keys', 1)}"
                children.append((child, depth + 1, json_path(path, key)))
            stack.extend(reversed(children))
        elif isinstance(node, list | tuple):
            if depth > max_depth:
                return f"{where}: nested deeper than {max_depth} levels"
            stack.extend((node[i], depth + 1, json_path(path, i)) for i in range(len(node) - 1, -1, -1))
    return None


_RANGE = (
    f"numbers must be within ±{MAX_SAFE_INTEGER} (2^53-1); integers must be within ±{MAX_SAFE_INTEGER} "
    "whatever their notation (1e20 or 9007199254740992.0 is an integer beyond it) to be hashed exactly"
)


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "strings may not contain NUL (\\u0000) characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "strings may not contain lone surrogates (\\ud800-\\udfff)"
    return None
