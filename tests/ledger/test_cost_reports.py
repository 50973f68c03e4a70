"""The costs API (GET /api/v1/costs/, CSV, forecast, estimates): every grouping and period, range
validation with stable codes, totals equal to the entries ingested, cost per allowed call, tenant
isolation and a query count that does not grow with the data."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import F, Sum
from django.utils import timezone

from audit.recording import recorded_update
from ledger import reports
from ledger.csvexport import FORMULA_PREFIXES, safe_cell
from ledger.ingest import usage_ingest
from ledger.models import DailyRollup, UsageEntry
from policies.models import InstanceSpend, PolicyDecision
from tenancy.context import Actor
from tests.conftest import assert_constant_queries, count_queries
from tests.factories import EnvironmentFactory, InstanceFactory, TemplateFactory, VersionFactory
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db
COSTS = "/api/v1/costs/"
D = Decimal
TODAY = timezone.now().date()


def at(day: date, hour: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat().replace("+00:00", "Z")


_keys = iter(range(10**9))


def ingest(tenant, rows) -> None:
    """Usage through the ledger's ingestion service: rows of (instance, day, model, cost)."""
    entries = [
        {
            "instance": str(instance.pk),
            "occurred_at": at(day),
            "provider": "openai" if not model.startswith("claude") else "anthropic",
            "model": model,
            "input_tokens": 1000,
            "output_tokens": 100,
            "cost_usd": str(cost),
            "idempotency_key": f"k-{next(_keys)}",
        }
        for instance, day, model, cost in rows
    ]
    result = usage_ingest(tenant=tenant, entries=entries, actor=Actor.system())
    assert result.accepted == len(entries), result.rejections()


@pytest.fixture
def fleet(tenant):
    """Two templates (tags and owners overlap), three instances in two environments."""
    prod, dev = (
        EnvironmentFactory(tenant=tenant, name="prod", tier="prod"),
        EnvironmentFactory(tenant=tenant, name="dev"),
    )
    support = TemplateFactory(tenant=tenant, name="support", tags=["cs", "tier-1"], owners=["ana@example.com"])
    billing = TemplateFactory(tenant=tenant, name="billing", tags=["cs"], owners=["bo@example.com", "ana@example.com"])
    sv, bv = VersionFactory(template=support, version_label="1.0.0"), VersionFactory(template=billing)
    s1 = InstanceFactory(version=sv, environment=prod, name="support-1")
    s2 = InstanceFactory(version=sv, environment=dev, name="support-2")
    b1 = InstanceFactory(version=bv, environment=prod, name="billing-1")
    d0, d1 = TODAY - timedelta(days=3), TODAY - timedelta(days=1)
    ingest(
        tenant,
        [
            (s1, d0, "gpt-4.1", D("10.00")),
            (s1, d1, "gpt-4.1", D("5.00")),
            (s1, d1, "claude-sonnet-4", D("2.50")),
            (s2, d1, "gpt-4.1-mini", D("0.25")),
            (b1, d0, "gpt-4.1", D("7.00")),
            (b1, TODAY, "claude-sonnet-4", D("1.00")),
        ],
    )
    return {"support": support, "billing": billing, "s1": s1, "s2": s2, "b1": b1, "prod": prod, "dev": dev}


def groups(response) -> dict:
    data = response.json()
    assert response.status_code == 200, data
    return {g["label"]: D(g["cost_usd"]) for g in data["groups"]}


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("template", {"support": D("17.75"), "billing": D("8.00")}),
        ("instance", {"support-1": D("17.50"), "billing-1": D("8.00"), "support-2": D("0.25")}),
        ("environment", {"prod": D("25.50"), "dev": D("0.25")}),
        ("provider", {"openai": D("22.25"), "anthropic": D("3.50")}),
        ("model", {"gpt-4.1": D("22.00"), "claude-sonnet-4": D("3.50"), "gpt-4.1-mini": D("0.25")}),
        # tags and owners come from the template's lists: a template counts in each of its tags/owners
        ("tag", {"cs": D("25.75"), "tier-1": D("17.75")}),
        ("owner", {"ana@example.com": D("25.75"), "bo@example.com": D("8.00")}),
    ],
)
def test_each_grouping_adds_up_the_ingested_costs(viewer, fleet, group_by, expected):
    response = viewer.client.get(COSTS, {"group_by": group_by})
    assert groups(response) == expected
    data = response.json()
    assert D(data["total_usd"]) == D("25.75") and data["total_entries"] == 6
    assert data["group_by"] == group_by and data["since"] == (TODAY - timedelta(days=29)).isoformat()
    assert [g["label"] for g in data["groups"]] == sorted(expected, key=lambda k: -expected[k])


