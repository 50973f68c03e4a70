"""The genome: validation, RFC 8785 canonical form and its SHA-256 hash.

``genome_hash`` = lowercase hex SHA-256 of the RFC 8785 (JSON Canonicalization Scheme) UTF-8 bytes of
the genome exactly as stored and returned by the API. The genome is stored as those canonical bytes,
so the stored text, the API's JSON and the hash always agree. Defaults (a tool's ``risk``) are applied
when read, never written into the genome, so the hash is the hash of what the author sent.
"""

from __future__ import annotations

import hashlib
import re

import orjson
import rfc8785
from django.core.exceptions import ValidationError

from arm.jsonutil import MAX_JSON_DEPTH, json_problem
from registry.choices import DEFAULT_RISK, Risk

MAX_GENOME_BYTES = 256 * 1024
TOP_LEVEL_KEYS = {"model_config", "prompt_bundle_hash", "tool_manifest", "provenance"}
RISKS = tuple(Risk.values)  # (TextChoices.values builds its list on every access)
PROMPT_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")  # \Z: "$" would accept a trailing newline


def canonicalize(value, *, field: str = "genome") -> bytes:
    """RFC 8785 bytes. Raises ValidationError (on ``field``, naming the JSON path) for values that cannot be
    stored and hashed exactly: numbers beyond ±(2^53-1) whatever their notation, non-finite numbers, NUL
    characters (see ``arm.jsonutil.json_problem``). UI forms and services reach here without the API's
    body parser, so the rule is checked again."""
    problem = json_problem(value, root=field)
    if problem:
        raise ValidationError({field: f"{problem}."})
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise ValidationError(
            {field: f"Not representable as canonical JSON: {exc}. Use finite numbers within ±(2^53-1)."}
        ) from exc


class CanonicalDict(dict):
    """A JSON object read back from its stored RFC 8785 text, carrying that text as ``canonical_text``.

    The API returns the text byte for byte (no re-canonicalizing per list row) and the integrity check
    hashes exactly it, so a stored text that is not canonical (tampering) never verifies."""

    def __init__(self, value, canonical_text: str):
        super().__init__(value)
        self.canonical_text = canonical_text

    def __reduce__(self):
        return (type(self), (dict(self), self.canonical_text))


def canonical_text(value) -> str:
    """The RFC 8785 text of a genome: the stored text when it was read from the database."""
    text = getattr(value, "canonical_text", None)
    return text if text is not None else canonicalize(value).decode("utf-8")


def hash_canonical(canonical: bytes | str) -> str:
    """THE genome hash formula, written once: lowercase hex SHA-256 of the canonical UTF-8 bytes."""
    return hashlib.sha256(canonical.encode("utf-8") if isinstance(canonical, str) else canonical).hexdigest()


def genome_hash(genome) -> str:
    """The hash of a genome: of its stored canonical text when it was read from the database (so a stored
    text that is not canonical, i.e. tampered, hashes differently), else of its RFC 8785 form."""
    return hash_canonical(canonical_text(genome))


