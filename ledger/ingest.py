"""Usage ingestion: the usage API and the OTLP receiver both call ``usage_ingest``, the one path usage
entries enter the ledger by. (Prices: ``ledger.prices``; budgets: ``ledger.budgets``.)

Ingestion, in one transaction per batch:

1. Each entry is validated on its own (``_parse_entry``); a bad entry is *rejected* with a code and a
   message and never stops the others (nothing valid is lost on a bad batch).
2. Instances (and decisions, when named) are resolved in one query each, tenant-scoped: an instance of
   another tenant, or another instance than the one a bound key is bound to, is ``instance_not_found``.
3. Costs: the runtime's own ``cost_usd`` when sent (``reported``), else tokens × the price in effect at
   ``occurred_at`` (``priced``, see ``PriceTable``; cached input tokens at the cached price), else 0
   with ``cost_source`` ``unpriced``: kept, counted in the answer (``unpriced`` and the models), listed
   on the Cost page, and priced when a price for its model arrives (``price_create`` / ``price_update``
   reprice the tenant's unpriced entries in their transaction, rollups and spend counters included).
   Providers are stored lowercase (``Anthropic`` is ``anthropic``).
4. One ``INSERT … ON CONFLICT (tenant, instance, idempotency_key) DO NOTHING RETURNING`` inserts the
   entries; the rows it returns are the ones *this* batch inserted, so a retried batch (or two racing
   copies of it) counts each entry exactly once, settled by the unique constraint. A key is its
   instance's own. Each entry not inserted is compared with the stored one (one read, of committed rows):
   the same call is a ``duplicate``; other content under the key is a ``conflict`` (code
   ``idempotency_conflict``, the differing fields named), never silently a duplicate. A key repeated in
   the batch is judged against its first copy the same way.
5. Only the inserted entries are added, grouped, to the daily rollups and to the instances' day and month
   ``actual_usd`` spend counters (upserts with increments, rows in a fixed order so concurrent batches
   lock them in the same order), then the affected budgets are evaluated from the rollups.
6. One ``USAGE_INGESTED`` change record for the batch when it accepted anything (entries and rollups
   themselves are deliberately unrecorded writes: the entries are the record).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import SimpleNamespace

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from arm.db import execute
from arm.errors import Conflict, DomainError
from arm.validators import unsafe_character
from audit.choices import EventType
from audit.services import record_change
from ledger.budgets import budgets_evaluate
from ledger.choices import CostSource, UsageSource
from ledger.models import (
    BOUND_CONSTRAINTS,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    LEDGER_FIRST_DAY,
    MAX_COST_USD,
    MAX_ROLLUP_TOKENS,
    MAX_SPAN_COST_USD,
    MAX_SPAN_LEVEL,
    MAX_TOKENS,
    MODEL_MAX_LENGTH,
    MONEY_SUM_DIGITS,
    PROVIDER_MAX_LENGTH,
    TOOL_MAX_LENGTH,
    DailyRollup,
    InstanceSpanRollup,
    Price,
    TemplateDayRollup,
    UsageEntry,
    normalize_provider,
    span_start,
)
from ledger.pricing import MICRO, ZERO, PriceTable, base_model, lock_price_table
from policies.choices import SpendPeriod
from policies.models import InstanceSpend, PolicyDecision
from registry.models import AgentInstance
from tenancy.choices import Role
from tenancy.context import Actor, current_actor
from tenancy.permissions import require_roles

USAGE_ROLES = (Role.OPERATOR, Role.RUNTIME)
MAX_ENTRIES_PER_BATCH = 1000
# A runtime's clock may run a little ahead of ARM's; anything later is refused as in the future.
MAX_CLOCK_SKEW = timedelta(minutes=5)
EARLIEST = datetime.combine(LEDGER_FIRST_DAY, time.min, tzinfo=UTC)

ENTRY_FIELDS = (
    "instance",
    "occurred_at",
    "provider",
    "model",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost_usd",
    "tool_name",
    "decision",
    "idempotency_key",
)
REQUIRED_ENTRY_FIELDS = ("instance", "occurred_at", "provider", "model", "idempotency_key")


class Result:
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # the same entry again (a retry): counted once
    CONFLICT = "conflict"  # the instance's key again with other content: refused, code idempotency_conflict
    REJECTED = "rejected"


class TooManyEntries(DomainError):
    """A usage batch over ``MAX_ENTRIES_PER_BATCH``: refused whole before anything is read or written."""

    status = 413
    code = "too_many_entries"


class RejectCode:
    VALIDATION = "validation_error"
    INSTANCE_NOT_FOUND = "instance_not_found"
    DECISION_NOT_FOUND = "decision_not_found"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    TOTAL_OUT_OF_RANGE = "total_out_of_range"  # the entry would take a rollup past its bound


@dataclass(slots=True)
class _Entry:
    index: int
    instance_id: uuid.UUID
    occurred_at: datetime
    provider: str
    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    tool_name: str
    decision_id: uuid.UUID | None
    idempotency_key: str


class _Rejected(Exception):
    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def _text(raw: dict, name: str, max_length: int, *, required: bool) -> str:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise _Rejected(RejectCode.VALIDATION, f"{name} is required.", name)
        return ""
    if not isinstance(value, str):
        raise _Rejected(RejectCode.VALIDATION, f"{name} must be a string.", name)
    if len(value) > max_length:
        raise _Rejected(RejectCode.VALIDATION, f"{name} is at most {max_length} characters.", name)
    if "\x00" in value or unsafe_character(value) or value != value.strip():
        raise _Rejected(
            RejectCode.VALIDATION,
            f"{name} must be printable text without surrounding whitespace.",
            name,
        )
    return value


def _tokens(raw: dict, name: str) -> int:
    value = raw.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise _Rejected(RejectCode.VALIDATION, f"{name} must be a whole number from 0 to {MAX_TOKENS}.", name)
    return value


def _uuid(raw: dict, name: str) -> uuid.UUID | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise _Rejected(RejectCode.VALIDATION, f"{name} must be an id (UUID string).", name)
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise _Rejected(RejectCode.VALIDATION, f"{name} must be an id (UUID string).", name) from exc


def _occurred_at(raw: dict, now: datetime) -> datetime:
    value = raw.get("occurred_at")
    if isinstance(value, str):
        try:
            value = parse_datetime(value)
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        raise _Rejected(RejectCode.VALIDATION, "occurred_at must be an ISO 8601 date and time.", "occurred_at")
    if timezone.is_naive(value):
        raise _Rejected(
            RejectCode.VALIDATION, "occurred_at needs a time zone (Z or an offset such as +02:00).", "occurred_at"
        )
    if value < EARLIEST:
        raise _Rejected(RejectCode.VALIDATION, "occurred_at is before 2000.", "occurred_at")
    if value > now + MAX_CLOCK_SKEW:
        raise _Rejected(RejectCode.VALIDATION, "occurred_at is in the future.", "occurred_at")
    return value.astimezone(UTC)


def _cost(raw: dict) -> Decimal | None:
    value = raw.get("cost_usd")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _Rejected(RejectCode.VALIDATION, "cost_usd must be a decimal number.", "cost_usd")
    try:
        cost = Decimal(str(value))
    except InvalidOperation as exc:
        raise _Rejected(RejectCode.VALIDATION, "cost_usd must be a decimal number.", "cost_usd") from exc
    if not cost.is_finite() or not ZERO <= cost <= MAX_COST_USD:
        raise _Rejected(RejectCode.VALIDATION, f"cost_usd must be from 0 to {MAX_COST_USD}.", "cost_usd")
    return cost.quantize(MICRO, rounding=ROUND_HALF_UP)


def _parse_entry(index: int, raw, now: datetime) -> _Entry:
    """One entry as sent, validated on its own (raises ``_Rejected``). Unknown fields are refused."""
    if not isinstance(raw, dict):
        raise _Rejected(RejectCode.VALIDATION, "Each entry must be a JSON object.")
    unknown = sorted(set(raw) - set(ENTRY_FIELDS))
    if unknown:
        raise _Rejected(RejectCode.VALIDATION, f"Unknown field: {unknown[0]}.", unknown[0])
    for name in REQUIRED_ENTRY_FIELDS:
        if raw.get(name) in (None, ""):
            raise _Rejected(RejectCode.VALIDATION, f"{name} is required.", name)
    instance_id = _uuid(raw, "instance")
    input_tokens = _tokens(raw, "input_tokens")
    cached_input_tokens = _tokens(raw, "cached_input_tokens")
    if cached_input_tokens > input_tokens:
        raise _Rejected(
            RejectCode.VALIDATION,
            f"cached_input_tokens ({cached_input_tokens}) is more than input_tokens ({input_tokens}): input_tokens "
            "counts every input token, those served from the provider's cache included.",
            "cached_input_tokens",
        )
    return _Entry(
        index=index,
        instance_id=instance_id,
        occurred_at=_occurred_at(raw, now),
        provider=normalize_provider(_text(raw, "provider", PROVIDER_MAX_LENGTH, required=True)),
        model=_text(raw, "model", MODEL_MAX_LENGTH, required=True),
        input_tokens=input_tokens,
        cached_input_tokens=cached_input_tokens,
        output_tokens=_tokens(raw, "output_tokens"),
        cost_usd=_cost(raw),
        tool_name=_text(raw, "tool_name", TOOL_MAX_LENGTH, required=False),
        decision_id=_uuid(raw, "decision"),
        idempotency_key=_text(raw, "idempotency_key", IDEMPOTENCY_KEY_MAX_LENGTH, required=True),
    )


@dataclass
class IngestResult:
    """Per-entry results in the order sent, and the counts. ``unpriced_models``: {(provider, model):
    entries} of the accepted entries stored unpriced (no cost sent, no price in effect)."""

    results: list[dict]
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    cost_usd: Decimal = ZERO
    alerts: list = field(default_factory=list)
    unpriced_models: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def unpriced(self) -> int:
        return sum(self.unpriced_models.values())

    def unpriced_list(self) -> list[dict]:
        return [
            {"provider": provider, "model": model, "entries": n}
            for (provider, model), n in sorted(self.unpriced_models.items())
        ]

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
            "unpriced": self.unpriced,
            "unpriced_models": self.unpriced_list(),
            "results": self.results,
        }

    def rejections(self) -> list[dict]:
        return [r for r in self.results if r["result"] == Result.REJECTED]

    def refusals(self) -> list[dict]:
        """The entries not stored for a reason the sender must act on: rejected and conflicting ones."""
        return [r for r in self.results if r["result"] in (Result.REJECTED, Result.CONFLICT)]


def _rejection(index: int, key, exc: _Rejected) -> dict:
    result = {
        "index": index,
        "idempotency_key": key if isinstance(key, str) else None,
        "result": Result.REJECTED,
        "code": exc.code,
        "message": exc.message,
    }
    if exc.field:
        result["field"] = exc.field
    return result


def usage_ingest(
    *,
    tenant,
    entries: list,
    source: str = UsageSource.API,
    actor: Actor | None = None,
    preset: dict[int, dict] | None = None,
) -> IngestResult:
    """Ingest a batch of up to ``MAX_ENTRIES_PER_BATCH`` usage entries (see the module docstring).

    Operator or runtime (admin too); a key bound to an instance reports only for it. ``preset`` maps
    positions to results decided by the caller (the OTLP receiver's refusals of spans it could not turn
    into an entry), kept in order among the others. Returns the per-entry results and counts."""
    actor = actor or current_actor()
    require_roles(actor, USAGE_ROLES, "Reporting usage")
    if not isinstance(entries, list) or not entries and not preset:
        raise ValidationError({"entries": "Give a list of at least one entry."})
    if len(entries) > MAX_ENTRIES_PER_BATCH:
        raise TooManyEntries(
            f"At most {MAX_ENTRIES_PER_BATCH} entries per batch, not {len(entries)}: split it into smaller batches."
        )
    now = timezone.now()
    results: list[dict | None] = [None] * len(entries)
    parsed: list[_Entry] = []
    for i, raw in enumerate(entries):
        if preset and i in preset:
            results[i] = preset[i]
            continue
        try:
            parsed.append(_parse_entry(i, raw, now))
        except _Rejected as exc:
            results[i] = _rejection(i, raw.get("idempotency_key") if isinstance(raw, dict) else None, exc)

    # Instances and decisions, tenant-scoped, one query each.
    bound = actor.bound_instance_id
    wanted = {e.instance_id for e in parsed if bound is None or e.instance_id == bound}
    instances = {
        pk: (version_id, template_id, environment_id)
        for pk, version_id, template_id, environment_id in AgentInstance.objects.filter(
            tenant=tenant, pk__in=wanted
        ).values_list("pk", "version_id", "version__template_id", "environment_id")
    }
    decision_ids = {e.decision_id for e in parsed if e.decision_id is not None}
    decisions = (
        dict(PolicyDecision.objects.filter(tenant=tenant, pk__in=decision_ids).values_list("pk", "instance_id"))
        if decision_ids
        else {}
    )
    valid: list[_Entry] = []
    # A key is the instance's own (the unique constraint's scope): the same key of two instances is two calls.
    seen: dict[tuple[uuid.UUID, str], _Entry] = {}
    repeats: list[tuple[_Entry, _Entry]] = []
    for e in parsed:
        if e.instance_id not in instances:
            results[e.index] = _rejection(
                e.index,
                e.idempotency_key,
                _Rejected(RejectCode.INSTANCE_NOT_FOUND, "Instance not found.", "instance"),
            )
        elif e.decision_id is not None and decisions.get(e.decision_id) != e.instance_id:
            results[e.index] = _rejection(
                e.index,
                e.idempotency_key,
                _Rejected(RejectCode.DECISION_NOT_FOUND, "Decision not found for this instance.", "decision"),
            )
        elif (e.instance_id, e.idempotency_key) in seen:
            # The same key twice in one batch: answered once the first copy's outcome is known (below).
            repeats.append((e, seen[(e.instance_id, e.idempotency_key)]))
        else:
            seen[(e.instance_id, e.idempotency_key)] = e
            valid.append(e)

    prices = PriceTable.load(tenant, {(e.provider, e.model) for e in valid if e.cost_usd is None})
    rows = _costed(valid, prices, results)

    outcome = IngestResult(results=[])
    with transaction.atomic():
        if any(cost_source == CostSource.UNPRICED for _, _, cost_source in rows):
            # Unpriced now: read their prices again under the price-table lock, so a price written
            # meanwhile is used, and one written later finds these entries to reprice.
            lock_price_table(tenant, shared=True)
            unpriced = [e for e, _, cost_source in rows if cost_source == CostSource.UNPRICED]
            prices = PriceTable.load(tenant, {(e.provider, e.model) for e in unpriced})
            rows = [r for r in rows if r[2] != CostSource.UNPRICED] + _costed(unpriced, prices, results)
        # A fixed order (the unique constraint's) so two batches sharing keys wait on each other instead of
        # deadlocking.
        rows.sort(key=lambda r: (r[0].instance_id, r[0].idempotency_key))
        inserted, out_of_range = _store_within_bounds(tenant, rows, instances, source, now)
        replays = [
            e for e, _, _ in rows if (e.instance_id, e.idempotency_key) not in inserted and e.index not in out_of_range
        ]
        stored = _stored_calls(tenant, replays)
        accepted_rows = []
        for e, cost, cost_source in rows:
            if e.index in out_of_range:
                results[e.index] = _rejection(e.index, e.idempotency_key, out_of_range[e.index])
                continue
            entry_id = inserted.get((e.instance_id, e.idempotency_key))
            if entry_id is None:
                results[e.index] = _replay_result(e, stored.get((e.instance_id, e.idempotency_key)))
                continue
            results[e.index] = {
                "index": e.index,
                "idempotency_key": e.idempotency_key,
                "result": Result.ACCEPTED,
                "id": entry_id,
                "cost_usd": str(cost),
                "cost_source": str(cost_source),
            }
            accepted_rows.append((e, cost))
            if cost_source == CostSource.UNPRICED:
                key = (e.provider, e.model)
                outcome.unpriced_models[key] = outcome.unpriced_models.get(key, 0) + 1
        for e, first in repeats:
            key = (e.instance_id, e.idempotency_key)
            results[e.index] = _repeat_result(e, first, results[first.index], stored.get(key))
        if accepted_rows:
            template_ids = {instances[e.instance_id][1] for e, _ in accepted_rows}
            days = {e.occurred_at.date() for e, _ in accepted_rows}
            outcome.alerts = budgets_evaluate(tenant=tenant, template_ids=template_ids, days=days, actor=actor)
        outcome.results = results
        for r in results:
            if r["result"] == Result.ACCEPTED:
                outcome.accepted += 1
            elif r["result"] == Result.DUPLICATE:
                outcome.duplicates += 1
            elif r["result"] == Result.CONFLICT:
                outcome.conflicts += 1
            else:
                outcome.rejected += 1
        outcome.cost_usd = sum((cost for _, cost in accepted_rows), ZERO)
        if accepted_rows:
            record_change(
                tenant=tenant,
                event_type=EventType.USAGE_INGESTED,
                target=SimpleNamespace(pk=uuid.uuid4()),
                target_type="UsageBatch",
                payload={
                    "source": str(source),
                    "accepted": outcome.accepted,
                    "duplicates": outcome.duplicates,
                    "conflicts": outcome.conflicts,
                    "rejected": outcome.rejected,
                    "unpriced": outcome.unpriced,
                    "instances": len({e.instance_id for e, _ in accepted_rows}),
                    "cost_usd": str(outcome.cost_usd),
                    "occurred_from": min(e.occurred_at for e, _ in accepted_rows),
                    "occurred_to": max(e.occurred_at for e, _ in accepted_rows),
                },
                actor=actor,
            )
    return outcome


def _costed(entries: list[_Entry], prices: PriceTable, results: list) -> list[tuple[_Entry, Decimal, str]]:
    """(entry, cost, cost source) of each entry that can be stored: its reported cost, else its tokens at
    the price in effect, else 0 unpriced. An entry whose priced cost passes ``MAX_COST_USD`` is refused
    in ``results`` instead (a reported cost has the same bound, ``_cost``)."""
    rows = []
    for e in entries:
        if e.cost_usd is not None:
            rows.append((e, e.cost_usd, CostSource.REPORTED))
            continue
        price = prices.resolve(e.provider, e.model, e.occurred_at.date())
        if price is None:
            rows.append((e, ZERO.quantize(MICRO), CostSource.UNPRICED))
            continue
        cost = price.cost(e.input_tokens, e.output_tokens, e.cached_input_tokens)
        if cost > MAX_COST_USD:
            results[e.index] = _rejection(
                e.index,
                e.idempotency_key,
                _Rejected(
                    RejectCode.VALIDATION,
                    f"These tokens at the price in effect cost {cost} USD, more than one entry may ({MAX_COST_USD}).",
                    "input_tokens",
                ),
            )
            continue
        rows.append((e, cost, CostSource.PRICED))
    return rows


# What a replay must repeat to be the same call: everything the runtime sent about it.
REPLAY_FIELDS = (
    "occurred_at",
    "provider",
    "model",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost_usd",
    "tool_name",
    "decision",
)


def _sent(e: _Entry) -> dict:
    """An entry's content as compared between a key's first use and its replays (``cost_usd``: what the
    runtime reported, ``None`` when ARM priced it)."""
    return {
        "occurred_at": e.occurred_at,
        "provider": e.provider,
        "model": e.model,
        "input_tokens": e.input_tokens,
        "cached_input_tokens": e.cached_input_tokens,
        "output_tokens": e.output_tokens,
        "cost_usd": e.cost_usd,
        "tool_name": e.tool_name,
        "decision": e.decision_id,
    }


def _differing(a: dict, b: dict) -> list[str]:
    return [name for name in REPLAY_FIELDS if a[name] != b[name]]


def _stored_calls(tenant, replays: list[_Entry]) -> dict[tuple, dict]:
    """The ledger's entries for the (instance, key) of ``replays``, as ``_sent`` shapes them. One query, by
    the unique constraint's index; it reads committed rows, so a replay racing the key's first use finds
    it once that commits (the insert waited for it)."""
    if not replays:
        return {}
    rows = UsageEntry.objects.filter(
        tenant=tenant,
        instance_id__in={e.instance_id for e in replays},
        idempotency_key__in={e.idempotency_key for e in replays},
    )
    columns = [f for f in REPLAY_FIELDS if f != "decision"]
    stored = {}
    for row in rows.values("instance_id", "idempotency_key", *columns, "cost_source", "decision_id"):
        row["cost_usd"] = row["cost_usd"] if row.pop("cost_source") == CostSource.REPORTED else None
        row["decision"] = row.pop("decision_id")
        row["provider"] = normalize_provider(row["provider"])  # stored as sent before providers were lowercased
        stored[(row.pop("instance_id"), row.pop("idempotency_key"))] = row
    return stored


def _conflict(e: _Entry, fields: list[str], where: str) -> dict:
    return {
        "index": e.index,
        "idempotency_key": e.idempotency_key,
        "result": Result.CONFLICT,
        "code": RejectCode.IDEMPOTENCY_CONFLICT,
        "message": f"This instance already used this idempotency_key {where} for another call "
        f"({', '.join(fields)} differ): a retry resends the same entry; a new call needs a new key.",
        "field": "idempotency_key",
    }


def _duplicate(e: _Entry) -> dict:
    return {"index": e.index, "idempotency_key": e.idempotency_key, "result": Result.DUPLICATE}


def _replay_result(e: _Entry, stored: dict | None) -> dict:
    """An entry whose key its instance already has: the same call again is a duplicate (counted once),
    another call a conflict."""
    if stored is not None and (fields := _differing(stored, _sent(e))):
        return _conflict(e, fields, "in the ledger")
    return _duplicate(e)


def _repeat_result(e: _Entry, first: _Entry, first_result: dict, stored: dict | None) -> dict:
    """A key sent again later in the same batch. When its first copy conflicted with the ledger, the
    ledger's entry is the call the key names; otherwise the first copy is: the same call shares its
    outcome (a duplicate of an accepted or duplicate entry, refused alike otherwise), another is a conflict."""
    if first_result["result"] == Result.CONFLICT and stored is not None:
        return _replay_result(e, stored)
    if fields := _differing(_sent(first), _sent(e)):
        return _conflict(e, fields, f"earlier in this batch (entry {first.index})")
    if first_result["result"] in (Result.ACCEPTED, Result.DUPLICATE):
        return _duplicate(e)
    return {**first_result, "index": e.index}


def _adapters():
    ops = connection.ops
    native_uuid = connection.features.has_native_uuid_field
    return (
        (lambda u: u) if native_uuid else (lambda u: None if u is None else u.hex),
        ops.adapt_datetimefield_value,
        ops.adapt_datefield_value,
        lambda d: ops.adapt_decimalfield_value(d, MONEY_SUM_DIGITS, 6),
    )


def _rows_source(model, columns: tuple[str, ...], rows: list[tuple]) -> tuple[str, list]:
    """``rows`` (adapted values, in ``columns`` order) as the source of an INSERT run by ``_execute_bulk``:
    on PostgreSQL one binary array parameter per column, unnested (``SELECT * FROM unnest(%b::uuid[],
    …)``); on SQLite a ``VALUES`` list."""
    if connection.vendor == "postgresql":
        types = [model._meta.get_field(column).db_type(connection) for column in columns]
        arrays = ", ".join(f"%b::{db_type}[]" for db_type in types)
        return f"SELECT * FROM unnest({arrays})", [list(values) for values in zip(*rows, strict=True)]
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return "VALUES " + ", ".join([one] * len(rows)), [value for row in rows for value in row]


def _execute_bulk(sql: str, params: list, *, fetch: bool = False) -> list | None:
    """Run one of ingestion's bulk statements (thousands of rows) past Django's client-side parameter
    binding, which quotes every array element into the SQL text in Python (profiled: the largest cost of
    a batch): on PostgreSQL a server-side-binding cursor sends the arrays in binary (``arm.db``)."""
    result = execute(sql, params, fetch=fetch)
    return result if fetch else None


ENTRY_COLUMNS = (
    "tenant_id",
    "instance_id",
    "version_id",
    "template_id",
    "environment_id",
    "occurred_at",
    "received_at",
    "provider",
    "model",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_source",
    "tool_name",
    "decision_id",
    "source",
    "idempotency_key",
)


def _store(tenant, rows, instances, source: str, now: datetime) -> dict[tuple, int]:
    """Insert the rows' entries, then add those inserted to the rollups and spend counters;
    {(instance id, idempotency_key): id} of the inserted."""
    if not rows:
        return {}
    inserted = _insert_entries(tenant, rows, instances, source, now)
    added = [(e, cost) for e, cost, _ in rows if (e.instance_id, e.idempotency_key) in inserted]
    if added:
        _add_to_rollups(tenant, added, instances)
        _add_to_spend(tenant, added)
    return inserted


def _bound_refusal(bound: str) -> _Rejected:
    """The refusal of an entry that would take a rollup's sum past its bound ("cost_usd" or "tokens")."""
    if bound == "cost_usd":
        message = (
            f"This entry would take its instance's spend past {MAX_SPAN_COST_USD} USD within "
            f"{1 << MAX_SPAN_LEVEL} days, the most the ledger holds: refused."
        )
        return _Rejected(RejectCode.TOTAL_OUT_OF_RANGE, message, "cost_usd")
    message = (
        f"This entry would take its instance's tokens within {1 << MAX_SPAN_LEVEL} days, or its template's on "
        f"one day and model, past {MAX_ROLLUP_TOKENS}, the most the ledger holds: refused."
    )
    return _Rejected(RejectCode.TOTAL_OUT_OF_RANGE, message, "input_tokens")


