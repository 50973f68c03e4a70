"""Registry reads that are more than a filter: lineage, children, genome diff."""

from __future__ import annotations

from registry.genome import genome_diff
from registry.models import AgentVersion

MAX_LINEAGE_DEPTH = 1000


def version_lineage(version: AgentVersion) -> list[AgentVersion]:
    """Ancestors from the parent up to the root (nearest first). Parents are write-once and must exist
    before their children, so the chain cannot cycle; the depth cap is a belt-and-braces guard."""
    chain: list[AgentVersion] = []
    seen = {version.pk}
    current = version
    while current.parent_id and len(chain) < MAX_LINEAGE_DEPTH:
        parent = (
            AgentVersion.objects.filter(tenant_id=version.tenant_id, pk=current.parent_id)
            .select_related("template")
            .first()
        )
        if parent is None or parent.pk in seen:
            break
        chain.append(parent)
        seen.add(parent.pk)
        current = parent
    return chain


def version_children(version: AgentVersion):
    return AgentVersion.objects.filter(tenant_id=version.tenant_id, parent=version).select_related("template")


def version_diff(version: AgentVersion, other: AgentVersion) -> dict:
    """What changed from ``other`` to ``version``."""
    old = other.genome if isinstance(other.genome, dict) else {}
    new = version.genome if isinstance(version.genome, dict) else {}
    return {"from": str(other.pk), "to": str(version.pk), **genome_diff(old, new)}
