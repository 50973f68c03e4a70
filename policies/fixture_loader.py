"""Load a tenant's environments, providers, templates with their versions (genomes) and policies from small
JSON/YAML files (``manage.py load_fixtures PATH --tenant SLUG``; the format is in fixtures/README.md).

Everything goes through the services, as the UI and the API would: ARM canonicalizes each genome and
computes its hash, validates every object and writes each change record. Re-running is safe: an object
whose name (a version: whose label in its template) already exists is skipped and reported, never
changed (versions are write-once anyway); names are compared ignoring case, as their unique constraints
compare them. A load is one transaction: any error writes nothing, and the error names the file and the
field (``templates.yaml: templates[0].versions[1].genome.tool_manifest[0].name: …``). Lives in the top
app (policies) because it writes every app, like ``seed_demo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Lower

from arm.errors import DomainError
from arm.jsonutil import loads_strict
from policies import services as policy_services
from policies.models import PolicyEnvelope
from registry import services as registry_services
from registry.genome import genome_hash
from registry.models import AgentTemplate, AgentVersion, Environment, Provider
from tenancy.context import Actor, actor_context

# file name (without extension) -> (top-level key, allowed keys, required keys)
SECTIONS = {
    "environments": ("environments", {"name", "tier", "description", "config"}, {"name", "tier"}),
    "providers": (
        "providers",
        {"name", "type", "health_endpoint", "federation_config", "description"},
        {"name", "type"},
    ),
    "templates": ("templates", {"name", "description", "owners", "tags", "versions"}, {"name", "owners"}),
    "policies": ("policies", set(policy_services.POLICY_FIELDS), {"name", "autonomy_tier"}),
}
VERSION_KEYS, VERSION_REQUIRED = {"label", "parent", "genome"}, {"label", "genome"}
EXTENSIONS = (".yaml", ".yml", ".json")
DECIMAL_FIELDS = ("cost_limit_daily_usd", "cost_limit_monthly_usd")


class FixtureError(Exception):
    """A fixture that cannot be loaded: the message names the file and the field at fault."""


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _read(path: Path):
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            return loads_strict(text)
        return yaml.safe_load(text)
    except ValueError as exc:
        raise FixtureError(f"{path}: not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise FixtureError(f"{path}: not valid YAML: {at}{getattr(exc, 'problem', None) or exc}") from exc


def _find(directory: Path, stem: str) -> Path | None:
    found = [directory / f"{stem}{ext}" for ext in EXTENSIONS if (directory / f"{stem}{ext}").is_file()]
    if len(found) > 1:
        raise FixtureError(f"{directory}: both {found[0].name} and {found[1].name}; keep one.")
    return found[0] if found else None


def _check_keys(where: str, item, allowed: set, required: set) -> None:
    if not isinstance(item, dict):
        raise FixtureError(f"{where}: expected a mapping of fields, got {type(item).__name__}.")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise FixtureError(f"{where}.{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed))}).")
    missing = sorted(required - set(item))
    if missing:
        raise FixtureError(f"{where}.{missing[0]}: required.")


def _items(path: Path, key: str, allowed: set, required: set) -> list[tuple[str, dict]]:
    data = _read(path)
    if not isinstance(data, dict) or set(data) != {key}:
        raise FixtureError(f"{path}: expected one top-level key {key!r} holding a list.")
    if not isinstance(data[key], list):
        raise FixtureError(f"{path}: {key}: expected a list.")
    items = []
    for index, item in enumerate(data[key]):
        where = f"{path}: {key}[{index}]"
        _check_keys(where, item, allowed, required)
        items.append((where, item))
    return items


def _service_error(where: str, exc: Exception) -> FixtureError:
    """A service's refusal, worded with the fixture's file, item and field."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        field_name, messages = next(iter(exc.message_dict.items()))
        prefix = f"{where}.{field_name}" if field_name != "__all__" else where
        return FixtureError(f"{prefix}: {' '.join(messages)}")
    if isinstance(exc, ValidationError):
        return FixtureError(f"{where}: {' '.join(exc.messages)}")
    return FixtureError(f"{where}: {exc.message if isinstance(exc, DomainError) else exc}")


def _genome(directory: Path, where: str, value) -> tuple[dict, str | None]:
    """The genome, and the file that holds it (as written in the fixture) when it is not inline: a fault
    in the genome is reported against that file, not the YAML that names it."""
    if isinstance(value, dict):
        return value, None
    if not isinstance(value, str):
        raise FixtureError(f"{where}.genome: a mapping or the path of a JSON file, got {type(value).__name__}.")
    path = (directory / value).resolve()
    if not path.is_relative_to(directory.resolve()) or not path.is_file():
        raise FixtureError(f"{where}.genome: no file {value!r} inside {directory}.")
    try:
        return loads_strict(path.read_text(encoding="utf-8")), str(directory / value)
    except ValueError as exc:
        raise FixtureError(f"{directory / value}: not valid JSON: {exc} (the genome of {where})") from exc


