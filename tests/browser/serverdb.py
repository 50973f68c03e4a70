"""The browser server's throwaway database, and the seeded copy the xdist workers share.

Migrating and seeding is most of what starting the browser server costs, and with ``pytest -n 2`` every
worker used to do it. Now the first worker to need it builds one seeded database under a file lock in the
run's shared temporary directory, and each worker starts its server on a copy of its own (SQLite: the
backup API; PostgreSQL: ``CREATE DATABASE ... TEMPLATE``), so tests on different workers still never share
a database. The controller drops the shared one at the end (``drop_shared``, from tests/conftest.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SHARED_DIR = "arm-browser"  # under the run's basetemp, which every xdist worker's basetemp sits in
STATE = "built.json"


class ThrowawayDatabase:
    """A database only the browser server uses: SQLite file or a fresh PostgreSQL database, empty or a copy
    of ``template`` (a ``ThrowawayDatabase.describe()``)."""

    def __init__(self, template: dict | None = None, directory: Path | None = None):
        base = os.environ.get("DATABASE_URL", "")
        self.tmpdir = tempfile.mkdtemp(prefix="arm-browser-", dir=directory)
        self.pg_name = None
        self.sqlite_path = None
        if base.startswith(("postgres://", "postgresql://")):
            self.pg_name = f"arm_browser_{uuid.uuid4().hex[:12]}"
            parts = urlsplit(base)
            self.admin_url = urlunsplit(parts._replace(path="/postgres"))
            self.url = urlunsplit(parts._replace(path=f"/{self.pg_name}"))
            copy = f' TEMPLATE "{template["pg_name"]}"' if template else ""
            self._pg(f'CREATE DATABASE "{self.pg_name}"{copy}')
        else:
            self.sqlite_path = f"{self.tmpdir}/arm.sqlite3"
            self.url = f"sqlite:///{self.sqlite_path}"
            if template:
                # The backup API, not a file copy: it reads through SQLite, WAL and all.
                with sqlite3.connect(template["sqlite_path"]) as src, sqlite3.connect(self.sqlite_path) as dst:
                    src.backup(dst)
                src.close()
                dst.close()

    def describe(self) -> dict:
        return {
            "pg_name": self.pg_name,
            "admin_url": getattr(self, "admin_url", None),
            "tmpdir": self.tmpdir,
            "sqlite_path": self.sqlite_path,
        }

    def _pg(self, sql: str) -> None:
        _pg(self.admin_url, sql)

    def drop(self) -> None:
        _drop(self.describe())


def _pg(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


def _drop(described: dict) -> None:
    if described.get("pg_name"):
        _pg(described["admin_url"], f'DROP DATABASE IF EXISTS "{described["pg_name"]}" WITH (FORCE)')
    shutil.rmtree(described["tmpdir"], ignore_errors=True)


def shared_copy(basetemp: Path, build: Callable[[str], dict]) -> tuple[ThrowawayDatabase, dict]:
    """A database of this worker's own, copied from the run's seeded one (``build(url)`` makes it, once, and
    returns what the tests need to know about it, kept alongside). Returns (database, what build returned)."""
    shared = basetemp / SHARED_DIR
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        # Held while copying too: PostgreSQL refuses two copies of a template at once.
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = shared / STATE
        if not state.exists():
            template = ThrowawayDatabase(directory=shared)
            try:
                info = build(template.url)
            except BaseException:
                template.drop()
                raise
            state.write_text(json.dumps({"template": template.describe(), "info": info}))
        built = json.loads(state.read_text())
        return ThrowawayDatabase(template=built["template"]), built["info"]


def drop_shared(basetemp: Path) -> None:
    """Drops the run's shared seeded database, if a worker built one."""
    state = basetemp / SHARED_DIR / STATE
    if state.exists():
        _drop(json.loads(state.read_text())["template"])