def _broken_bound(exc: IntegrityError) -> str | None:
    """The bound a failed statement broke (``BOUND_CONSTRAINTS``, by the constraint named in the
    database's message), or None for any other integrity error."""
    return next((bound for name, bound in BOUND_CONSTRAINTS.items() if name in str(exc)), None)


def _store_within_bounds(tenant, rows, instances, source: str, now: datetime) -> tuple[dict, dict[int, _Rejected]]:
    """``_store`` the batch, within the rollups' bounds: (inserted, {entry index: its refusal}).

    The bounds are the database's check constraints (``ledger.models``), so concurrent batches cannot pass
    one together. A batch that breaks one is rolled back (to a savepoint) and tried again without the
    entries that do not fit (``_fit_bounds``: the bounded rows read under lock); should the database
    still refuse, each entry is stored on its own, the database deciding each."""
    try:
        with transaction.atomic():
            return _store(tenant, rows, instances, source, now), {}
    except IntegrityError as exc:
        if _broken_bound(exc) is None:
            raise
    kept, refused = _fit_bounds(tenant, rows, instances)
    try:
        with transaction.atomic():
            return _store(tenant, kept, instances, source, now), refused
    except IntegrityError as exc:
        if _broken_bound(exc) is None:
            raise
    inserted: dict[tuple, int] = {}
    for row in kept:
        try:
            with transaction.atomic():
                inserted.update(_store(tenant, [row], instances, source, now))
        except IntegrityError as exc:
            if (bound := _broken_bound(exc)) is None:
                raise
            refused[row[0].index] = _bound_refusal(bound)
    return inserted, refused


