"""Cost reports: every read of the Cost page and the costs API, over the rollups only (never a scan of
``UsageEntry``), tenant-scoped, with a number of queries that does not grow with the data, and rows read
that grow with the templates and the instances, not with instances × days:

- Groupings by template, environment, provider, model, tag and owner, and every report's per-bucket
  totals, read ``TemplateDayRollup`` (a row per day, template, environment, provider and model).
- Groupings by instance and version read ``InstanceSpanRollup``: the range's totals from the fewest
  aligned blocks that cover it (``span_blocks``: at most two per level, so a 90-day range is read as
  about 8 rows per instance rather than 90 × models), and the top groups' series from its daily level.

- ``parse_cost_query`` validates the query parameters once for the API and the page (400 with a stable
  code: ``unknown_parameter``, ``invalid_parameter``, ``invalid_range``).
- ``cost_report`` groups spend by template, version, instance, environment, provider, model, tag or
  owner, with a series per day, week (Monday) or month: the totals per group come from one GROUP BY,
  the series only for the top ``limit`` groups, so a 90-day report over a large fleet reads the range
  once for the totals and once for the series. Tag and owner come from the template's ``tags`` and
  ``owners`` lists: the rollups are grouped by template in SQL and spread over its tags or owners in
  Python (a JSON list cannot be grouped portably on SQLite and PostgreSQL; templates are few). A
  template with two tags counts in both, so tag groups can add up to more than the total, and one
  without any is reported as ``(untagged)`` / ``(no owner)``.
- Cost per allowed tool call = actual spend of the group / the ALLOW decisions of its instances in the
  same days (``None`` when there were none, or for provider/model, which decisions do not carry).
  Decisions are attributed by the instance's current version and template.
- ``cost_rows`` streams every (bucket, group) row for the CSV export.
- ``estimates_vs_actuals`` compares, per instance, the estimates of ALLOWed calls with the reported
  actual cost (both from the ``InstanceSpend`` day counters, the ones policy cost limits read).
- ``cost_forecast`` / ``budget_forecast`` feed ``ledger.forecast`` with daily totals.
"""

from __future__ import annotations

import heapq
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from decimal import Context as DecimalContext

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F, Q, Sum
from django.db.models.functions import TruncMonth, TruncWeek

from arm.db import custom_plans
from arm.errors import DomainError
from ledger.forecast import RUN_RATE_WINDOW_DAYS, PeriodForecast, month_bounds, period_forecast
from ledger.models import LEDGER_FIRST_DAY, Budget, InstanceSpanRollup, TemplateDayRollup, span_blocks
from ledger.selectors import budget_rollups
from policies.choices import SpendPeriod
from policies.models import DecisionDayCount, InstanceSpend
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment

GROUP_BYS = ("template", "version", "instance", "environment", "provider", "model", "tag", "owner")
PERIODS = ("day", "week", "month")
DEFAULT_DAYS = 30
MAX_DAYS = 366
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
ZERO = Decimal(0)
MICRO = Decimal("0.000001")
UNTAGGED = {"tag": "(untagged)", "owner": "(no owner)"}

# The rollup columns each grouping reads (tag and owner group by template first). Instance and version
# read InstanceSpanRollup, the others TemplateDayRollup.
SPAN_GROUPS = ("instance", "version")
KEY_FIELDS = {
    "template": ("template_id",),
    "version": ("version_id",),
    "instance": ("instance_id",),
    "environment": ("environment_id",),
    "provider": ("provider",),
    "model": ("provider", "model"),
    "tag": ("template_id",),
    "owner": ("template_id",),
}
# The same keys seen from a policy decision (through the instance it was made for).
DECISION_KEYS = {
    "template": "instance__version__template_id",
    "version": "instance__version_id",
    "instance": "instance_id",
    "environment": "instance__environment_id",
    "tag": "instance__version__template_id",
    "owner": "instance__version__template_id",
}


class ReportQueryError(DomainError):
    """A report parameter that cannot be used: 400 with ``errors`` naming the parameter."""

    status = 400

    def __init__(self, message: str, *, code: str, errors: dict):
        super().__init__(message, code=code)
        self.errors = errors


@dataclass(frozen=True)
class CostQuery:
    group_by: str
    period: str
    since: date
    until: date  # inclusive
    environment: Environment | None = None
    template: AgentTemplate | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def params(self, **changes) -> dict:
        """The query as URL parameters (for links that keep the filters)."""
        values = {
            "group_by": self.group_by,
            "period": self.period,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "environment": str(self.environment.pk) if self.environment else "",
            "template": str(self.template.pk) if self.template else "",
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None)}


QUERY_PARAMETERS = ("group_by", "period", "since", "until", "environment", "template", "limit")


DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
# The dates a report may name: nothing in the ledger is older than LEDGER_FIRST_DAY, and a year before
# date.max keeps every date the report derives (the default range's +29 days, a month's next 1st) in range.
FIRST_REPORT_DAY = LEDGER_FIRST_DAY
LAST_REPORT_DAY = date(9998, 12, 31)