def test_version_grouping_labels_template_at_version(viewer, fleet):
    assert groups(viewer.client.get(COSTS, {"group_by": "version"}))["support@1.0.0"] == D("17.75")


def test_a_versions_series_adds_up_every_instance_of_it(viewer, fleet):
    """A version's series is read as its instances' daily rows (``_series_instances``): both support
    instances count, billing's do not, and the entries and tokens ride with the series."""
    data = viewer.client.get(COSTS, {"group_by": "version", "period": "day"}).json()
    support = next(g for g in data["groups"] if g["label"] == "support@1.0.0")
    by_day = dict(zip(data["buckets"], (D(v) for v in support["series"]), strict=True))
    d0, d1 = (TODAY - timedelta(days=3)).isoformat(), (TODAY - timedelta(days=1)).isoformat()
    assert by_day[d0] == D("10.00") and by_day[d1] == D("7.75")  # s1's two models and s2 on d1
    assert sum(by_day.values()) == D("17.75") and support["entries"] == 4


def test_rollup_backed_totals_equal_the_sum_of_the_entries(viewer, fleet, tenant):
    entries = UsageEntry.objects.filter(tenant=tenant).aggregate(c=Sum("cost_usd"))["c"]
    rollups = DailyRollup.objects.filter(tenant=tenant).aggregate(c=Sum("cost_usd"))["c"]
    data = viewer.client.get(COSTS, {"group_by": "instance"}).json()
    assert entries == rollups == D(data["total_usd"]) == sum(D(g["cost_usd"]) for g in data["groups"])
    assert sum(D(v) for v in data["totals"]) == entries


def test_series_per_day_week_and_month_cover_the_range(viewer, fleet):
    since, until = TODAY - timedelta(days=3), TODAY
    data = viewer.client.get(COSTS, {"since": since.isoformat(), "until": until.isoformat()}).json()
    assert data["buckets"] == [(since + timedelta(days=i)).isoformat() for i in range(4)]
    support = next(g for g in data["groups"] if g["label"] == "support")
    assert [D(v) for v in support["series"]] == [D(10), D(0), D("7.75"), D(0)]
    assert [D(v) for v in data["totals"]] == [D(17), D(0), D("7.75"), D(1)]

    weekly = viewer.client.get(COSTS, {"period": "week", "since": since.isoformat()}).json()
    monday = since - timedelta(days=since.weekday())
    assert weekly["buckets"][0] == monday.isoformat()
    assert sum(D(v) for v in weekly["totals"]) == D("25.75")
    monthly = viewer.client.get(COSTS, {"period": "month", "since": since.isoformat()}).json()
    assert monthly["buckets"][0] == since.replace(day=1).isoformat()
    assert sum(D(v) for v in monthly["totals"]) == D("25.75")


def test_since_until_bound_the_days(viewer, fleet):
    day = (TODAY - timedelta(days=3)).isoformat()
    assert groups(viewer.client.get(COSTS, {"since": day, "until": day})) == {"support": D(10), "billing": D(7)}


def test_filters_by_environment_and_template(viewer, fleet):
    assert groups(viewer.client.get(COSTS, {"group_by": "instance", "environment": str(fleet["dev"].pk)})) == {
        "support-2": D("0.25")
    }
    assert groups(viewer.client.get(COSTS, {"group_by": "model", "template": str(fleet["billing"].pk)})) == {
        "gpt-4.1": D(7),
        "claude-sonnet-4": D(1),
    }


def test_limit_keeps_the_most_expensive_groups_and_counts_the_rest(viewer, fleet):
    data = viewer.client.get(COSTS, {"group_by": "instance", "limit": "1"}).json()
    assert [g["label"] for g in data["groups"]] == ["support-1"]
    assert data["group_count"] == 3 and D(data["other_usd"]) == D("8.25")


