"""The demo runtime's credentials and plan: the one file ``manage.py seed_demo`` writes and
``manage.py demo_runtime`` reads.

``seed_demo`` mints, through ``registry.services.api_key_create``, one ``runtime`` key per demo tenant
for its runtime host (unbound: batch heartbeats and usage reports for the tenant's agents) and one
``runtime`` key bound to each agent the runtime drives (ACTIVE or READONLY instances: its evaluations
and its approvals), as docs/runtime-integration.md advises. ARM stores only their hashes; the secrets
exist in this file alone, written with mode 0600 next to the SQLite database
(``db.sqlite3.demo-runtime.json``; on PostgreSQL ``postgres-<host>-<port>-<name>.demo-runtime.json`` in
the checkout), git-ignored (``*.demo-runtime.json``). The file also says what the runtime needs and may
not read through the API (a runtime key reads no registry): which instances beat, each agent's tools
with their risk and data scopes, and the models it reports usage for.

Kept, not re-minted, on every ``seed_demo`` run while each secret in the file still matches an
unrevoked key of the right tenant and binding; a key whose secret is lost (file deleted) is revoked
and replaced, each with its change record. ``seed_demo --reset`` deletes the file with the database.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from django.conf import settings

from demo.ledger import MIXES
from registry.choices import InstanceState
from registry.models import AgentInstance
from registry.services import api_key_create
from tenancy.choices import Role
from tenancy.context import Actor
from tenancy.models import ApiKey, hash_secret
from tenancy.services import api_key_revoke

FILE_SUFFIX = ".demo-runtime.json"
HOST_KEY_NAME = "demo runtime host"
AGENT_KEY_NAME = "demo runtime {name}"
# The states in which an agent process runs and beats, and those in which it also calls tools.
BEATING_STATES = (InstanceState.ACTIVE, InstanceState.READONLY, InstanceState.PAUSED, InstanceState.DRAINING)
CALLING_STATES = (InstanceState.ACTIVE, InstanceState.READONLY)


def default_keys_path() -> Path:
    """Where this database's demo runtime file lives (see the module docstring)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        if name and name != ":memory:" and not name.startswith("file:"):
            path = Path(name)
            return path.with_name(path.name + FILE_SUFFIX)
        return Path(settings.BASE_DIR) / f"sqlite-memory{FILE_SUFFIX}"
    host = db.get("HOST") or "local"
    port = db.get("PORT") or "5432"
    return Path(settings.BASE_DIR) / f"postgres-{host}-{port}-{db['NAME']}{FILE_SUFFIX}"


def read_keys_file(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None


def write_keys_file(path: Path, data: dict) -> None:
    """Write atomically, readable by its owner only (mode 0600 from the start, never wider)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_holds(tenant, secret, instance) -> bool:
    """``secret`` is an unrevoked runtime key of ``tenant``, bound to ``instance`` (None: unbound)."""
    if not isinstance(secret, str) or secret.count("_") < 2:
        return False
    prefix = secret.split("_")[1]
    key = (
        ApiKey.objects.filter(tenant=tenant, prefix=prefix, revoked_at__isnull=True)
        .select_related("instance_binding")
        .first()
    )
    return (
        key is not None
        and key.key_hash == hash_secret(secret)
        and key.roles == [Role.RUNTIME]
        and Actor.for_key(key).bound_instance_id == (instance.pk if instance is not None else None)
    )


def _keep_or_mint(tenant, name: str, instance, secret, actor: Actor) -> tuple[str, bool]:
    """(secret, minted): the key in the file if it still holds, else a new one (the old key of that name,
    whose secret is lost, revoked first)."""
    if _key_holds(tenant, secret, instance):
        return secret, False
    for stale in ApiKey.objects.filter(tenant=tenant, name=name, revoked_at__isnull=True).select_related("tenant"):
        api_key_revoke(key=stale, actor=actor)
    _key, secret = api_key_create(tenant=tenant, name=name, roles=[Role.RUNTIME], instance=instance, actor=actor)
    return secret, True


def _tools(instance) -> list[dict]:
    tools = []
    for tool in (instance.version.genome or {}).get("tool_manifest", []):
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            tools.append(
                {"name": tool["name"], "risk": tool.get("risk", "medium"), "data_scopes": tool.get("data_scopes", [])}
            )
    return tools


def _models(instance) -> list[list]:
    provider = ((instance.version.genome or {}).get("model_config") or {}).get("provider", "openai")
    return [list(mix) for mix in MIXES.get(provider, MIXES["openai"])]


def ensure_runtime_keys(tenants: list, path: Path, actor: Actor) -> int:
    """Make ``path`` hold a working key and the plan for each of ``tenants``; returns how many keys
    were minted (0 when the file already held them all: nothing written then)."""
    old = read_keys_file(path) or {}
    old_hosts = {h.get("tenant"): h for h in old.get("hosts", []) if isinstance(h, dict)}
    hosts, minted = [], 0
    for tenant in tenants:
        before = old_hosts.get(tenant.slug, {})
        before_agents = {a.get("instance"): a.get("key") for a in before.get("agents", []) if isinstance(a, dict)}
        instances = list(
            AgentInstance.objects.filter(tenant=tenant, state__in=BEATING_STATES)
            .select_related("version")
            .order_by("name", "id")
        )
        host_key, new = _keep_or_mint(tenant, HOST_KEY_NAME, None, before.get("host_key"), actor)
        minted += new
        agents = []
        for instance in instances:
            if instance.state not in CALLING_STATES:
                continue
            name = AGENT_KEY_NAME.format(name=instance.name or instance.pk)
            key, new = _keep_or_mint(tenant, name, instance, before_agents.get(str(instance.pk)), actor)
            minted += new
            agents.append(
                {
                    "instance": str(instance.pk),
                    "name": instance.name,
                    "key": key,
                    "tools": _tools(instance),
                    "models": _models(instance),
                }
            )
        hosts.append(
            {
                "tenant": tenant.slug,
                "host_key": host_key,
                "beating": [str(i.pk) for i in instances],
                "agents": agents,
            }
        )
    data = {"written_by": "manage.py seed_demo", "hosts": hosts}
    if minted or data != {k: old.get(k) for k in data}:
        write_keys_file(path, data)
    return minted
