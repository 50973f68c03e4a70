"""Deploying with ARM's REST API: create an instance, activate it, drain it, retire it.

    deployer = Deployer(Client())     # a key with the operator role (and admin to mint or revoke keys)
    d = deployer.deploy(version=VERSION_ID, environment="prod", provider="eu-west", policy="support",
                        runtime_key=True)
    d.instance["id"], d.runtime_key   # the new instance (ACTIVE) and its bound runtime key, shown once
    deployer.drain(d.instance["id"])
    deployer.retire(d.instance["id"])  # DRAINING → RETIRED, then revokes the instance's keys

Environments, providers and policies are named by id or by name (names are unique per tenant, compared
ignoring case); a version by id, or by ``template=`` name and ``version_label=``. ARM's rules hold as in
the UI: deployment gates (a prod environment takes an APPROVED version), lifecycle transitions
(``Conflict`` with ARM's message when one is not allowed), roles.

Retiring revokes the keys bound to the instance, listed with ``GET /api/v1/api-keys/?instance=<id>``
(tenant admins). Each key's ``instance`` is checked here too, so an older ARM without that filter still
gives the right keys, at the cost of reading the tenant's whole key list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .client import API, Client
from .errors import ArmError, NotFound

LIVE = ("ACTIVE", "PAUSED", "READONLY")
RETIRABLE = ("DRAINING", "QUARANTINED", "PROVISIONING")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@dataclass
class Deployment:
    instance: dict
    runtime_key: str | None = None
    key: dict | None = None


@dataclass
class Retirement:
    instance: dict
    revoked_keys: list[dict] = field(default_factory=list)


class Deployer:
    def __init__(self, client: Client) -> None:
        self.client = client

    # -- reading
    def _pages(self, path: str, params: dict | None = None):
        reply = self.client._json("GET", path, "Listing", params={**(params or {}), "page_size": 1000})
        while True:
            yield from reply.get("results", [])
            if not reply.get("next"):
                return
            reply = self.client._json("GET", reply["next"], "Listing")

    def _resolve(self, kind: str, ref: str | None) -> str | None:
        if ref is None or _is_uuid(ref):
            return ref
        wanted = str(ref).casefold()
        for row in self._pages(f"{API}/{kind}/", {"search": ref}):
            if str(row.get("name", "")).casefold() == wanted:
                return row["id"]
        raise NotFound(f"No {kind[:-1]} named {ref!r} in this tenant.", code="not_found", status=404)

    def _version(self, version: str | None, template: str | None, version_label: str | None) -> str:
        if version:
            return version
        if not (template and version_label):
            raise ValueError("Name the version: version=<id>, or template=<name> and version_label=<label>.")
        template_id = self._resolve("templates", template)
        for row in self._pages(f"{API}/versions/", {"template": template_id, "search": version_label}):
            if row.get("version_label") == version_label:
                return row["id"]
        raise NotFound(f"Template {template!r} has no version {version_label!r}.", code="not_found", status=404)

    def instance(self, instance_id: str) -> dict:
        return self.client._json("GET", f"{API}/instances/{instance_id}/", "Reading the instance")

    # -- writing
    def create_instance(
        self,
        *,
        environment: str,
        provider: str,
        version: str | None = None,
        template: str | None = None,
        version_label: str | None = None,
        policy: str | None = None,
        name: str = "",
    ) -> dict:
        body: dict[str, Any] = {
            "version": self._version(version, template, version_label),
            "environment": self._resolve("environments", environment),
            "provider": self._resolve("providers", provider),
            "name": name,
        }
        if policy is not None:
            body["policy"] = self._resolve("policies", policy)
        return self.client._json("POST", f"{API}/instances/", "Creating the instance", json=body)

    def transition(self, instance_id: str, to: str, reason: str = "") -> dict:
        return self.client._json(
            "POST",
            f"{API}/instances/{instance_id}/transition/",
            f"Moving the instance to {to}",
            json={"to": to, "reason": reason},
        )

    def activate(self, instance_id: str, reason: str = "") -> dict:
        return self.transition(instance_id, "ACTIVE", reason)

    def drain(self, instance_id: str, reason: str = "") -> dict:
        return self.transition(instance_id, "DRAINING", reason)

    def create_runtime_key(self, instance_id: str, name: str = "") -> tuple[dict, str]:
        """A runtime key bound to the instance: (its record, the secret, shown once)."""
        body = {"name": name or f"runtime {instance_id}", "roles": ["runtime"], "instance": instance_id}
        record = self.client._json("POST", f"{API}/api-keys/", "Creating the runtime key", json=body)
        return record, record.pop("key")

    def deploy(self, *, activate: bool = True, runtime_key: bool = False, reason: str = "", **create) -> Deployment:
        """Create an instance (``create_instance``'s arguments), activate it, and mint its runtime key."""
        instance = self.create_instance(**create)
        if activate:
            instance = self.activate(instance["id"], reason)
        deployment = Deployment(instance=instance)
        if runtime_key:
            deployment.key, deployment.runtime_key = self.create_runtime_key(instance["id"], create.get("name", ""))
        return deployment

    def instance_keys(self, instance_id: str) -> list[dict]:
        """The unrevoked keys bound to the instance."""
        return [
            key
            for key in self._pages(f"{API}/api-keys/", {"instance": instance_id})
            if str(key.get("instance")) == str(instance_id) and not key.get("revoked_at")
        ]

    def retire(self, instance_id: str, reason: str = "", *, revoke_keys: bool = True) -> Retirement:
        """Drain (if live) and retire the instance, then revoke its keys. Safe to run again after a failure:
        a retired instance is left as it is and only its remaining keys are revoked."""
        instance = self.instance(instance_id)
        if instance["state"] in LIVE:
            instance = self.drain(instance_id, reason)
        if instance["state"] in RETIRABLE:
            instance = self.transition(instance_id, "RETIRED", reason)
        if instance["state"] != "RETIRED":
            raise ArmError(f"Instance {instance_id} is {instance['state']}, not retired.", code="invalid_transition")
        retirement = Retirement(instance=instance)
        if revoke_keys:
            for key in self.instance_keys(instance_id):
                retirement.revoked_keys.append(
                    self.client._json("DELETE", f"{API}/api-keys/{key['id']}/", "Revoking a key")
                )
        return retirement