def _fit_bounds(tenant, rows, instances) -> tuple[list, dict[int, _Rejected]]:
    """The rows whose entries fit the rollups' bounds, taken in order, and the refusals of the others.
    The bounded rows the batch adds to (its instances' blocks, its template days) are locked and read in
    the upserts' order; entries already in the ledger add nothing and pass (they are duplicates or
    conflicts). A row missing now holds at most another batch's sums when this one adds to it, far
    below any bound."""
    levels = range(MAX_SPAN_LEVEL + 1)
    days = {e.occurred_at.date() for e, _, _ in rows}
    starts = {day: [span_start(day, level) for level in levels] for day in days}
    instance_ids = {e.instance_id for e, _, _ in rows}
    spans = {
        (level, start, instance_id): [cost, tokens_in, tokens_out]
        for level, start, instance_id, cost, tokens_in, tokens_out in InstanceSpanRollup.objects.select_for_update()
        .filter(tenant=tenant, instance_id__in=instance_ids, start__in={s for ss in starts.values() for s in ss})
        .order_by("level", "start", "instance_id")
        .values_list("level", "start", "instance_id", "cost_usd", "input_tokens", "output_tokens")
    }
    days_rows = {
        (day, template_id, environment_id, provider, model): [tokens_in, tokens_out]
        for day, template_id, environment_id, provider, model, tokens_in, tokens_out in (
            TemplateDayRollup.objects.select_for_update()
            .filter(tenant=tenant, day__in=days, template_id__in={instances[i][1] for i in instance_ids})
            .order_by("day", "template_id", "environment_id", "provider", "model")
            .values_list("day", "template_id", "environment_id", "provider", "model", "input_tokens", "output_tokens")
        )
    }
    existing = set(
        UsageEntry.objects.filter(
            tenant=tenant, instance_id__in=instance_ids, idempotency_key__in={e.idempotency_key for e, _, _ in rows}
        ).values_list("instance_id", "idempotency_key")
    )
    kept, refused = [], {}
    for row in rows:
        e, cost, _ = row
        if (e.instance_id, e.idempotency_key) in existing:
            kept.append(row)
            continue
        day = e.occurred_at.date()
        _, template_id, environment_id = instances[e.instance_id]
        blocks = [
            spans.setdefault((level, start, e.instance_id), [ZERO, 0, 0]) for level, start in enumerate(starts[day])
        ]
        template_day = days_rows.setdefault((day, template_id, environment_id, e.provider, e.model), [0, 0])
        tokens = [*((b[1], b[2]) for b in blocks), tuple(template_day)]
        if any(b[0] + cost > MAX_SPAN_COST_USD for b in blocks):
            refused[e.index] = _bound_refusal("cost_usd")
        elif any(i + e.input_tokens > MAX_ROLLUP_TOKENS or o + e.output_tokens > MAX_ROLLUP_TOKENS for i, o in tokens):
            refused[e.index] = _bound_refusal("tokens")
        else:
            for b in blocks:
                b[0], b[1], b[2] = b[0] + cost, b[1] + e.input_tokens, b[2] + e.output_tokens
            template_day[0] += e.input_tokens
            template_day[1] += e.output_tokens
            kept.append(row)
    return kept, refused


