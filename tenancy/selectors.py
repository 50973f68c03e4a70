"""Read-side helpers for identity: how an actor reference reads to a person.

Change records, approvals, versions and keys store who acted as a reference (``user:alice``,
``key:0fc98630523f``, ``system``). People read ``alice``, ``alice via key "ci-bot"`` (a key acting for
alice), ``key "ci-bot"`` (a key made by a command, or minted from one) and ``system``. ``ActorDirectory``
resolves the key references of one page in one query: views ``prime`` it with the references they are
about to show; a reference nobody primed loads the whole tenant's key names once (still one query per
page, never one per row).
"""

from __future__ import annotations

from dataclasses import dataclass

from tenancy.models import ApiKey
from tenancy.scoping import scoped


@dataclass(frozen=True)
class KeyName:
    name: str
    principal: str  # ``user:<name>``, ``key:<root prefix>`` or '' (a command's key)


class ActorDirectory:
    def __init__(self, tenant):
        self.tenant = tenant
        self._keys: dict[str, KeyName | None] = {}
        self._complete = False
        self.queries = 0

    def _load(self, prefixes=None) -> None:
        if self.tenant is None:
            self._complete = True
            return
        qs = scoped(ApiKey.objects.all(), self.tenant)
        if prefixes is not None:
            qs = qs.filter(prefix__in=prefixes)
        self.queries += 1
        for prefix, name, principal in qs.values_list("prefix", "name", "principal"):
            self._keys[prefix] = KeyName(name, principal)
        if prefixes is None:
            self._complete = True
        else:
            for prefix in prefixes:
                self._keys.setdefault(prefix, None)

    def prime(self, refs) -> ActorDirectory:
        """Resolve the key references among ``refs`` in one query (those not known yet)."""
        if not self._complete:
            wanted = {r[4:] for r in refs if isinstance(r, str) and r.startswith("key:")} - set(self._keys)
            if wanted:
                self._load(sorted(wanted))
        return self

    def key(self, prefix: str) -> KeyName | None:
        if prefix not in self._keys and not self._complete:
            self._load()
        return self._keys.get(prefix)

    def display(self, ref) -> str:
        ref = str(ref or "")
        if not ref:
            return "—"
        if ref.startswith("user:"):
            return ref[5:]
        if ref.startswith("key:"):
            key = self.key(ref[4:])
            if key is None:
                return f"key {ref[4:]} (unknown)"
            if key.principal.startswith("user:"):
                return f'{key.principal[5:]} via key "{key.name}"'
            return f'key "{key.name}"'
        return ref


REQUEST_ATTRIBUTE = "_arm_actor_directory"


def actor_directory(request) -> ActorDirectory:
    """The request's directory (one per request, for its active tenant)."""
    directory = getattr(request, REQUEST_ATTRIBUTE, None)
    if directory is None:
        directory = ActorDirectory(getattr(request, "arm_tenant", None))
        setattr(request, REQUEST_ATTRIBUTE, directory)
    return directory


def prime_actors(request, *refs_or_iterables) -> None:
    """Prime the request's directory with references: strings, or iterables of them."""
    refs = []
    for item in refs_or_iterables:
        if isinstance(item, str):
            refs.append(item)
        else:
            refs.extend(item)
    actor_directory(request).prime(refs)
