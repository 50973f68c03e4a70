import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.db import connection


@pytest.mark.django_db
def test_suite_runs_on_the_database_DATABASE_URL_names():
    """CI runs the suite twice; this proves the PostgreSQL run really is on PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected
    print(f"database vendor: {connection.vendor}")


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
@pytest.mark.parametrize(("args", "port"), [([], "8000"), (["PORT=8123"], "8123")])
def test_make_run_serves_on_PORT(args, port):
    """``make run PORT=8123`` serves (and prints the sign-in URL) on that port; 8000 by default."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["make", "-n", "run", *args], cwd=root, capture_output=True, text=True, check=True).stdout
    assert f"runserver 127.0.0.1:{port}" in out
    assert f"seed_demo --port {port}" in out


def test_seed_demo_prints_the_port_it_is_given():
    from demo.management.commands.seed_demo import Command

    parser = Command().create_parser("manage.py", "seed_demo")
    assert parser.parse_args(["--port", "8123"]).port == 8123
    assert parser.parse_args([]).port == 8000