def _raw(params: Mapping, name: str, errors: dict) -> str:
    """The parameter's text, "" when absent or empty. Surrounding whitespace is refused, not stripped:
    stripping would turn ``?environment=%1E`` (Python strips control characters too) into no filter."""
    raw = params.get(name) or ""
    if raw != raw.strip():
        errors[name] = ["Remove the surrounding whitespace."]
        return ""
    return raw


def _date(params: Mapping, name: str, errors: dict) -> date | None:
    raw = _raw(params, name, errors)
    if not raw:
        return None
    try:
        if not DATE_RE.match(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        errors[name] = [f"A date as YYYY-MM-DD (UTC), not {raw[:40]!r}."]
        return None
    if not FIRST_REPORT_DAY <= day <= LAST_REPORT_DAY:
        errors[name] = [f"A date from {FIRST_REPORT_DAY} to {LAST_REPORT_DAY}, not {raw}."]
        return None
    return day


def parse_cost_query(
    tenant, params: Mapping, *, today: date, extra: tuple[str, ...] = (), group_by_default: str = "template"
) -> CostQuery:
    """Validate report parameters (a QueryDict or dict). Defaults: group by template, per day, the last
    30 days up to today (UTC). ``extra`` names parameters the caller handles itself (``format``, paging)."""
    unknown = sorted(set(params) - set(QUERY_PARAMETERS) - set(extra))
    if unknown:
        raise ReportQueryError(
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            code="unknown_parameter",
            errors={name: ["Unknown parameter."] for name in unknown},
        )
    errors: dict[str, list[str]] = {}
    group_by = _raw(params, "group_by", errors) or group_by_default
    if group_by not in GROUP_BYS:
        errors["group_by"] = [f"One of {', '.join(GROUP_BYS)}."]
    period = _raw(params, "period", errors) or "day"
    if period not in PERIODS:
        errors["period"] = [f"One of {', '.join(PERIODS)}."]
    since, until = _date(params, "since", errors), _date(params, "until", errors)
    limit = DEFAULT_LIMIT
    raw_limit = _raw(params, "limit", errors)
    if raw_limit:
        if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit[:9]) <= MAX_LIMIT:
            errors["limit"] = [f"An integer from 1 to {MAX_LIMIT}."]
        else:
            limit = int(raw_limit)
    references = {}
    for name, model in (("environment", Environment), ("template", AgentTemplate)):
        raw = _raw(params, name, errors)
        if not raw:
            references[name] = None
            continue
        try:
            references[name] = model.objects.get(tenant=tenant, pk=raw)
        except (model.DoesNotExist, ValueError, TypeError, ValidationError):
            errors[name] = [f"No {name} with this id in this tenant."]
            references[name] = None
    if errors:
        raise ReportQueryError(_summary(errors), code="invalid_parameter", errors=errors)
    if until is None:
        until = today if since is None or since <= today else since + timedelta(days=DEFAULT_DAYS - 1)
    if since is None:
        since = until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise ReportQueryError(
            "since is after until.", code="invalid_range", errors={"since": ["Must be on or before until."]}
        )
    if (until - since).days + 1 > MAX_DAYS:
        raise ReportQueryError(
            f"The range is at most {MAX_DAYS} days.",
            code="invalid_range",
            errors={"until": [f"At most {MAX_DAYS} days after since."]},
        )
    return CostQuery(group_by, period, since, until, references["environment"], references["template"], limit)


def _summary(errors: dict) -> str:
    return "Invalid query: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())


# ---------------------------------------------------------------- buckets


def bucket_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def buckets(query: CostQuery) -> list[date]:
    """Every bucket start the range touches, oldest first (weeks start on Monday, months on the 1st;
    the first and last can be partial)."""
    out, day = [], bucket_start(query.since, query.period)
    while day <= query.until:
        out.append(day)
        if query.period == "day":
            day += timedelta(days=1)
        elif query.period == "week":
            day += timedelta(days=7)
        else:
            day = month_bounds(day)[1]
    return out


def _bucket_expression(period: str, day_field: str = "day"):
    if period == "week":
        return TruncWeek(day_field)
    if period == "month":
        return TruncMonth(day_field)
    return F(day_field)


def _as_date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


# ---------------------------------------------------------------- the report


@dataclass
class CostGroup:
    key: str
    label: str
    cost_usd: Decimal
    entries: int
    input_tokens: int
    output_tokens: int
    series: list[Decimal] = field(default_factory=list)
    allowed_calls: int | None = None
    detail: str = ""  # a second line: the template of a version or instance, the provider of a model
    link: tuple[str, str] | None = None  # (kind, id) to drill down: ("instance", id), ("template", id) …

    @property
    def cost_per_allowed_call_usd(self) -> Decimal | None:
        if not self.allowed_calls:
            return None
        return (self.cost_usd / self.allowed_calls).quantize(Decimal("0.000001"))