def _genome_error(genome_file: str, at: str, exc: Exception) -> FixtureError | None:
    """A refusal of the genome itself, named against the genome's own file (None: another field's)."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict") and set(exc.message_dict) == {"genome"}:
        return FixtureError(f"{genome_file}: {' '.join(exc.message_dict['genome'])} (the genome of {at})")
    return None


def _policy_data(where: str, item: dict) -> dict:
    data = dict(item)
    for key in DECIMAL_FIELDS:
        if data.get(key) is not None:
            try:
                data[key] = Decimal(str(data[key]))
            except InvalidOperation as exc:
                raise FixtureError(f'{where}.{key}: a decimal amount such as "25.00".') from exc
    return data


def load_fixtures(directory: Path, *, tenant, actor: Actor) -> LoadReport:
    """Load every fixture file found in ``directory`` into ``tenant`` (see the module docstring)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FixtureError(f"{directory}: not a directory.")
    files = {stem: _find(directory, stem) for stem in SECTIONS}
    if not any(files.values()):
        names = ", ".join(f"{stem}.yaml" for stem in SECTIONS)
        raise FixtureError(f"{directory}: no fixture file found (expected any of {names}).")
    # Every file is read and its shape checked before anything is written.
    sections = {stem: _items(path, *SECTIONS[stem]) if path else [] for stem, path in files.items()}
    report = LoadReport()
    with transaction.atomic(), actor_context(actor):
        for where, item in sections["environments"]:
            _create_named(report, where, Environment, tenant, item, registry_services.environment_create, actor)
        for where, item in sections["providers"]:
            _create_named(report, where, Provider, tenant, item, registry_services.provider_create, actor)
        for where, item in sections["templates"]:
            fields = {k: v for k, v in item.items() if k != "versions"}
            template = _create_named(
                report, where, AgentTemplate, tenant, fields, registry_services.template_create, actor
            )
            _load_versions(report, directory, where, tenant, template, item.get("versions") or [], actor)
        for where, item in sections["policies"]:
            _create_named(
                report, where, PolicyEnvelope, tenant, _policy_data(where, item), policy_services.policy_create, actor
            )
    return report


def _create_named(report: LoadReport, where: str, model, tenant, data: dict, service, actor):
    kind = model._meta.verbose_name
    name = data.get("name")
    existing = _named(model, tenant, name).first() if isinstance(name, str) else None
    if existing is not None:
        spelled = "" if existing.name == name else f" as {existing.name}"
        report.skipped.append(f"{kind} {name}: already exists{spelled}, left as is")
        return existing
    try:
        obj = service(tenant=tenant, actor=actor, **data)
    except (ValidationError, DomainError) as exc:
        raise _service_error(where, exc) from exc
    report.created.append(f"{kind} {name}")
    return obj


def _named(model, tenant, name: str):
    """The tenant's object called ``name`` the way its unique constraint compares names: both folded by the
    database's ``lower()`` (``Prod`` is ``prod``, ``registry.models.unique_name_per_tenant``), so a re-run
    that spells a name in another case skips it instead of failing on the constraint."""
    return model.objects.filter(tenant=tenant).annotate(folded=Lower("name")).filter(folded=Lower(Value(name)))


def _load_versions(report, directory: Path, where: str, tenant, template, versions, actor) -> None:
    if not isinstance(versions, list):
        raise FixtureError(f"{where}.versions: expected a list.")
    for index, item in enumerate(versions):
        at = f"{where}.versions[{index}]"
        _check_keys(at, item, VERSION_KEYS, VERSION_REQUIRED)
        label = str(item["label"])
        genome, genome_file = _genome(directory, at, item["genome"])
        existing = AgentVersion.objects.filter(tenant=tenant, template=template, version_label=label).first()
        if existing is not None:
            try:
                same = genome_hash(genome) == existing.genome_hash
            except ValidationError:
                same = False
            note = "" if same else " (the file's genome differs: versions are write-once, add a new label)"
            report.skipped.append(f"version {template.name} @{label}: already exists, left as is{note}")
            continue
        parent = None
        if item.get("parent") is not None:
            parent = AgentVersion.objects.filter(
                tenant=tenant, template=template, version_label=str(item["parent"])
            ).first()
            if parent is None:
                raise FixtureError(f"{at}.parent: no version {item['parent']!r} of {template.name} (list it earlier).")
        try:
            version = registry_services.version_create(
                tenant=tenant, template=template, version_label=label, genome=genome, parent=parent, actor=actor
            )
        except (ValidationError, DomainError) as exc:
            raise (genome_file and _genome_error(genome_file, at, exc) or _service_error(at, exc)) from exc
        report.created.append(f"version {template.name} @{label} (genome {version.genome_hash[:12]}…)")
