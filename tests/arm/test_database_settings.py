"""How ARM talks to its database: on PostgreSQL the hot paths' statements are prepared on each connection
(``arm.db``, ``ARM_DB_PREPARE_HOT_PATHS``, on by default), and every statement may be bound on the server
and prepared once repeated (opt-in: ``ARM_DB_PREPARED_STATEMENTS``, ``ARM_DB_PREPARE_THRESHOLD``)."""

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


HOT_ONLY = {"prepare_threshold": 2**31 - 1}  # psycopg prepares only the statements that ask (arm.db)


def test_prepared_statements_are_opt_in():
    assert _options(DATABASE_URL=PG) == HOT_ONLY
    assert _options(DATABASE_URL=PG, ARM_DB_PREPARED_STATEMENTS="false") == HOT_ONLY
    assert _options(DATABASE_URL=PG, ARM_DB_PREPARE_HOT_PATHS="false") == {}  # Django's default: none
    on = {"server_side_binding": True, "prepare_threshold": 2}
    assert _options(DATABASE_URL=PG, ARM_DB_PREPARED_STATEMENTS="true") == on
    assert _options(DATABASE_URL=PG, ARM_DB_PREPARED_STATEMENTS="true", ARM_DB_PREPARE_THRESHOLD="5") == {
        **on,
        "prepare_threshold": 5,
    }


def test_sqlite_is_unaffected():
    options = _options(DATABASE_URL="sqlite:////tmp/arm-settings-probe.sqlite3")
    assert "server_side_binding" not in options and options["transaction_mode"] == "IMMEDIATE"


@pytest.mark.django_db
@pytest.mark.skipif(
    connection.vendor != "postgresql" or not connection.settings_dict["OPTIONS"].get("server_side_binding"),
    reason="PostgreSQL with ARM_DB_PREPARED_STATEMENTS=true (.ci/run runs the PostgreSQL suite with it)",
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


# ---------------------------------------------------------------- the hot paths' prepared statements

pg_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pg_only
@pytest.mark.django_db
@pytest.mark.skipif(
    connection.vendor == "postgresql" and bool(connection.settings_dict["OPTIONS"].get("server_side_binding")),
    reason="with ARM_DB_PREPARED_STATEMENTS=true every repeated statement is prepared",
)
def test_the_hot_paths_are_prepared_and_nothing_else(tenant, operator):
    from tests.factories import InstanceFactory, VersionFactory

    client = operator.client
    instance = InstanceFactory(tenant=tenant, version=VersionFactory(tenant=tenant), state="ACTIVE")
    for _ in range(2):
        assert client.post(f"/api/v1/instances/{instance.pk}/heartbeat/", {}, format="json").status_code == 200
        assert client.get("/api/v1/instances/").status_code == 200
    response = client.post("/api/v1/environments/", {"name": "probe", "tier": "dev"}, format="json")
    assert response.status_code == 201, response.content
    statements = _prepared()
    assert any("arm_apikey" in s and '"prefix" = $1' in s for s in statements), statements  # the key lookup
    assert any(s.startswith('UPDATE "registry_agentinstance" SET "last_heartbeat_at" = $1') for s in statements)
    assert any(s.startswith('WITH rec AS (INSERT INTO "audit_changerecord"') for s in statements)  # the append
    for _ in range(2):  # an evaluation's decision row (arm.prepared.PreparedInsert)
        body = {"instance": str(instance.pk), "tool": "probe.tool", "params": {}}
        assert client.post("/api/v1/policy/evaluate/", body, format="json").status_code == 200
    assert any(s.startswith('INSERT INTO "policies_policydecision"') for s in _prepared()), _prepared()
    # The list the same key read twice was not prepared: only the statements that ask are.
    assert not any(s.startswith('SELECT "registry_agentinstance"') for s in statements), statements


@pg_only
@pytest.mark.django_db
def test_preparing_can_be_turned_off(settings):
    from arm import db

    probe = "SELECT %s::int + 1 AS arm_probe_turned_off"
    settings.ARM_DB_PREPARE_HOT_PATHS = False
    assert not db.prepares()
    assert db.execute(probe, [1], prepare=True) == [(2,)]
    assert not any("arm_probe_turned_off" in s for s in _prepared())
    settings.ARM_DB_PREPARE_HOT_PATHS = True
    probe = "SELECT %s::int + 1 AS arm_probe_turned_on"
    assert db.execute(probe, [2], prepare=True) == [(3,)]
    assert any("arm_probe_turned_on" in s for s in _prepared())


@pytest.mark.django_db
def test_direct_statements_keep_djangos_errors_transactions_and_query_log(tenant):
    from django.db import DataError, IntegrityError, transaction
    from django.db.transaction import TransactionManagementError
    from django.test.utils import CaptureQueriesContext

    from arm import db

    with CaptureQueriesContext(connection) as ctx:
        assert db.execute("SELECT %s", ["logged"], prepare=True) == [("logged",)]
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
            db.execute("SELECT %s::int", ["not a number"], prepare=True)
        with transaction.atomic():
            with pytest.raises(DataError), transaction.atomic(savepoint=False):
                db.execute("SELECT %s::int", ["still not"])
            with pytest.raises(TransactionManagementError):  # as Django's own cursor refuses it
                db.execute("SELECT 1", [])