@dataclass
class CostReport:
    query: CostQuery
    buckets: list[date]
    groups: list[CostGroup]  # the top ``limit`` by cost, most expensive first
    group_count: int
    total_usd: Decimal
    total_entries: int
    totals: list[Decimal]  # per bucket, every group included
    other_usd: Decimal  # groups beyond ``limit`` together
    other_series: list[Decimal]

    @property
    def empty(self) -> bool:
        return self.total_entries == 0


def _filtered(qs, query: CostQuery):
    if query.environment is not None:
        qs = qs.filter(environment=query.environment)
    if query.template is not None:
        qs = qs.filter(template=query.template)
    return qs


def _template_days(tenant, query: CostQuery):
    """TemplateDayRollup rows of the range (day field ``day``)."""
    return _filtered(TemplateDayRollup.objects.filter(tenant=tenant, day__gte=query.since, day__lte=query.until), query)


def _instance_days(tenant, query: CostQuery):
    """InstanceSpanRollup's daily rows of the range (day field ``start``), for series and the CSV."""
    return _filtered(
        InstanceSpanRollup.objects.filter(tenant=tenant, level=0, start__gte=query.since, start__lte=query.until),
        query,
    )


def blocks_q(since: date, until: date) -> Q:
    """InstanceSpanRollup rows that exactly cover ``[since, until]``: the range's ``span_blocks``."""
    condition = Q()
    for level, start in span_blocks(since, until):
        condition |= Q(level=level, start=start)
    return condition


def _instance_blocks(tenant, query: CostQuery) -> list:
    """InstanceSpanRollup rows whose blocks add up to the range, each instance's days counted once: one
    queryset per block (``span_blocks``), so that each is an index-only range scan of the unique index
    ``span_one_row_per_block`` on PostgreSQL, which carries the columns read (one condition OR-ing the
    blocks made it a bitmap scan reading every row's page)."""
    return [
        _filtered(InstanceSpanRollup.objects.filter(tenant=tenant, level=level, start=start), query)
        for level, start in span_blocks(query.since, query.until)
    ]


def _series_instances(tenant, group_by: str, top_keys: set[str]):
    """The instances whose daily rows make the top groups' series, so that the series read is a few
    ranges of the instance series index (``span_instance_series_cover``, which carries the version): the
    top instances themselves, or the instances of the top versions (an instance's version never changes,
    so its span rows are exactly its version's rows for it)."""
    if group_by == "instance":
        return list(top_keys)
    return AgentInstance.objects.filter(tenant=tenant, version_id__in=list(top_keys)).values("pk")


def _key(row: dict, fields: tuple[str, ...]) -> str:
    if fields == ("provider", "model"):
        return f"{row['provider']}/{row['model']}"
    value = row[fields[0]]
    return "" if value is None else str(value)


def _tuple_key(row: tuple, width: int) -> str:
    """``_key`` of a ``values_list`` row whose first ``width`` columns are the key fields."""
    if width == 2:
        return f"{row[0]}/{row[1]}"
    return "" if row[0] is None else str(row[0])


def _sums():
    return {
        "cost": Sum("cost_usd"),
        "n": Sum("entries"),
        "tin": Sum("input_tokens"),
        "tout": Sum("output_tokens"),
    }


def _template_map(tenant) -> dict[str, dict]:
    """{template id: {"tag": its tags, "owner": its owners}} (values, not model instances: one row each)."""
    rows = AgentTemplate.objects.filter(tenant=tenant).values_list("id", "tags", "owners")
    return {str(pk): {"tag": tags, "owner": owners} for pk, tags, owners in rows}


def _spread(template: dict | None, group_by: str) -> list[str]:
    """The tag or owner groups a template's spend counts in."""
    values = template.get(group_by) if template else None
    return list(values) if values else [""]


@dataclass
class _Shape:
    """What a report reads, worked out once from its query: the rollup columns of a group's key, whether
    groups fan out over a template's tags or owners, whether it reads the instance rollup, the range's
    daily rows and its buckets."""

    fields: tuple[str, ...]
    fan_out: bool
    by_instance: bool
    days: object  # the range's TemplateDayRollup rows (a queryset)
    buckets: list[date]
    index: dict[date, int]
    templates: dict[str, dict]  # only when groups fan out: {template id: its tags and owners}

    @classmethod
    def of(cls, tenant, query: CostQuery) -> _Shape:
        fan_out = query.group_by in ("tag", "owner")
        bucket_list = buckets(query)
        return cls(
            fields=KEY_FIELDS[query.group_by],
            fan_out=fan_out,
            by_instance=query.group_by in SPAN_GROUPS,
            days=_template_days(tenant, query),
            buckets=bucket_list,
            index={b: i for i, b in enumerate(bucket_list)},
            templates=_template_map(tenant) if fan_out else {},
        )

    def keys(self, row, query: CostQuery) -> tuple[str, ...]:
        """The groups a rollup row adds to: its key, or the tags/owners of its template."""
        key = _tuple_key(row, len(self.fields))
        return _spread(self.templates.get(key), query.group_by) if self.fan_out else (key,)