def _insert_entries(tenant, rows, instances, source: str, now: datetime) -> dict[tuple, int]:
    """INSERT the rows, skipping keys their instance already has; {(instance id, idempotency_key): id} of
    those inserted.

    ``ON CONFLICT … DO NOTHING RETURNING`` (PostgreSQL, SQLite ≥ 3.35) answers exactly the rows this
    statement inserted, so what counts as new is decided by the unique constraint, not by a read."""
    u, dt, _, dec = _adapters()
    tenant_id = u(tenant.pk)
    received = dt(now)
    source = str(source)
    values = []
    for e, cost, cost_source in rows:
        version_id, template_id, environment_id = instances[e.instance_id]
        values.append(
            (
                tenant_id,
                u(e.instance_id),
                u(version_id),
                u(template_id),
                u(environment_id),
                dt(e.occurred_at),
                received,
                e.provider,
                e.model,
                e.input_tokens,
                e.cached_input_tokens,
                e.output_tokens,
                dec(cost),
                str(cost_source),
                e.tool_name,
                u(e.decision_id),
                source,
                e.idempotency_key,
            )
        )
    q = connection.ops.quote_name
    source_sql, params = _rows_source(UsageEntry, ENTRY_COLUMNS, values)
    sql = (
        f"INSERT INTO {q(UsageEntry._meta.db_table)} ({', '.join(q(c) for c in ENTRY_COLUMNS)}) {source_sql} "
        f"ON CONFLICT ({q('tenant_id')}, {q('instance_id')}, {q('idempotency_key')}) DO NOTHING "
        f"RETURNING {q('id')}, {q('instance_id')}, {q('idempotency_key')}"
    )
    to_id = uuid.UUID if not connection.features.has_native_uuid_field else None
    return {
        (to_id(instance_id) if to_id else instance_id, key): pk
        for pk, instance_id, key in _execute_bulk(sql, params, fetch=True)
    }


