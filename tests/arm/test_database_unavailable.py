"""While the database is unreachable ARM answers 503 with Retry-After (JSON under /api/, the themed page
elsewhere) instead of a 500; a reused connection is health-checked, so a database restart does not fail
the next request on a stale connection."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError, connection, connections
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def database_down(exc=None):
    """Every new cursor fails as if the server refused the connection (or dropped it)."""
    error = exc or OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')
    with mock.patch.object(connections["default"], "ensure_connection", side_effect=error):
        yield


def assert_json_503(response):
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "database_unavailable" and response.json()["message"]
    assert int(response["Retry-After"]) > 0


def assert_page_503(response):
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Service unavailable" in html and "database is unavailable" in html
    assert "/static/css/dist/styles.css" in html  # the themed page, not the plain-text fallback
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("connection refused"),
        OperationalError("server closed the connection unexpectedly"),
        OperationalError("database is locked"),
        InterfaceError("connection already closed"),
    ],
    ids=["refused", "closed", "locked", "interface"],
)
def test_api_list_answers_503_json(viewer, world_templates, error):
    with database_down(error):
        response = viewer.client.get("/api/v1/templates/")
    assert_json_503(response)


@pytest.fixture
def world_templates(tenant):
    from tests.factories import TemplateFactory

    return TemplateFactory(tenant=tenant)


def test_api_with_a_session_answers_503_json(viewer):
    client = Client(raise_request_exception=False)
    client.force_login(viewer.user)
    with database_down():
        response = client.get("/api/v1/templates/")
    assert_json_503(response)


def test_ui_page_answers_the_themed_503(viewer):
    """The session and user load in middleware, before any view: handler500 turns it into a 503."""
    client = Client(raise_request_exception=False)
    client.force_login(viewer.user)
    with database_down():
        response = client.get(reverse("ui:directory"))
    assert_page_503(response)


def test_ui_view_failing_answers_the_themed_503(db):
    """A view that fails on the database (here the sign-in form checking the lockout counters)."""
    client = Client(raise_request_exception=False)
    client.get(reverse("login"))
    with database_down():
        response = client.post(reverse("login"), {"username": "someone", "password": "pw"})
    assert_page_503(response)


def test_the_503_page_renders_without_the_database(db):
    from django.test import RequestFactory

    from arm.views import database_unavailable

    request = RequestFactory().get("/directory/")
    with database_down(), mock.patch.object(connection, "cursor", side_effect=AssertionError("queried")):
        response = database_unavailable(request)
    assert_page_503(response)


def test_health_answers_503(db):
    with database_down():
        response = Client().get("/api/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "down"
    assert Client().get("/api/health/").status_code == 200


def test_connections_are_health_checked():
    from django.conf import settings

    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


@pytest.fixture
def checked_connection(db):
    """A second connection to the test database, reused across requests as a served worker's is
    (PostgreSQL only: the health check under test is arm.backends.postgresql's)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's backend (arm.backends.postgresql)")
    other = connections.create_connection("default")
    other.connect()
    other.health_check_enabled, other.health_check_done = True, False
    yield other
    other.close()


def test_a_live_connection_passes_the_health_check_without_a_query(checked_connection):
    raw = checked_connection.connection
    with mock.patch.object(checked_connection, "is_usable", wraps=checked_connection.is_usable) as select_one:
        checked_connection.close_if_health_check_failed()
    select_one.assert_not_called()
    assert checked_connection.connection is raw and checked_connection.health_check_done


def test_a_connection_the_server_closed_fails_the_health_check_and_is_closed(checked_connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [checked_connection.connection.info.backend_pid])
        assert cursor.fetchone() == (True,)
    checked_connection.close_if_health_check_failed()
    assert checked_connection.connection is None  # closed: the request's first query opens a new one
    checked_connection.ensure_connection()
    with checked_connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.django_db(transaction=True)
def test_a_terminated_connection_does_not_fail_the_next_request():
    """gunicorn, one sync worker holding a persistent connection (CONN_MAX_AGE); the backend is killed from
    a second connection (as a PostgreSQL restart does); the next request reconnects and answers 200."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: pg_terminate_backend")
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    url = f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ARM_DB_CONN_MAX_AGE": "600",
        "ARM_SECRET_KEY": "test-only-secret-key-for-the-gunicorn-subprocess-0123456789",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        health = f"http://127.0.0.1:{port}/api/health/"
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(health) == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()
            time.sleep(0.2)
        with connection.cursor() as cursor:
            cursor.execute(
                # waits (up to 5 s) until each backend is gone, as a restart does before it accepts again
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            (killed,) = cursor.fetchone()
        assert killed >= 1, "the worker's connection was not found"
        assert _get(health) == 200
        assert _get(f"http://127.0.0.1:{port}/api/v1/templates/") == 401  # a full API request too
    finally:
        server.terminate()
        server.wait(timeout=10)