def _nonempty_str(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def validate_genome(genome) -> bytes:
    """Check every genome rule; return the canonical bytes. Errors name the JSON path at fault."""
    if not isinstance(genome, dict):
        raise ValidationError({"genome": "The genome must be a JSON object."})
    errors = [*genome_rule_errors(genome), *call_name_errors(genome.get("tool_manifest"))]
    if errors:
        raise ValidationError({"genome": errors})
    canonical = canonicalize(genome)
    if len(canonical) > MAX_GENOME_BYTES:
        raise ValidationError(
            {"genome": f"The genome is {len(canonical)} bytes canonical; the limit is {MAX_GENOME_BYTES}."}
        )
    return canonical


def genome_rule_errors(genome: dict) -> list[str]:
    """The genome rules (keys, types, the prompt hash, unique tool names, risks) ``genome`` breaks, each
    naming its JSON path; [] when it keeps them all. The size and number rules are checked apart."""
    errors: list[str] = []
    unknown = sorted(set(genome) - TOP_LEVEL_KEYS)
    if unknown:
        errors.append(f"Unknown top-level key(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}.")
    model = genome.get("model_config")
    if not isinstance(model, dict):
        errors.append("model_config is required and must be an object.")
    else:
        for key in ("provider", "name"):
            if not _nonempty_str(model.get(key)):
                errors.append(f"model_config.{key} is required and must be a non-empty string.")
        if "parameters" in model and not isinstance(model["parameters"], dict):
            errors.append("model_config.parameters must be an object.")
    prompt_hash = genome.get("prompt_bundle_hash")
    if not isinstance(prompt_hash, str) or not PROMPT_HASH_RE.match(prompt_hash):
        errors.append("prompt_bundle_hash is required: 'sha256:' followed by 64 lowercase hex characters.")
    tools = genome.get("tool_manifest")
    if not isinstance(tools, list):
        errors.append("tool_manifest is required and must be a list (it may be empty).")
    else:
        seen: set[str] = set()
        for index, tool in enumerate(tools):
            where = f"tool_manifest[{index}]"
            if not isinstance(tool, dict):
                errors.append(f"{where} must be an object.")
                continue
            name = tool.get("name")
            if not _nonempty_str(name):
                errors.append(f"{where}.name is required and must be a non-empty string.")
            elif name in seen:
                errors.append(f"{where}.name '{name}' is declared twice; tool names must be unique.")
            else:
                seen.add(name)
            if "risk" in tool and tool["risk"] not in RISKS:
                errors.append(f"{where}.risk must be one of {', '.join(RISKS)}.")
            if "version" in tool and not isinstance(tool["version"], str):
                errors.append(f"{where}.version must be a string.")
            scopes = tool.get("data_scopes", [])
            if not isinstance(scopes, list) or not all(_nonempty_str(s) for s in scopes):
                errors.append(f"{where}.data_scopes must be a list of non-empty strings.")
    if "provenance" in genome and not isinstance(genome["provenance"], dict):
        errors.append("provenance must be an object.")
    return errors


# ---------------------------------------------------------------- call names
#
# Frameworks call a tool by a function name (OpenAI and Anthropic accept ^[a-zA-Z0-9_-]{1,64}$), which a
# manifest name such as ``email.send`` is not. A manifest entry may declare its ``call_name``; without one
# it is derived (``email.send`` -> ``email_send``). Evaluation accepts either name and records the manifest
# name, which policy globs, risk overrides, decisions and approvals use. The rule is checked for new
# genomes only (``validate_genome``): a stored genome written before it keeps working, its first entry
# winning a clash.

CALL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}\Z")
_NOT_IN_CALL_NAME = re.compile(r"[^A-Za-z0-9_-]")


def derived_call_name(name: str) -> str:
    """A manifest name as frameworks can call it: every character outside [A-Za-z0-9_-] becomes ``_``."""
    return _NOT_IN_CALL_NAME.sub("_", name)


def call_name(tool: dict) -> str:
    """The name frameworks call a manifest entry by: its declared ``call_name``, else the derived one."""
    declared = tool.get("call_name")
    return declared if isinstance(declared, str) and declared else derived_call_name(str(tool.get("name", "")))


def call_name_errors(tools) -> list[str]:
    """A new manifest's call names: each declared one well formed, and every call name (declared or derived)
    unique within the manifest, so a framework's name always finds one tool."""
    errors: list[str] = []
    seen: dict[str, str] = {}
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, dict):
            continue
        where = f"tool_manifest[{index}]"
        if "call_name" in tool and not (isinstance(tool["call_name"], str) and CALL_NAME_RE.match(tool["call_name"])):
            errors.append(
                f"{where}.call_name must start with a letter or '_' and hold at most 64 of A-Z, a-z, 0-9, '_' and '-'."
            )
            continue
        name = call_name(tool)
        if name in seen:
            errors.append(
                f"{where}: call name '{name}' is already the call name of tool '{seen[name]}'; "
                "give one of them a distinct call_name."
            )
        else:
            seen[name] = str(tool.get("name"))
    return errors


def manifest_tool(genome, asked: str) -> dict | None:
    """The manifest entry a call names: the entry whose ``name`` is ``asked``, else the first whose call
    name is ``asked``; None when neither."""
    manifest = genome.get("tool_manifest") if isinstance(genome, dict) else None
    entries = [t for t in manifest if isinstance(t, dict)] if isinstance(manifest, list) else []
    for tool in entries:
        if tool.get("name") == asked:
            return tool
    for tool in entries:
        if isinstance(tool.get("name"), str) and call_name(tool) == asked:
            return tool
    return None


def manifest_tools(genome) -> list[dict]:
    """The manifest as a runtime needs it: each declared tool's name, call name, risk (default medium) and
    data scopes. Entries a stored genome holds that no validation would accept are left out."""
    manifest = genome.get("tool_manifest") if isinstance(genome, dict) else None
    tools = []
    for tool in manifest if isinstance(manifest, list) else []:
        if not isinstance(tool, dict) or not _nonempty_str(tool.get("name")):
            continue
        scopes = tool.get("data_scopes", [])
        tools.append(
            {
                "name": tool["name"],
                "call_name": call_name(tool),
                "risk": entry_risk(tool),
                "data_scopes": [s for s in scopes if isinstance(s, str)] if isinstance(scopes, list) else [],
            }
        )
    return tools