@custom_plans()
def cost_report(tenant, query: CostQuery) -> CostReport:
    """Spend grouped and bucketed as ``query`` asks; see the module docstring. At most 6 queries, in
    named phases: the top groups (1), the totals per bucket (2), the top groups' series (3), their labels
    (4) and allowed calls (5), then the report."""
    shape = _Shape.of(tenant, query)
    top, group_count, bucket_rows = _top_groups(tenant, query, shape)
    bucket_totals, total_entries = _totals_per_bucket(query, shape, bucket_rows)
    series = _top_series(tenant, query, shape, top)
    top_keys = set(series)
    labels = _labels(tenant, query.group_by, top_keys, shape.templates)
    allowed = _allowed_calls(tenant, query, top_keys, shape.templates)
    groups = []
    for key, (cost, entries, input_tokens, output_tokens) in top:
        label, detail, link = labels.get(key, (key or "(none)", "", None))
        groups.append(
            CostGroup(
                key=key,
                label=label,
                cost_usd=cost,
                entries=entries,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                series=series[key],
                allowed_calls=allowed.get(key, 0) if allowed is not None else None,
                detail=detail,
                link=link,
            )
        )
    total = sum(bucket_totals, ZERO)
    shown = [sum((g.series[i] for g in groups), ZERO) for i in range(len(shape.buckets))]
    return CostReport(
        query=query,
        buckets=shape.buckets,
        groups=groups,
        group_count=group_count,
        total_usd=total,
        total_entries=total_entries,
        totals=bucket_totals,
        other_usd=ZERO if shape.fan_out else total - sum((g.cost_usd for g in groups), ZERO),
        other_series=[ZERO if shape.fan_out else t - s for t, s in zip(bucket_totals, shown, strict=True)],
    )