ROLLUP_SUMS = ("entries", "input_tokens", "output_tokens", "cost_usd")


def _upsert_sums(model, keys: tuple[str, ...], carried: tuple[str, ...], rows: list[tuple]) -> None:
    """One ``INSERT … ON CONFLICT (keys) DO UPDATE`` adding each row's sums to its row: ``rows`` are
    tuples of the ``keys + carried`` column values (already adapted) followed by entries, input tokens,
    output tokens and cost, in key order, so two batches touching the same rows lock them in the same
    order (no deadlock)."""
    if not rows:
        return
    columns = (*keys, *carried, *ROLLUP_SUMS)
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    updates = ", ".join(f"{q(c)} = {table}.{q(c)} + excluded.{q(c)}" for c in ROLLUP_SUMS)
    source_sql, params = _rows_source(model, columns, rows)
    sql = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) {source_sql} "
        f"ON CONFLICT ({', '.join(q(c) for c in keys)}) DO UPDATE SET {updates}"
    )
    _execute_bulk(sql, params)


def _add(groups: dict, key: tuple, tokens_in: int, tokens_out: int, cost: Decimal, n: int = 1) -> None:
    sums = groups.get(key)
    if sums is None:
        groups[key] = [n, tokens_in, tokens_out, cost]
    else:
        sums[0] += n
        sums[1] += tokens_in
        sums[2] += tokens_out
        sums[3] += cost