def test_cost_per_allowed_call(viewer, fleet, tenant):
    """Allowed calls come from the counters evaluation keeps (per instance and per template), so the calls
    are made through the evaluation service."""
    from policies.models import PolicyAttachment
    from policies.services import policy_evaluate
    from registry.models import AgentInstance
    from tests.policies.factories import PolicyFactory

    PolicyAttachment.objects.create(instance=fleet["s1"], tenant=tenant, policy=PolicyFactory(tenant=tenant))
    recorded_update(AgentInstance.objects.filter(pk=fleet["s1"].pk), state="ACTIVE")
    outcomes = [
        policy_evaluate(tenant=tenant, instance_id=fleet["s1"].pk, tool=tool, actor=Actor.system()).decision.decision
        for tool in ("crm.lookup", "crm.lookup", "no.such.tool")
    ]
    assert outcomes == ["ALLOW", "ALLOW", "DENY"]
    assert PolicyDecision.objects.filter(decision="ALLOW").count() == 2
    data = viewer.client.get(COSTS, {"group_by": "instance"}).json()
    by = {g["label"]: g for g in data["groups"]}
    assert by["support-1"]["allowed_calls"] == 2 and D(by["support-1"]["cost_per_allowed_call_usd"]) == D("8.75")
    assert by["billing-1"]["allowed_calls"] == 0 and by["billing-1"]["cost_per_allowed_call_usd"] is None
    template = {g["label"]: g for g in viewer.client.get(COSTS).json()["groups"]}
    assert template["support"]["allowed_calls"] == 2
    tag = {g["label"]: g for g in viewer.client.get(COSTS, {"group_by": "tag"}).json()["groups"]}
    assert tag["cs"]["allowed_calls"] == 2 and tag["tier-1"]["allowed_calls"] == 2
    model = viewer.client.get(COSTS, {"group_by": "model"}).json()["groups"][0]
    assert model["allowed_calls"] is None and model["cost_per_allowed_call_usd"] is None


def test_csv_export_has_one_row_per_bucket_and_group(viewer, fleet):
    response = viewer.client.get(COSTS, {"format": "csv", "group_by": "tag"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert set(rows[0]) == {
        "period_start",
        "group_by",
        "key",
        "label",
        "cost_usd",
        "entries",
        "input_tokens",
        "output_tokens",
    }
    cs = [r for r in rows if r["key"] == "cs"]
    assert [r["period_start"] for r in cs] == sorted(r["period_start"] for r in cs)
    assert sum(D(r["cost_usd"]) for r in cs) == D("25.75")
    by_instance = list(
        csv.DictReader(
            io.StringIO(
                b"".join(viewer.client.get(COSTS, {"format": "csv", "group_by": "instance"}).streaming_content).decode()
            )
        )
    )
    assert sum(D(r["cost_usd"]) for r in by_instance) == D("25.75")
    assert {r["label"] for r in by_instance} == {"support-1", "support-2", "billing-1"}


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"group_by": "colour"}, 400, "invalid_parameter", "group_by"),
        ({"period": "year"}, 400, "invalid_parameter", "period"),
        ({"since": "2026-13-01"}, 400, "invalid_parameter", "since"),
        ({"since": "yesterday"}, 400, "invalid_parameter", "since"),
        ({"until": "2026-11-01T00:00"}, 400, "invalid_parameter", "until"),
        ({"since": "2026-11-10", "until": "2026-11-01"}, 400, "invalid_range", "since"),
        ({"since": "2024-01-01", "until": "2026-01-01"}, 400, "invalid_range", "until"),
        ({"limit": "0"}, 400, "invalid_parameter", "limit"),
        ({"limit": "1e3"}, 400, "invalid_parameter", "limit"),
        ({"environment": "not-a-uuid"}, 400, "invalid_parameter", "environment"),
        # Padded values are refused, not stripped: Python strips \x1e too, which read as "no filter".
        ({"environment": "\x1e"}, 400, "invalid_parameter", "environment"),
        ({"template": " "}, 400, "invalid_parameter", "template"),
        ({"group_by": " instance"}, 400, "invalid_parameter", "group_by"),
        ({"since": "2026-11-01\n"}, 400, "invalid_parameter", "since"),
        ({"limit": "5 "}, 400, "invalid_parameter", "limit"),
        ({"format": "\x1f"}, 400, "invalid_parameter", "format"),
        ({"format": "xml"}, 400, "invalid_parameter", "format"),
        ({"groupby": "template"}, 400, "unknown_parameter", "groupby"),
    ],
)
def test_bad_parameters_answer_400_naming_the_parameter(viewer, params, status, code, field):
    data = assert_error(viewer.client.get(COSTS, params), status, code)
    assert field in data["errors"], data