# ---------------------------------------------------------------- reading a stored genome
#
# What is stored was validated when it was written, but the row can still be edited in the database (a
# superuser with SQL rewriting the genome and its hash together: the row still verifies). Nothing that
# reads a stored genome trusts it: the API embeds its text only when it is one JSON object any client
# can parse (``load_stored_object``), and whatever shows its fields (UI, admin, diffs) first asks
# ``genome_problem`` and shows the genome as unreadable when it breaks a rule.

PROBLEM_DISPLAY_CHARS = 300
GENOME_EXCERPT_CHARS = 2000  # of an unreadable stored genome, shown by the drawer and the admin


def load_stored_object(text: str) -> dict | None:
    """The JSON object a stored genome text holds, or None when it holds none a client could read back:
    text that is not strict JSON (no NaN or Infinity, no lone surrogates, nothing after the value: orjson's
    rules), a value that is not an object, or nesting deeper than ``MAX_JSON_DEPTH`` (the input limit;
    deeper JSON breaks common decoders, Python's among them)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or _nested_deeper_than(text, value, MAX_JSON_DEPTH):
        return None
    return value


def is_json_text(text: str) -> bool:
    """Whether ``text`` is strict JSON of any kind (an object or not)."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _nested_deeper_than(text: str, value, limit: int) -> bool:
    # No walk when the text has too few brackets to nest that deep (those inside strings count too).
    if text.count("{") + text.count("[") <= limit:
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def stored_text(genome) -> str:
    """The stored text of a genome as read from the database (for display and the API), whatever it is."""
    if isinstance(genome, str):
        return genome
    text = getattr(genome, "canonical_text", None)
    if text is not None:
        return text
    try:
        return canonicalize(genome).decode("utf-8")
    except ValidationError:
        return repr(genome)


def genome_problem(genome) -> str | None:
    """Why a stored genome is not one ARM would accept (one line, for display), or None when it is. A
    genome with a problem is shown as unreadable: none of its fields is displayed or compared."""
    if not isinstance(genome, dict):
        return "the stored genome is not a JSON object ARM can read"
    text = getattr(genome, "canonical_text", None)
    size = len(text.encode("utf-8")) if text is not None else 0
    if size > MAX_GENOME_BYTES:
        return f"the stored genome is {size} bytes; the limit is {MAX_GENOME_BYTES}"
    problem = json_problem(genome, root="genome")
    if problem is None:
        errors = genome_rule_errors(genome)
        if errors:
            problem = errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    if problem is not None and len(problem) > PROBLEM_DISPLAY_CHARS:
        problem = problem[: PROBLEM_DISPLAY_CHARS - 1] + "…"
    return problem


def tool_risk(genome, tool_name: str) -> str | None:
    """The manifest's risk for ``tool_name`` (default medium), or None if the tool is not declared. A stored
    manifest is not trusted (``genome_problem``): an entry whose risk is not one of the risks counts as
    undeclared (policy evaluation denies it), never as a default."""
    manifest = genome.get("tool_manifest") if isinstance(genome, dict) else None
    for tool in manifest if isinstance(manifest, list) else []:
        if isinstance(tool, dict) and tool.get("name") == tool_name:
            return entry_risk(tool)
    return None


def entry_risk(tool: dict) -> str | None:
    """A manifest entry's risk (default medium); None when it holds something that is not a risk."""
    risk = tool.get("risk", DEFAULT_RISK)
    return risk if isinstance(risk, str) and risk in RISKS else None


def genome_diff(old: dict, new: dict) -> dict:
    """Model changes, prompt hash change, tools added / removed / changed between two genomes."""
    old_model, new_model = old.get("model_config", {}), new.get("model_config", {})
    model_changes = {
        key: {"from": old_model.get(key), "to": new_model.get(key)}
        for key in sorted(set(old_model) | set(new_model))
        if old_model.get(key) != new_model.get(key)
    }
    old_tools = {t["name"]: t for t in old.get("tool_manifest", []) if isinstance(t, dict) and "name" in t}
    new_tools = {t["name"]: t for t in new.get("tool_manifest", []) if isinstance(t, dict) and "name" in t}
    changed = []
    for name in sorted(set(old_tools) & set(new_tools)):
        a, b = old_tools[name], new_tools[name]
        fields = {
            key: {"from": a.get(key), "to": b.get(key)} for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)
        }
        if fields:
            changed.append({"name": name, "changes": fields})
    prompt_from, prompt_to = old.get("prompt_bundle_hash"), new.get("prompt_bundle_hash")
    return {
        "model_config": model_changes,
        "prompt_bundle_hash": None if prompt_from == prompt_to else {"from": prompt_from, "to": prompt_to},
        "tools_added": [new_tools[n] for n in sorted(set(new_tools) - set(old_tools))],
        "tools_removed": [old_tools[n] for n in sorted(set(old_tools) - set(new_tools))],
        "tools_changed": changed,
        "provenance_changed": old.get("provenance") != new.get("provenance"),
    }