def _add_to_rollups(tenant, accepted_rows, instances, *, counts: bool = True) -> None:
    """Add the inserted entries to the three rollups (``ledger.models``), one upsert each:
    ``DailyRollup`` per (day, instance, provider, model), ``TemplateDayRollup`` per (day, template,
    environment, provider, model) and ``InstanceSpanRollup`` per (instance, block) at every level.
    ``counts=False`` adds the costs alone (entries already counted, repriced: ``_reprice_unpriced``).

    Groups are keyed by each instance's rank in id order rather than by its ``UUID``: a ``UUID`` hashes
    and compares in Python, and a batch over a few hundred instances made some 50,000 such calls
    (profiled); sorting by rank is sorting by id, so the lock order is the same."""
    u, _, d, dec = _adapters()
    tenant_id = u(tenant.pk)
    ids = sorted({e.instance_id for e, _ in accepted_rows})
    rank = {pk: i for i, pk in enumerate(ids)}
    daily: dict[tuple, list] = {}
    n = 1 if counts else 0
    for e, cost in accepted_rows:
        key = (e.occurred_at.date(), rank[e.instance_id], e.provider, e.model)
        _add(daily, key, e.input_tokens * n, e.output_tokens * n, cost, n)
    carried = [instances[pk] for pk in ids]  # (version, template, environment) by rank
    levels = range(MAX_SPAN_LEVEL + 1)
    starts: dict[date, list[date]] = {}
    by_template: dict[tuple, list] = {}
    spans: dict[tuple, list] = {}
    for (day, i, provider, model), (n, tokens_in, tokens_out, cost) in daily.items():
        _, template_id, environment_id = carried[i]
        _add(by_template, (day, template_id, environment_id, provider, model), tokens_in, tokens_out, cost, n)
        if day not in starts:
            starts[day] = [span_start(day, level) for level in levels]
        for level, start in zip(levels, starts[day], strict=True):
            _add(spans, (level, start, i), tokens_in, tokens_out, cost, n)

    by_rank = [(u(pk), tuple(u(value) for value in carried[i])) for i, pk in enumerate(ids)]
    daily_rows = []
    for day, i, provider, model in sorted(daily):
        n, tokens_in, tokens_out, cost = daily[(day, i, provider, model)]
        instance_id, (version_id, template_id, environment_id) = by_rank[i]
        daily_rows.append(
            (tenant_id, d(day), instance_id, provider, model, template_id, version_id, environment_id)
            + (n, tokens_in, tokens_out, dec(cost))
        )
    template_rows = []
    for key in sorted(by_template):
        day, template_id, environment_id, provider, model = key
        n, tokens_in, tokens_out, cost = by_template[key]
        template_rows.append(
            (tenant_id, d(day), u(template_id), u(environment_id), provider, model)
            + (n, tokens_in, tokens_out, dec(cost))
        )
    span_rows = []
    for level, start, i in sorted(spans):
        n, tokens_in, tokens_out, cost = spans[(level, start, i)]
        instance_id, (version_id, template_id, environment_id) = by_rank[i]
        span_rows.append(
            (tenant_id, level, d(start), instance_id, version_id, template_id, environment_id)
            + (n, tokens_in, tokens_out, dec(cost))
        )
    _upsert_sums(DailyRollup, ("tenant_id", "day", "instance_id", "provider", "model"), ROLLUP_CARRIED, daily_rows)
    _upsert_sums(
        TemplateDayRollup, ("tenant_id", "day", "template_id", "environment_id", "provider", "model"), (), template_rows
    )
    _upsert_sums(
        InstanceSpanRollup,
        ("tenant_id", "level", "start", "instance_id"),
        ("version_id", "template_id", "environment_id"),
        span_rows,
    )