FORMULAS = ['=HYPERLINK("https://evil.example","open")', "+1+1", "-2+3", "@SUM(A1:A9)"]


def test_csv_cells_never_start_a_formula_and_carry_exact_decimals(viewer, tenant):
    template = TemplateFactory(tenant=tenant, name="=cmd|' /C calc'!A0", tags=["+tag"], owners=["@owner"])
    env = EnvironmentFactory(tenant=tenant, name="-env")
    instance = InstanceFactory(version=VersionFactory(template=template), environment=env, name="-instance")
    entries = [
        {
            "instance": str(instance.pk),
            "occurred_at": at(TODAY),
            "provider": "@provider",
            "model": model,
            "cost_usd": "0.589455",
            "idempotency_key": f"formula-{i}",
        }
        for i, model in enumerate(FORMULAS)
    ]
    assert usage_ingest(tenant=tenant, entries=entries, actor=Actor.system()).accepted == 4
    for group_by in reports.GROUP_BYS:
        response = viewer.client.get(COSTS, {"format": "csv", "group_by": group_by})
        body = b"".join(response.streaming_content).decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        assert rows, group_by
        for row in rows:
            assert not any(cell.startswith(FORMULA_PREFIXES) for cell in row.values()), (group_by, row)
        expected = D("0.589455") * (1 if group_by == "model" else 4)
        assert {row["cost_usd"] for row in rows} == {str(expected)}, group_by  # exact, no float digits
    assert _csv_labels(viewer, "model") == {"'" + model for model in FORMULAS}
    assert _csv_labels(viewer, "template") == {"'=cmd|' /C calc'!A0"}
    assert _csv_labels(viewer, "tag") == {"'+tag"} and _csv_labels(viewer, "owner") == {"'@owner"}


def _csv_labels(viewer, group_by: str) -> set[str]:
    response = viewer.client.get(COSTS, {"format": "csv", "group_by": group_by})
    return {row["label"] for row in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))}


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx"])
def test_safe_cell_quotes_every_formula_start(value):
    assert safe_cell(value) == "'" + value
    assert safe_cell("a" + value) == "a" + value and safe_cell(7) == 7


# The dates a report may name run from 2000-01-01 to 9998-12-31 (ledger.reports); each edge is tried on
# both sides, with the defaults and bucket arithmetic (+29 days, the next month's 1st) at the far ends.
EDGE_DATES_REFUSED = [
    ({"since": "0001-01-01"}, "since"),
    ({"until": "0001-01-01"}, "until"),
    ({"since": "1999-12-31", "until": "2000-01-10"}, "since"),
    ({"until": "9999-12-31"}, "until"),
    ({"since": "9999-12-31"}, "since"),
    ({"since": "9999-01-01", "until": "9999-01-31", "period": "month"}, "since"),
    ({"since": "9998-12-01", "until": "9999-01-01", "period": "week"}, "until"),
]
EDGE_DATES_ACCEPTED = [
    {"since": "2000-01-01", "until": "2000-01-10"},
    {"until": "2000-01-01", "period": "week"},  # since defaults to 29 days earlier, before 2000: fine
    {"since": "9998-12-31"},  # until defaults to 29 days later, in 9999
    {"since": "9998-12-01", "until": "9998-12-31", "period": "month"},
    {"since": "9998-12-31", "period": "month"},
    {"until": "9998-12-31", "period": "week"},
]


@pytest.mark.parametrize("fmt", ["json", "csv", "estimates"])
@pytest.mark.parametrize(("params", "field"), EDGE_DATES_REFUSED)
def test_dates_out_of_range_answer_400_not_500(viewer, fleet, params, field, fmt):
    path, params = (COSTS + "estimates/", params) if fmt == "estimates" else (COSTS, {**params, "format": fmt})
    if fmt == "estimates":
        params = {k: v for k, v in params.items() if k != "period"}
    data = assert_error(viewer.client.get(path, params), 400, "invalid_parameter")
    assert data["errors"][field] == [f"A date from 2000-01-01 to 9998-12-31, not {params[field]}."]