def _top_groups(tenant, query: CostQuery, shape: _Shape) -> tuple[list[tuple[str, list]], int, list | None]:
    """Phase 1: the top ``limit`` groups by spend, each with [spend, entries, input tokens, output tokens],
    how many groups there are, and the per-bucket totals when the same scan gave them. By instance or
    version (thousands of groups in a fleet) the groups are ranked in SQL and only the top ones come back;
    their entries and tokens are added with their series (phase 3). The other groupings have few groups:
    summed here."""
    if shape.by_instance:
        ranked, group_count = _ranked(_instance_blocks(tenant, query), shape.fields[0], query.limit)
        return [(key, [cost, 0, 0, 0]) for key, cost in ranked], group_count, None
    width = len(shape.fields)
    totals: dict[str, list] = {}
    group_rows, bucket_rows = _group_and_bucket_totals(shape.days, shape.fields, _bucket_expression(query.period))
    for row in group_rows:
        for k in shape.keys(row, query):
            acc = totals.get(k)
            if acc is None:
                acc = totals[k] = [ZERO, 0, 0, 0]
            acc[0] += row[width] or ZERO
            acc[1] += row[width + 1] or 0
            acc[2] += row[width + 2] or 0
            acc[3] += row[width + 3] or 0
    top = heapq.nsmallest(query.limit, totals.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return top, len(totals), bucket_rows


def _totals_per_bucket(query: CostQuery, shape: _Shape, bucket_rows) -> tuple[list[Decimal], int]:
    """Phase 2: spend per bucket over every group, and the range's entries."""
    bucket_totals = [ZERO] * len(shape.buckets)
    total_entries = 0
    if bucket_rows is None:
        bucket_rows = _bucket_totals(shape.days, _bucket_expression(query.period))
    for b, cost, n in bucket_rows:
        bucket_totals[shape.index[b]] += cost or ZERO
        total_entries += n or 0
    return bucket_totals, total_entries


def _top_series(tenant, query: CostQuery, shape: _Shape, top: list[tuple[str, list]]) -> dict[str, list[Decimal]]:
    """Phase 3: the series of the top groups only (their daily rows cover the range exactly). By instance
    or version it also completes their entries and tokens in ``top``'s sums."""
    series: dict[str, list[Decimal]] = {k: [ZERO] * len(shape.buckets) for k, _ in top}
    if not series:
        return series
    fields, width, index = shape.fields, len(shape.fields), shape.index
    top_sums = dict(top)
    qs, bucket = shape.days, _bucket_expression(query.period)
    if shape.by_instance:
        qs, bucket = _instance_days(tenant, query), _bucket_expression(query.period, "start")
        series_qs = qs.filter(instance_id__in=_series_instances(tenant, query.group_by, set(series)))
    elif shape.fan_out:
        for tag, b, cost in _spread_series(qs.annotate(b=bucket), query.group_by, set(series)):
            series[tag][index[_as_date(b)]] += cost or ZERO
        return series
    elif fields == ("provider", "model"):
        condition = Q()
        for key in series:
            provider, _, model = key.partition("/")
            condition |= Q(provider=provider, model=model)
        series_qs = qs.filter(condition)
    else:
        series_qs = qs.filter(**{f"{fields[0]}__in": list(series)})
    sums = _sums() if shape.by_instance else {"cost": Sum("cost_usd")}
    rows = _raw_rows(
        series_qs.annotate(b=bucket).values(*fields, "b").annotate(**sums).values_list(*fields, "b", *sums).order_by(),
        fields,
        bucketed=True,
    )
    # the groups each source key adds to, looked up by the raw value (no string per row)
    targets: dict = {}
    for row in rows:
        raw = row[:width]
        ks = targets.get(raw)
        if ks is None:
            ks = targets[raw] = tuple(k for k in shape.keys(row, query) if k in series)
        i = index[row[width]]  # _raw_rows answers dates
        for k in ks:
            series[k][i] += row[width + 1] or ZERO
            if shape.by_instance:
                acc = top_sums[k]
                acc[1] += row[width + 2] or 0
                acc[2] += row[width + 3] or 0
                acc[3] += row[width + 4] or 0
    return series


def _bucket_totals(days, bucket) -> list[tuple]:
    """(bucket, spend, entries) over every group of ``days``."""
    rows = days.annotate(b=bucket).values("b").annotate(cost=Sum("cost_usd"), n=Sum("entries")).order_by()
    return [(_as_date(row["b"]), row["cost"], row["n"]) for row in rows]


def _group_and_bucket_totals(days, fields: tuple[str, ...], bucket) -> tuple[list[tuple], list[tuple]]:
    """The totals per group (``fields``, then spend, entries, input and output tokens) and per bucket
    (``_bucket_totals``) of ``days``. On PostgreSQL one scan of the rollup computes both (``GROUPING
    SETS``): at fleet scale each scan sums some 50,000 rows, which was a third of a report's time. SQLite
    has no ``GROUPING SETS``: two queries there."""
    if connection.vendor != "postgresql":
        grouped = days.values(*fields).annotate(**_sums()).values_list(*fields, *_sums()).order_by()
        return _raw_rows(grouped, fields, bucketed=False), _bucket_totals(days, bucket)
    inner, params = (
        days.annotate(b=bucket)
        .values_list(*fields, "b", "cost_usd", "entries", "input_tokens", "output_tokens")
        .order_by()
        .query.sql_with_params()
    )
    keys = [f"k{i}" for i in range(len(fields))]
    columns = ", ".join([*keys, "b", "cost", "n", "tin", "tout"])
    sql = (
        f"SELECT {', '.join(keys)}, b, SUM(cost), SUM(n), SUM(tin), SUM(tout), GROUPING(b) "
        f"FROM ({inner}) AS d({columns}) GROUP BY GROUPING SETS (({', '.join(keys)}), (b))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    width = len(fields)
    groups, buckets_ = [], []
    for row in fetched:
        cost, n, tokens_in, tokens_out = row[width + 1 : width + 5]  # PostgreSQL sums bigints as numeric
        if row[-1]:  # GROUPING(b) = 1: a group's row (its buckets rolled up)
            groups.append((*row[:width], cost, int(n or 0), int(tokens_in or 0), int(tokens_out or 0)))
        else:
            buckets_.append((_raw_date(row[width]), cost, int(n or 0)))
    return groups, buckets_


def _spread_series(bucketed, group_by: str, keys: set[str]) -> list[tuple]:
    """(tag or owner, bucket, spend) for ``keys`` from template rollups annotated with a bucket ``b``:
    spread over each template's list in SQL (PostgreSQL ``jsonb_array_elements_text``, SQLite
    ``json_each``), so a report over hundreds of templates fetches a row per tag and bucket, not per
    template and bucket. A template without any counts as '' (untagged / no owner)."""
    inner, params = (
        bucketed.annotate(tid=F("template_id"))
        .values("tid", "b")
        .annotate(cost=Sum("cost_usd"))
        .values_list("tid", "b", "cost")
        .order_by()
        .query.sql_with_params()
    )
    q = connection.ops.quote_name
    column = "tags" if group_by == "tag" else "owners"
    templates = q(AgentTemplate._meta.db_table)
    if connection.vendor == "postgresql":
        spread = f"LEFT JOIN LATERAL jsonb_array_elements_text(t.{q(column)}) AS e(value) ON TRUE"
    else:
        spread = f"LEFT JOIN json_each(t.{q(column)}) AS e"
    names = sorted(keys)
    sql = (
        f"SELECT COALESCE(e.value, ''), s.b, SUM(s.cost) FROM ({inner}) AS s "
        f"JOIN {templates} AS t ON t.{q('id')} = s.tid {spread} "
        f"WHERE COALESCE(e.value, '') IN ({', '.join(['%s'] * len(names))}) GROUP BY COALESCE(e.value, ''), s.b"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*params, *names))
        rows = cursor.fetchall()
    if connection.vendor == "postgresql":
        return rows
    return [(key, date.fromisoformat(str(b)[:10]), _raw_money(cost)) for key, b, cost in rows]


def _raw_money(value) -> Decimal | None:
    """A SUM of a money column read with a raw cursor: PostgreSQL answers a Decimal; SQLite a float,
    converted as Django converts its own reads (15 significant digits, the column's 6 decimals)."""
    if value is None or isinstance(value, Decimal):
        return value
    return DecimalContext(prec=15).create_decimal_from_float(float(value)).quantize(MICRO)


def _raw_date(value) -> date:
    """A date (or a week's or month's first day) read with a raw cursor: SQLite answers text."""
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return _as_date(value)


def _raw_rows(rows, key_fields: tuple[str, ...], *, bucketed: bool) -> list[tuple]:
    """``rows`` (a rollup ``values_list``: the key fields, the bucket when ``bucketed``, the cost SUM,
    then any count SUMs) read with a raw cursor and converted here as the ORM converts them (ids as
    UUIDs, buckets as dates, money as Decimal, counts as int). A fleet's report reads thousands of such
    rows (the top 50 groups' 90 days are 4,500), and the ORM's per-row converters took longer than the
    queries themselves. Converted column by column, and only where the driver's type is not already the
    one wanted (PostgreSQL answers UUIDs, dates and Decimals; SQLite text and floats)."""
    width = len(key_fields)
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    if not fetched:
        return []
    columns = list(zip(*fetched, strict=True))
    for i, name in enumerate(key_fields):
        if name.endswith("_id") and not isinstance(_first(columns[i]), uuid.UUID | None):
            to_id = rows.model._meta.get_field(name).target_field.to_python
            columns[i] = [None if v is None else to_id(v) for v in columns[i]]
    i = width
    if bucketed:
        if type(_first(columns[i])) is not date:
            columns[i] = list(map(_raw_date, columns[i]))
        i += 1
    if not isinstance(_first(columns[i]), Decimal | None):
        columns[i] = list(map(_raw_money, columns[i]))
    for j in range(i + 1, len(columns)):
        columns[j] = [int(v or 0) for v in columns[j]]
    return list(zip(*columns, strict=True))


def _first(column):
    """The column's first value that is not NULL (None when all are)."""
    return next((v for v in column if v is not None), None)


def _ranked(blocks: list, field: str, limit: int) -> tuple[list[tuple[str, Decimal]], int]:
    """The ``limit`` values of ``field`` (an instance or version id) with the most spend in the rows of
    ``blocks`` (querysets, ``_instance_blocks``), most first (ties by id, as ``cost_report`` orders), and
    how many there are: the blocks' rows are concatenated (``UNION ALL``), then summed, ranked and counted
    in SQL (``COUNT(*) OVER ()``), so a fleet's thousands of groups never come back to Python."""
    if not blocks:
        return [], 0
    parts, params = [], []
    for i, block in enumerate(blocks):
        sql, block_params = block.values_list(field, "cost_usd").order_by().query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) AS b{i}")
        params.extend(block_params)
    column = connection.ops.quote_name(field)
    sql = (
        f"SELECT {column}, SUM({connection.ops.quote_name('cost_usd')}), COUNT(*) OVER () "
        f"FROM ({' UNION ALL '.join(parts)}) AS s GROUP BY {column} ORDER BY 2 DESC, 1 LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*params, limit))
        rows = cursor.fetchall()
    to_id = InstanceSpanRollup._meta.get_field(field).target_field.to_python
    return [(str(to_id(key)), _raw_money(cost) or ZERO) for key, cost, _ in rows], (rows[0][2] if rows else 0)


def _labels(tenant, group_by: str, keys: set[str], templates: dict) -> dict[str, tuple[str, str, tuple | None]]:
    """(label, detail, drill-down link) per key, one query at most."""
    ids = [k for k in keys if k]
    out: dict[str, tuple[str, str, tuple | None]] = {}
    if group_by == "template":
        for t in AgentTemplate.objects.filter(tenant=tenant, pk__in=ids).only("id", "name"):
            out[str(t.pk)] = (t.name, "", ("template", str(t.pk)))
    elif group_by == "version":
        rows = AgentVersion.objects.filter(tenant=tenant, pk__in=ids).values("id", "version_label", "template__name")
        for r in rows:
            out[str(r["id"])] = (f"{r['template__name']}@{r['version_label']}", "", ("version", str(r["id"])))
    elif group_by == "instance":
        rows = AgentInstance.objects.filter(tenant=tenant, pk__in=ids).values(
            "id", "name", "version__version_label", "version__template__name", "environment__name"
        )
        for r in rows:
            detail = f"{r['version__template__name']}@{r['version__version_label']} · {r['environment__name']}"
            out[str(r["id"])] = (r["name"] or "(unnamed)", detail, ("instance", str(r["id"])))
    elif group_by == "environment":
        for e in Environment.objects.filter(tenant=tenant, pk__in=ids).only("id", "name"):
            out[str(e.pk)] = (e.name, "", ("environment", str(e.pk)))
        out[""] = ("(no environment)", "", None)
    elif group_by == "model":
        for key in keys:
            provider, _, model = key.partition("/")
            out[key] = (model, provider, None)
    elif group_by in ("tag", "owner"):
        for key in keys:
            out[key] = (key or UNTAGGED[group_by], "", (group_by, key) if key else None)
    return out


def _allowed_calls(tenant, query: CostQuery, keys: set[str], templates: dict) -> dict[str, int] | None:
    """ALLOW decisions per group key over the query's days (None for groupings decisions cannot see),
    from the counters evaluation keeps with each decision, never from the decision rows (a fleet takes
    millions a day): by instance and version the instances' day counters (``InstanceSpend``), otherwise
    the per template and environment day counts (``DecisionDayCount``)."""
    if query.group_by not in DECISION_KEYS:
        return None
    wanted = [k for k in keys if k]
    if not wanted:
        return {}
    if query.group_by in SPAN_GROUPS:  # the top instances or versions already passed the report's filters
        path = "instance_id" if query.group_by == "instance" else "instance__version_id"
        rows = InstanceSpend.objects.filter(
            tenant=tenant,
            period=SpendPeriod.DAY,
            period_start__gte=query.since,
            period_start__lte=query.until,
            **{f"{path}__in": wanted},
        )
    else:
        rows = DecisionDayCount.objects.filter(tenant=tenant, day__gte=query.since, day__lte=query.until)
        if query.environment is not None:
            rows = rows.filter(environment=query.environment)
        if query.template is not None:
            rows = rows.filter(template=query.template)
        path = "environment_id" if query.group_by == "environment" else "template_id"
        if query.group_by == "template":
            rows = rows.filter(template_id__in=wanted)
    fan_out = query.group_by in ("tag", "owner")
    out: dict[str, int] = defaultdict(int)
    for value, n in rows.values_list(path).annotate(n=Sum("allowed_calls")).order_by():
        key = "" if value is None else str(value)
        for k in _spread(templates.get(key), query.group_by) if fan_out else (key,):
            if k in keys:
                out[k] += n or 0
    return out


# ---------------------------------------------------------------- CSV rows

CSV_COLUMNS = (
    "period_start",
    "group_by",
    "key",
    "label",
    "cost_usd",
    "entries",
    "input_tokens",
    "output_tokens",
)

_CSV_LABELS = {
    "template": ("template__name",),
    "version": ("template__name", "version__version_label"),
    "instance": ("instance__name",),
    "environment": ("environment__name",),
}


def cost_rows(tenant, query: CostQuery) -> Iterator[dict]:
    """Every (bucket, group) with spend in the range, oldest bucket first, for the CSV export; streamed
    from one query (tag and owner spread per template as in ``cost_report``)."""
    fields = KEY_FIELDS[query.group_by]
    fan_out = query.group_by in ("tag", "owner")
    label_fields = () if fan_out else _CSV_LABELS.get(query.group_by, ())
    templates = _template_map(tenant) if fan_out else {}
    if query.group_by in SPAN_GROUPS:
        rows, bucket = _instance_days(tenant, query), _bucket_expression(query.period, "start")
    else:
        rows, bucket = _template_days(tenant, query), _bucket_expression(query.period)
    qs = rows.annotate(b=bucket).values("b", *fields, *label_fields).annotate(**_sums()).order_by("b", *fields)
    with custom_plans():
        pending: dict[str, dict] = {}
        current = None
        for row in qs.iterator(chunk_size=2000):
            b = _as_date(row["b"])
            if fan_out and current is not None and b != current:
                yield from _flush(pending, current, query.group_by)
                pending = {}
            current = b
            key = _key(row, fields)
            if fan_out:
                for k in _spread(templates.get(key), query.group_by):
                    acc = pending.setdefault(k, {"cost": ZERO, "n": 0, "tin": 0, "tout": 0})
                    acc["cost"] += row["cost"] or ZERO
                    acc["n"] += row["n"] or 0
                    acc["tin"] += row["tin"] or 0
                    acc["tout"] += row["tout"] or 0
                continue
            if query.group_by == "model":
                label = row["model"]
            elif query.group_by == "provider":
                label = row["provider"]
            elif query.group_by == "version":
                label = f"{row['template__name']}@{row['version__version_label']}"
            else:
                label = row[label_fields[0]] or ("(no environment)" if query.group_by == "environment" else "")
            yield {
                "period_start": b.isoformat(),
                "group_by": query.group_by,
                "key": key,
                "label": label,
                "cost_usd": money_text(row["cost"]),
                "entries": row["n"],
                "input_tokens": row["tin"],
                "output_tokens": row["tout"],
            }
        if fan_out and current is not None:
            yield from _flush(pending, current, query.group_by)


def money_text(value) -> str:
    """Money as the cost answers (API, CSV) print it: fixed-point text with the ledger's 6 places, never
    exponent notation. SQLite's SUM is a float, which Django turns into 15 significant digits
    (``39.148633000000000``, ``0E-15``) when it is an aggregate rather than a column; None reads 0."""
    # ``+ ZERO`` turns a negative zero (a difference of floats rounding to nothing) into 0.000000
    return format((value or ZERO).quantize(MICRO, rounding=ROUND_HALF_UP) + ZERO, "f")


def _flush(pending: dict, bucket: date, group_by: str) -> Iterator[dict]:
    for key in sorted(pending):
        acc = pending[key]
        yield {
            "period_start": bucket.isoformat(),
            "group_by": group_by,
            "key": key,
            "label": key or UNTAGGED[group_by],
            "cost_usd": money_text(acc["cost"]),
            "entries": acc["n"],
            "input_tokens": acc["tin"],
            "output_tokens": acc["tout"],
        }


# ---------------------------------------------------------------- estimated vs actual

ESTIMATE_ORDERINGS = {
    "actual": ("-actual", "instance__name"),
    "estimated": ("-estimated", "instance__name"),
    "difference": ("-difference", "instance__name"),
    "name": ("instance__name",),
}


def estimates_vs_actuals(tenant, query: CostQuery, *, ordering: str = "actual"):
    """Per instance over the query's days: the estimates of its ALLOWed calls (policy evaluation) and
    the actual cost reported to the ledger, both summed from the ``InstanceSpend`` day counters. A
    queryset of dicts sorted in SQL (paginate it, inside ``custom_plans``)."""
    qs = InstanceSpend.objects.filter(
        tenant=tenant, period=SpendPeriod.DAY, period_start__gte=query.since, period_start__lte=query.until
    )
    if query.environment is not None:
        qs = qs.filter(instance__environment=query.environment)
    if query.template is not None:
        qs = qs.filter(instance__version__template=query.template)
    return (
        qs.values("instance_id", "instance__name", "instance__version__template__name")
        .annotate(estimated=Sum("amount_usd"), actual=Sum("actual_usd"))
        .annotate(difference=F("actual") - F("estimated"))
        .order_by(*ESTIMATE_ORDERINGS[ordering])
    )


# ---------------------------------------------------------------- forecasts


def daily_totals(tenant, since: date, until: date, *, environment=None, template=None) -> dict[date, Decimal]:
    qs = TemplateDayRollup.objects.filter(tenant=tenant, day__gte=since, day__lte=until)
    if environment is not None:
        qs = qs.filter(environment=environment)
    if template is not None:
        qs = qs.filter(template=template)
    return {row["day"]: row["cost"] for row in qs.values("day").annotate(cost=Sum("cost_usd")).order_by()}


def first_usage_day(tenant) -> date | None:
    """The tenant's first day with usage (the run rate does not count days before it as zero spend)."""
    return TemplateDayRollup.objects.filter(tenant=tenant).order_by("day").values_list("day", flat=True).first()


@custom_plans()
def cost_forecast(tenant, *, today: date, environment=None, template=None) -> tuple[PeriodForecast, dict]:
    """This month's forecast (with the filters) and the daily totals it was computed from."""
    start, _ = month_bounds(today)
    since = min(start, today - timedelta(days=RUN_RATE_WINDOW_DAYS))
    daily = daily_totals(tenant, since, today, environment=environment, template=template)
    return month_forecast_from(daily, today=today, history_from=first_usage_day(tenant)), daily


def month_forecast_from(daily, *, today: date, history_from: date | None) -> PeriodForecast:
    start, end = month_bounds(today)
    return period_forecast(daily, today=today, period_start=start, period_end=end, history_from=history_from)


@dataclass
class BudgetView:
    budget: Budget
    forecast: PeriodForecast
    daily: dict[date, Decimal]


@custom_plans()
def budget_forecast(budget: Budget, *, today: date, history_from: date | None) -> BudgetView:
    """A budget's current period: spend so far, forecast and run-out date (``ledger.forecast``), from the
    rollups the budget counts (``ledger.selectors.budget_rollups``, the one definition of its scope).
    One query."""
    start, end = budget.period_bounds(today)
    since = min(start, today - timedelta(days=RUN_RATE_WINDOW_DAYS))
    daily = {
        row["day"]: row["cost"]
        for row in budget_rollups(budget)
        .filter(day__gte=since, day__lte=today)
        .values("day")
        .annotate(cost=Sum("cost_usd"))
        .order_by()
    }
    forecast = period_forecast(
        daily,
        today=today,
        period_start=start,
        period_end=end,
        amount=Decimal(budget.amount_usd),
        history_from=history_from,
    )
    return BudgetView(budget, forecast, daily)
