import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
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
    assert f"demo_runtime --url http://127.0.0.1:{port}" in out
    assert "collectstatic" not in out  # whitenoise serves from the finders: nothing to recompress on each run


ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
@pytest.mark.skipif(not (ROOT / ".venv" / ".installed").exists(), reason="no venv installed by make install")
def test_make_run_serves_with_the_demo_runtime_and_ctrl_c_stops_both(tmp_path):
    """``make run`` on a database of its own: the server answers, the demo runtime reaches it, and Ctrl-C
    (SIGINT to the terminal's foreground process group) stops the server and the runtime."""
    port = _free_port()
    log = tmp_path / "make-run.log"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/arm.sqlite3", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        make = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for _ in range(600):  # bounded: install, migrate, seed, start (generous on a loaded machine)
            if '"POST /api/v1/instances/heartbeats/ HTTP/1.1" 200' in log.read_text() or make.poll() is not None:
                break
            time.sleep(0.5)
        assert _answers(f"http://127.0.0.1:{port}/api/health/"), log.read_text()
        assert '"POST /api/v1/instances/heartbeats/ HTTP/1.1" 200' in log.read_text()  # the runtime reached it

        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=60)
        for _ in range(120):
            if not _group_alive(make.pid):
                break
            time.sleep(0.5)
        assert not _group_alive(make.pid), log.read_text()
        assert "demo runtime: stopped" in log.read_text()
    finally:
        if _group_alive(make.pid):
            os.killpg(make.pid, signal.SIGKILL)


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_reset_reseeds_without_touching_the_venv():
    out = subprocess.run(["make", "-n", "reset"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "seed_demo --reset" in out
    assert "rm " not in out


def test_seed_demo_prints_the_port_it_is_given():
    from demo.management.commands.seed_demo import Command

    parser = Command().create_parser("manage.py", "seed_demo")
    assert parser.parse_args(["--port", "8123"]).port == 8123
    assert parser.parse_args([]).port == 8000