@pytest.mark.parametrize("fmt", ["json", "csv", "estimates"])
@pytest.mark.parametrize("params", EDGE_DATES_ACCEPTED)
def test_dates_at_the_edges_are_reported(viewer, fleet, params, fmt):
    if fmt == "estimates":
        response = viewer.client.get(COSTS + "estimates/", {k: v for k, v in params.items() if k != "period"})
        assert response.status_code == 200 and response.json()["count"] == 0  # no spend then
        return
    response = viewer.client.get(COSTS, {**params, "format": fmt})
    assert response.status_code == 200
    if fmt == "csv":
        assert b"".join(response.streaming_content).decode().splitlines()[1:] == []  # no spend then
    else:
        data = response.json()
        assert data["total_usd"] == "0.000000" and data["buckets"][0] <= data["since"] <= data["until"]


def test_forecast_endpoint_states_its_method(viewer, fleet):
    data = viewer.client.get(COSTS + "forecast/").json()
    assert data["period_start"] == TODAY.replace(day=1).isoformat()
    assert "1.96" in data["method"] and "14" in data["method"]
    assert D(data["forecast_low_usd"]) <= D(data["forecast_usd"]) <= D(data["forecast_high_usd"])
    assert D(data["spent_usd"]) == sum(
        (
            c
            for d, c in [(TODAY - timedelta(days=3), D("17")), (TODAY - timedelta(days=1), D("7.75")), (TODAY, D(1))]
            if d.month == TODAY.month
        ),
        D(0),
    )
    assert_error(viewer.client.get(COSTS + "forecast/", {"group_by": "model"}), 400, "unknown_parameter")


def test_estimates_compare_allowed_estimates_with_actual_cost(viewer, fleet, tenant):
    InstanceSpend.objects.filter(instance=fleet["s1"], period="day", period_start=TODAY - timedelta(days=1)).update(
        amount_usd=D("4.0000")
    )
    data = viewer.client.get(COSTS + "estimates/").json()
    assert data["count"] == 3
    first = data["results"][0]
    assert first["instance_name"] == "support-1" and D(first["actual_usd"]) == D("17.5")
    assert D(first["estimated_usd"]) == D(4) and D(first["difference_usd"]) == D("13.5")
    names = [
        r["instance_name"] for r in viewer.client.get(COSTS + "estimates/", {"ordering": "name"}).json()["results"]
    ]
    assert names == sorted(names)
    assert_error(viewer.client.get(COSTS + "estimates/", {"ordering": "cost"}), 400, "invalid_parameter")
    assert_error(viewer.client.get(COSTS + "estimates/", {"group_by": "model"}), 400, "unknown_parameter")


def test_another_tenants_spend_never_shows_and_its_ids_are_refused(viewer, outsider, fleet, other_tenant):
    theirs = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=other_tenant, name="theirs")))
    ingest(other_tenant, [(theirs, TODAY, "gpt-4.1", D("99"))])
    for group_by in ("template", "instance", "tag", "model"):
        data = viewer.client.get(COSTS, {"group_by": group_by}).json()
        assert D(data["total_usd"]) == D("25.75") and "theirs" not in str(data)
    assert D(viewer.client.get(COSTS + "forecast/").json()["spent_usd"]) < D(99)
    assert theirs.name not in str(viewer.client.get(COSTS + "estimates/").json())
    # their report sees only theirs; our template id is refused in their tenant (not a filter that leaks)
    assert D(outsider.client.get(COSTS).json()["total_usd"]) == D(99)
    for path in (COSTS, COSTS + "forecast/", COSTS + "estimates/"):
        data = assert_error(outsider.client.get(path, {"template": str(fleet["support"].pk)}), 400, "invalid_parameter")
        assert "template" in data["errors"]


def test_report_query_count_does_not_grow_with_groups_or_days(viewer, tenant):
    template = TemplateFactory(tenant=tenant, tags=["a", "b"])
    state = {"n": 0}

    def make_rows(n):
        rows = []
        for _ in range(n):
            state["n"] += 1
            instance = InstanceFactory(version=VersionFactory(template=template), name=f"i-{state['n']}")
            rows += [(instance, TODAY - timedelta(days=d), "gpt-4.1", D("1.5")) for d in range(3)]
        ingest(tenant, rows)

    for group_by in ("instance", "tag"):
        assert_constant_queries(
            make_rows, lambda g=group_by: viewer.client.get(COSTS, {"group_by": g, "limit": "5"}), small=2, large=12
        )
    queries = count_queries(lambda: viewer.client.get(COSTS, {"group_by": "instance"}))
    assert queries <= 12, queries


