"""``seed_demo --reset`` rebuilds the demo from an empty database, in a process of its own as a person
runs it (the audit trail's triggers refuse deleting a tenant's rows, so the database itself is emptied):
the SQLite file is replaced, every tenant but the demo's is gone, new runtime keys are written 0600.
On PostgreSQL it refuses without ``--yes-delete-everything``, and with it empties only its database."""

import os
import sqlite3
import stat
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from demo.keys import read_keys_file
from tenancy.models import Tenant

ROOT = Path(__file__).resolve().parents[2]


def manage(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def secrets(keys_file: Path) -> set[str]:
    data = read_keys_file(keys_file)
    return {h["host_key"] for h in data["hosts"]} | {a["key"] for h in data["hosts"] for a in h["agents"]}


def test_reset_rebuilds_the_demo_from_an_empty_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path}/arm.sqlite3"
    keys_file = tmp_path / "arm.sqlite3.demo-runtime.json"
    manage(url, "migrate", "--noinput")
    manage(url, "seed_demo")
    before = secrets(keys_file)
    manage(url, "create_tenant", "someone-else")

    out = manage(url, "seed_demo", "--reset")

    assert f"Reset: deleted the SQLite database {tmp_path}/arm.sqlite3, and migrated it again." in out
    assert "Tenant acme (Acme Corp): created" in out
    with sqlite3.connect(tmp_path / "arm.sqlite3") as db:
        assert sorted(slug for (slug,) in db.execute("SELECT slug FROM arm_tenant")) == ["acme", "globex"]
    assert secrets(keys_file).isdisjoint(before)
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600


@pytest.mark.django_db
def test_reset_on_postgresql_is_refused_without_the_extra_flag(tenant, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with pytest.raises(CommandError, match="every tenant in it, not only the demo's.*--yes-delete-everything"):
        call_command("seed_demo", "--reset", "--keys-file", str(tmp_path / "keys.json"), stdout=StringIO())
    assert Tenant.objects.filter(pk=tenant.pk).exists()


def test_reset_with_the_flag_empties_its_postgresql_database(tmp_path):
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        pytest.skip("PostgreSQL only")
    import psycopg

    name = f"arm_reset_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(base)
    admin = urlunsplit(parts._replace(path="/postgres"))
    url = urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        manage(url, "migrate", "--noinput")
        manage(url, "seed_demo", "--keys-file", str(tmp_path / "keys.json"))
        manage(url, "create_tenant", "someone-else")

        out = manage(url, "seed_demo", "--reset", "--yes-delete-everything", "--keys-file", str(tmp_path / "keys.json"))

        assert f"Reset: emptied the PostgreSQL database '{name}'" in out
        with psycopg.connect(url) as conn:
            slugs = sorted(slug for (slug,) in conn.execute("SELECT slug FROM arm_tenant"))
        assert slugs == ["acme", "globex"]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