ROLLUP_CARRIED = ("template_id", "version_id", "environment_id")


def _add_to_spend(tenant, accepted_rows) -> None:
    """Add the inserted entries' cost to each instance's day and month ``actual_usd`` counters (the rows
    policy evaluation reads), creating them when needed."""
    sums: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    for e, cost in accepted_rows:
        if cost:
            day = e.occurred_at.date()
            sums[(str(e.instance_id), SpendPeriod.DAY.value, day)] += cost
            sums[(str(e.instance_id), SpendPeriod.MONTH.value, day.replace(day=1))] += cost
    if not sums:
        return
    u, _, d, dec = _adapters()
    tenant_id = u(tenant.pk)
    rows = []
    for key in sorted(sums):
        instance_key, period, start = key
        rows.append((tenant_id, u(uuid.UUID(instance_key)), period, d(start), dec(ZERO), dec(sums[key]), 0))
    q = connection.ops.quote_name
    table = q(InstanceSpend._meta.db_table)
    columns = ("tenant_id", "instance_id", "period", "period_start", "amount_usd", "actual_usd", "allowed_calls")
    source_sql, params = _rows_source(InstanceSpend, columns, rows)
    sql = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) {source_sql} "
        f"ON CONFLICT ({q('instance_id')}, {q('period')}, {q('period_start')}) "
        f"DO UPDATE SET {q('actual_usd')} = {table}.{q('actual_usd')} + excluded.{q('actual_usd')}"
    )
    _execute_bulk(sql, params)


