"""Registry reads that are more than a filter: lineage, children, genome diff."""

from __future__ import annotations

from django.db import connections
from django.db.models.expressions import RawSQL

from arm.errors import Conflict
from registry.choices import VersionState
from registry.genome import genome_diff, genome_problem
from registry.models import AgentVersion

MAX_LINEAGE_DEPTH = 1000

# Every ancestor id of one version in one statement: a recursive CTE that walks parent_id upwards inside
# the tenant, written in the SQL that SQLite (3.8.3+) and PostgreSQL both run. The depth cap is a
# belt-and-braces guard: parents are write-once and exist before their children, so the chain cannot cycle.
_ANCESTORS_SQL = """
WITH RECURSIVE ancestors(id, parent_id, depth) AS (
    SELECT {id}, {parent}, 0 FROM {table} WHERE {id} = %s AND {tenant} = %s
    UNION ALL
    SELECT v.{id}, v.{parent}, a.depth + 1 FROM {table} v JOIN ancestors a ON v.{id} = a.parent_id
    WHERE v.{tenant} = %s AND a.depth < %s
)
SELECT id FROM ancestors WHERE depth > 0
"""


def version_lineage(version: AgentVersion) -> list[AgentVersion]:
    """Ancestors from the parent up to the root (nearest first), with their templates: ONE query, the
    recursive CTE as a subquery of the version select, whatever the depth (up to ``MAX_LINEAGE_DEPTH``)."""
    if not version.parent_id:
        return []
    qs = AgentVersion.objects.filter(tenant_id=version.tenant_id)
    connection = connections[qs.db]
    quote = connection.ops.quote_name
    meta = AgentVersion._meta
    sql = _ANCESTORS_SQL.format(
        table=quote(meta.db_table),
        id=quote(meta.pk.column),
        parent=quote(meta.get_field("parent").column),
        tenant=quote(meta.get_field("tenant").column),
    )
    # Parameters in the column's own database form (UUIDs are hex text on SQLite, uuid on PostgreSQL).
    pk = meta.pk.get_db_prep_value(version.pk, connection)
    tenant = meta.get_field("tenant").target_field.get_db_prep_value(version.tenant_id, connection)
    rows = {
        v.pk: v
        for v in qs.filter(pk__in=RawSQL(sql, (pk, tenant, tenant, MAX_LINEAGE_DEPTH))).select_related("template")
    }
    chain: list[AgentVersion] = []
    current = rows.get(version.parent_id)
    while current is not None and len(chain) < MAX_LINEAGE_DEPTH:
        chain.append(current)
        current = rows.pop(current.parent_id, None) if current.parent_id else None
    return chain


CHILDREN_LIMIT = 20


def version_children(version: AgentVersion, limit: int = CHILDREN_LIMIT):
    """The direct children, oldest first, at most ``limit`` (the drawer and the API's lineage show the
    same ones; every child is listed by ``GET /api/v1/versions/?parent=<id>``)."""
    return (
        AgentVersion.objects.filter(tenant_id=version.tenant_id, parent_id=version.pk)
        .select_related("template")
        .order_by("created_at", "pk")[:limit]
    )


def version_diff(version: AgentVersion, other: AgentVersion) -> dict:
    """What changed from ``other`` to ``version``. A stored genome that breaks the genome rules (a row
    edited in the database) is not compared: 409 ``genome_unreadable`` naming the version and the rule."""
    for side in (other, version):
        problem = genome_problem(side.genome)
        if problem:
            raise Conflict(
                f"Cannot compare version {side.version_label}: its stored genome is unreadable ({problem}).",
                code="genome_unreadable",
            )
    return {"from": str(other.pk), "to": str(version.pk), **genome_diff(other.genome, version.genome)}


VERSION_CHOICES_LIMIT = 20


def deployable_version_choices(tenant, search: str = "", limit: int = VERSION_CHOICES_LIMIT) -> tuple[list, bool]:
    """The versions the create-instance form offers: not DEPRECATED or RETIRED, newest first, narrowed by
    the Directory's version ``search`` (label, template name, hash, id), at most ``limit``. Returns
    (versions, whether there are more): one bounded query however large the registry."""
    from registry.filtersets import VersionFilterSet

    qs = (
        AgentVersion.objects.filter(tenant=tenant)
        .exclude(lifecycle_state__in=[VersionState.DEPRECATED, VersionState.RETIRED])
        .select_related("template")
        .order_by("-created_at", "-pk")
    )
    search = (search or "").strip()
    if search:
        qs = VersionFilterSet({"search": search}, queryset=qs).qs
    rows = list(qs[: limit + 1])
    return rows[:limit], len(rows) > limit
