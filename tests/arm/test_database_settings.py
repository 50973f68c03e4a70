"""How ARM talks to its database: on PostgreSQL every statement is bound on the server and prepared once
repeated (``ARM_DB_PREPARED_STATEMENTS``, on unless turned off), the cost reports are planned for their own
parameters (``arm.db.custom_plans``), and ingestion's bulk statements (``arm.db``) keep Django's errors,
transactions and query log."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from registry.models import AgentInstance

ROOT = Path(__file__).resolve().parents[2]


def _options(**env) -> dict:
    """The default database's OPTIONS as config.settings builds them under ``env``."""
    code = "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ARM_DB_PREPARE")},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


PG = "postgres://postgres@127.0.0.1:5432/arm_never_connected"


def test_prepared_statements_are_on_unless_turned_off():
    on = {"server_side_binding": True, "prepare_threshold": 2}
    assert _options(DATABASE_URL=PG) == on
    assert _options(DATABASE_URL=PG, ARM_DB_PREPARED_STATEMENTS="true") == on
    assert _options(DATABASE_URL=PG, ARM_DB_PREPARED_STATEMENTS="false") == {}  # Django's default


def test_sqlite_is_unaffected():
    options = _options(DATABASE_URL="sqlite:////tmp/arm-settings-probe.sqlite3")
    assert "server_side_binding" not in options and options["transaction_mode"] == "IMMEDIATE"


@pytest.mark.django_db
@pytest.mark.skipif(
    connection.vendor != "postgresql" or not connection.settings_dict["OPTIONS"].get("server_side_binding"),
    reason="PostgreSQL with prepared statements (ARM_DB_PREPARED_STATEMENTS not false)",
)
def test_a_repeated_query_is_prepared_on_the_server(tenant):
    for _ in range(3):
        list(AgentInstance.objects.filter(tenant=tenant, name="probe"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert any("registry_agentinstance" in s and '"name" = $' in s for s in statements), [
        s for s in statements if "agentinstance" in s
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan_cache_mode")
def test_reports_force_custom_plans_for_their_transaction_only(tenant):
    from django.test.utils import CaptureQueriesContext

    from arm.db import custom_plans
    from ledger import reports

    def mode() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            return cursor.fetchone()[0]

    with CaptureQueriesContext(connection) as ctx, custom_plans():
        assert connection.in_atomic_block
        assert mode() == "force_custom_plan"
    assert "SET" not in " ".join(q["sql"] for q in ctx.captured_queries)  # not counted as a report query
    assert mode() == "auto"  # SET LOCAL ended with the transaction
    day = reports.date(2026, 1, 1)
    forecast, _ = reports.cost_forecast(tenant, today=day)  # a report entry point runs inside it
    assert mode() == "auto" and not connection.in_atomic_block


@pytest.mark.django_db
def test_direct_statements_keep_djangos_errors_transactions_and_query_log(tenant):
    from django.db import DataError, IntegrityError, transaction
    from django.db.transaction import TransactionManagementError
    from django.test.utils import CaptureQueriesContext

    from arm import db

    with CaptureQueriesContext(connection) as ctx:
        assert db.execute("SELECT %s", ["logged"]) == [("logged",)]
    assert len(ctx.captured_queries) == 1  # counted like any other statement
    # A unique violation is Django's IntegrityError, and the atomic block it broke refuses more statements.
    table = connection.ops.quote_name("arm_tenant")
    columns = "id, slug, name, heartbeat_window_seconds, created_at"
    duplicate = [tenant.pk.hex if connection.vendor == "sqlite" else tenant.pk, "dup", "Dup", 60, "2026-01-01"]
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            with transaction.atomic():
                db.execute(f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)", duplicate, fetch=False)
    if connection.vendor == "postgresql":
        with pytest.raises(DataError), transaction.atomic():
            db.execute("SELECT %s::int", ["not a number"])
        with transaction.atomic():
            with pytest.raises(DataError), transaction.atomic(savepoint=False):
                db.execute("SELECT %s::int", ["still not"])
            with pytest.raises(TransactionManagementError):  # as Django's own cursor refuses it
                db.execute("SELECT 1", [])