# ---------------------------------------------------------------- repricing (a new price covers unpriced entries)


@dataclass(slots=True)
class _Stored:
    """What repricing reads of an unpriced entry (the attributes ``_add_to_rollups`` reads)."""

    id: int
    instance_id: uuid.UUID
    version_id: uuid.UUID
    template_id: uuid.UUID
    environment_id: uuid.UUID
    occurred_at: datetime
    provider: str
    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int


REPRICE_BATCH = 500


def reprice_unpriced(tenant, price: Price, actor: Actor) -> dict | None:
    """Price the tenant's unpriced entries that ``price`` (a row being created or changed, not yet saved)
    prices once it is in the table, by the one price rule (``PriceTable.resolve`` over the stored rows
    with this one in place of its stored version): an entry of its provider (any case: entries stored
    before providers were lowercased too) and model, or of a dated release of it without a price of its
    own, on or after ``effective_from``. Each such entry's ``cost_usd`` and ``cost_source`` are updated
    (the one UPDATE the ledger's trigger allows, ``ledger.triggers``) and the costs are added to the
    rollups and the instances' spend counters, in the order ingestion takes those rows, then the
    tenant's budgets are checked. An entry whose cost would pass ``MAX_COST_USD`` stays unpriced.
    Returns {"entries": n, "cost_usd": total} or None when nothing was priced.

    Callers hold the price-table lock exclusively (``_lock_price_table``), so no ingestion stores an
    unpriced entry this misses. A repricing that would take an instance's span past its bound is
    refused whole: 409 ``total_out_of_range``."""
    since = datetime.combine(price.effective_from, time.min, tzinfo=UTC)
    candidates = [
        _Stored(*row)
        for row in UsageEntry.objects.filter(
            tenant=tenant, cost_source=CostSource.UNPRICED, provider__iexact=price.provider, occurred_at__gte=since
        )
        .filter(Q(model=price.model) | Q(model__startswith=f"{price.model}-"))
        .order_by("id")
        .values_list(
            "id",
            "instance_id",
            "version_id",
            "template_id",
            "environment_id",
            "occurred_at",
            "provider",
            "model",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
        )
    ]
    candidates = [e for e in candidates if e.model == price.model or base_model(e.model) == price.model]
    if not candidates:
        return None
    provider = normalize_provider(price.provider)
    table = PriceTable.load(tenant, {(provider, e.model) for e in candidates}).with_price(price)
    priced: list[tuple[_Stored, Decimal]] = []
    for e in candidates:
        found = table.resolve(provider, e.model, e.occurred_at.date())
        if found is None:
            continue
        cost = found.cost(e.input_tokens, e.output_tokens, e.cached_input_tokens)
        if cost <= MAX_COST_USD:
            priced.append((e, cost))
    if not priced:
        return None
    for start in range(0, len(priced), REPRICE_BATCH):
        chunk = priced[start : start + REPRICE_BATCH]
        UsageEntry.objects.filter(cost_source=CostSource.UNPRICED).bulk_update(
            [UsageEntry(pk=e.id, cost_usd=cost, cost_source=CostSource.PRICED) for e, cost in chunk],
            ["cost_usd", "cost_source"],
        )
    # As ingestion keyed the rollups: the entry carries what its instance was then.
    instances = {e.instance_id: (e.version_id, e.template_id, e.environment_id) for e, _ in priced}
    costed = [(e, cost) for e, cost in priced if cost]
    try:
        with transaction.atomic():
            _add_to_rollups(tenant, costed, instances, counts=False)
            _add_to_spend(tenant, costed)
    except IntegrityError as exc:
        if _broken_bound(exc) is None:
            raise
        raise Conflict(
            f"Pricing the unpriced usage of {price.provider}/{price.model} at this price would take an instance's "
            f"spend past {MAX_SPAN_COST_USD} USD within {1 << MAX_SPAN_LEVEL} days, the most the ledger holds.",
            code=RejectCode.TOTAL_OUT_OF_RANGE,
        ) from exc
    total = sum((cost for _, cost in priced), ZERO)
    if costed:
        budgets_evaluate(
            tenant=tenant,
            template_ids={instances[e.instance_id][1] for e, _ in costed},
            days={e.occurred_at.date() for e, _ in costed},
            actor=actor,
        )
    return {"entries": len(priced), "cost_usd": str(total)}