def test_budget_detail_carries_its_forecast_and_runout_date(viewer, fleet, tenant):
    from tests.ledger.factories import BudgetFactory

    budget = BudgetFactory(tenant=tenant, name="support", scope="template", template=fleet["support"], amount_usd=D(5))
    data = viewer.client.get(f"/api/v1/budgets/{budget.pk}/").json()
    forecast = data["forecast"]
    assert forecast["period_start"] == TODAY.replace(day=1).isoformat()
    month = [(TODAY - timedelta(days=3), D(10)), (TODAY - timedelta(days=1), D("7.75"))]
    spent = sum((c for d, c in month if d >= TODAY.replace(day=1)), D(0))
    assert D(forecast["spent_usd"]) == spent
    if spent >= 5:  # crossed already: the day it happened
        assert forecast["crossed_date"] is not None and forecast["runout_date"] == forecast["crossed_date"]
    else:  # the rate over 14 days (17.75 / 14 a day) reaches it this month or not
        assert forecast["crossed_date"] is None
    assert D(forecast["forecast_low_usd"]) <= D(forecast["forecast_usd"]) <= D(forecast["forecast_high_usd"])
    # the list stays light: no forecast per row
    assert "forecast" not in viewer.client.get("/api/v1/budgets/").json()["results"][0]


def test_schema_documents_the_report_as_one_object():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(public=True)["paths"]
    report = paths["/api/v1/costs/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert report == {"$ref": "#/components/schemas/CostReport"}
    estimates = paths["/api/v1/costs/estimates/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert estimates["schema"] == {"$ref": "#/components/schemas/PaginatedEstimateRowList"}


def test_migration_counts_the_decisions_taken_before_the_counters(viewer, fleet, tenant):
    """policies.0006 fills the counters from the decision rows already there."""
    import importlib

    from django.apps import apps

    from policies.models import DecisionDayCount

    migration = importlib.import_module("policies.migrations.0006_decision_counts")
    for decision in ("ALLOW", "ALLOW", "DENY"):
        PolicyDecision.objects.create(
            tenant=tenant, instance=fleet["s1"], tool="crm.lookup", decision=decision, risk="low", params_hash="0"
        )
    migration.count_past_decisions(apps, None)
    counters = InstanceSpend.objects.filter(instance=fleet["s1"])
    assert counters.get(period="day", period_start=TODAY).allowed_calls == 2
    assert counters.get(period="month", period_start=TODAY.replace(day=1)).allowed_calls == 2
    assert not counters.filter(period="day").exclude(period_start=TODAY).exclude(allowed_calls=0).exists()
    assert DecisionDayCount.objects.get(template=fleet["support"], day=TODAY).allowed_calls == 2
    by = {g["label"]: g["allowed_calls"] for g in viewer.client.get(COSTS, {"group_by": "instance"}).json()["groups"]}
    assert by["support-1"] == 2


MONEY_TEXT = r"-?\d+\.\d{6}"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("0E-15"), "0.000000"),
        (D("39.148633000000000"), "39.148633"),
        (D("1E+3"), "1000.000000"),
        (D("-0.0000001"), "0.000000"),
        (D("0.0000005"), "0.000001"),
        (None, "0.000000"),
    ],
)
def test_money_text_has_six_places_and_never_an_exponent(value, text):
    assert reports.money_text(value) == text


def test_every_money_field_of_the_cost_answers_has_six_places(viewer, fleet, tenant):
    # an instance whose ALLOWed estimates equal its actual cost: a difference of exactly nothing
    actual = InstanceSpend.objects.filter(instance=fleet["s1"], period="day").aggregate(s=Sum("actual_usd"))["s"]
    InstanceSpend.objects.filter(instance=fleet["s1"], period="day").update(amount_usd=F("actual_usd"))
    report = viewer.client.get(COSTS, {"group_by": "instance", "limit": 1}).json()
    money = [report["total_usd"], report["other_usd"], *report["totals"]]
    for g in report["groups"]:
        money += [g["cost_usd"], *g["series"]]
        if g["cost_per_allowed_call_usd"] is not None:
            money.append(g["cost_per_allowed_call_usd"])
    rows = viewer.client.get(COSTS + "estimates/").json()["results"]
    money += [r[k] for r in rows for k in ("estimated_usd", "actual_usd", "difference_usd")]
    assert money and all(re.fullmatch(MONEY_TEXT, m) for m in money), money
    (s1,) = [r for r in rows if r["instance_name"] == "support-1"]
    assert s1["difference_usd"] == "0.000000" and D(s1["actual_usd"]) == actual
