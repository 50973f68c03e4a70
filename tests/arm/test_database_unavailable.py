"""While the database is unreachable ARM answers 503 with Retry-After (JSON under /api/, the themed page
elsewhere) instead of a 500; a reused connection is health-checked, so a database restart does not fail
the next request on a stale connection. A transient collision with another transaction (deadlock,
serialization failure, lock timeout, SQLite's "database is locked") is not a lost database: 503
``database_busy`` with a short Retry-After and a message that says to retry."""

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
        InterfaceError("connection already closed"),
    ],
    ids=["refused", "closed", "interface"],
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


def test_django_still_asks_the_overridden_health_check_before_a_query(checked_connection):
    """``arm.backends.postgresql`` overrides ``close_if_health_check_failed``, an undocumented hook of
    Django's connection: this fails if Django stops calling it before a request's first query (the override
    would then silently do nothing), or runs ``SELECT 1`` anyway."""
    with (
        mock.patch.object(type(checked_connection), "_idle_socket_is_quiet", autospec=True, return_value=True) as ask,
        mock.patch.object(checked_connection, "is_usable", wraps=checked_connection.is_usable) as select_one,
    ):
        with checked_connection.cursor() as cursor:
            cursor.execute("SELECT 2")
    ask.assert_called_once()
    select_one.assert_not_called()


def test_the_health_check_override_is_for_the_pinned_django():
    """Re-check ``arm/backends/postgresql/base.py`` against Django's ``close_if_health_check_failed`` (and
    pyproject.toml's pin) before moving to another Django release."""
    import django

    assert django.VERSION[:2] == (5, 2)


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


# ---------------------------------------------------------------- a busy database is not a lost one


def driver_error(cause: Exception) -> OperationalError:
    """The driver's exception as Django hands it on: ``django.db.OperationalError`` raised from it."""
    try:
        try:
            raise cause
        except Exception as inner:
            raise OperationalError(*inner.args) from inner
    except OperationalError as wrapped:
        return wrapped


def busy_errors() -> dict:
    import sqlite3

    from psycopg import errors as pg

    return {
        "deadlock": driver_error(pg.DeadlockDetected("deadlock detected")),
        "serialization": driver_error(pg.SerializationFailure("could not serialize access due to concurrent update")),
        "lock_timeout": driver_error(pg.LockNotAvailable("canceling statement due to lock timeout")),
        "sqlite_locked": driver_error(sqlite3.OperationalError("database is locked")),
        "sqlite_table_locked": driver_error(sqlite3.OperationalError("database table is locked")),
    }


BUSY = ["deadlock", "serialization", "lock_timeout", "sqlite_locked", "sqlite_table_locked"]


def assert_busy_json(response):
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "database_busy", body
    assert "Retry" in body["message"] and "unavailable" not in body["message"], body
    assert response["Retry-After"] == "1"


@pytest.fixture
def draft(tenant):
    from tests.factories import TemplateFactory, VersionFactory

    return VersionFactory(template=TemplateFactory(tenant=tenant))


@pytest.mark.parametrize("kind", BUSY)
def test_a_collision_at_the_service_answers_503_database_busy(operator, draft, kind):
    with mock.patch("registry.services.version_transition", side_effect=busy_errors()[kind]):
        response = operator.client.post(f"/api/v1/versions/{draft.pk}/transition/", {"to": "TESTING"}, format="json")
    assert_busy_json(response)


@pytest.mark.parametrize("kind", BUSY)
def test_a_collision_in_a_ui_view_answers_the_themed_busy_page(operator, draft, kind):
    client = Client(raise_request_exception=False)
    operator.user.refresh_from_db()
    client.force_login(operator.user)
    with mock.patch("registry.services.version_transition", side_effect=busy_errors()[kind]):
        response = client.post(f"/versions/{draft.pk}/transition/", {"to": "TESTING"})
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Database busy" in html and "try again" in html and "unavailable" not in html
    assert response["Retry-After"] == "1"


def test_a_collision_outside_a_view_answers_database_busy_too(viewer):
    """Raised before any view (the session loaded in middleware): handler500 tells the two apart as well."""
    client = Client(raise_request_exception=False)
    client.force_login(viewer.user)
    with database_down(busy_errors()["sqlite_locked"]):
        response = client.get(reverse("ui:directory"))
    assert response.status_code == 503, response.content
    assert "Database busy" in response.content.decode()
    assert response["Retry-After"] == "1"


@pytest.mark.parametrize(
    "cause",
    ["connection_refused", "admin_shutdown", "query_canceled"],
)
def test_a_lost_database_still_answers_database_unavailable(viewer, draft, cause):
    from psycopg import errors as pg

    error = {
        "connection_refused": driver_error(pg.OperationalError("connection failed: Connection refused")),
        "admin_shutdown": driver_error(pg.AdminShutdown("terminating connection due to administrator command")),
        "query_canceled": driver_error(pg.QueryCanceled("canceling statement due to statement timeout")),
    }[cause]
    with mock.patch("registry.services.version_transition", side_effect=error):
        response = viewer.client.post(f"/api/v1/versions/{draft.pk}/transition/", {"to": "TESTING"}, format="json")
    assert_json_503(response)


def _backend_pid(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)")
@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_answers_503_database_busy_and_changes_nothing(tenant):
    """Two PostgreSQL transactions lock an instance and its version in opposite orders: an API transition
    (instance, then version) and a second connection (version, then instance). PostgreSQL aborts the
    request's transaction (its deadlock check runs first); the API answers database_busy and the instance
    is untouched; a retry then succeeds."""
    import threading

    from registry.models import AgentInstance
    from tests.factories import InstanceFactory, TemplateFactory, VersionFactory
    from tests.helpers import member_with

    operator = member_with(tenant, ["operator"], "deadlocked-op")
    version = VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="APPROVED", eval_status="PASS")
    instance = InstanceFactory(version=version, state="PAUSED")
    request_pid, out = {}, {}
    request_done = threading.Event()

    def request():
        try:
            # the request's transaction runs the deadlock check first (the other one waits far longer)
            with connection.cursor() as cursor:
                cursor.execute("SET deadlock_timeout = '50ms'")
            request_pid["pid"] = _backend_pid(connection)
            out["response"] = operator.client.post(
                f"/api/v1/instances/{instance.pk}/transition/", {"to": "DRAINING"}, format="json"
            )
        except Exception as exc:  # reported to the test
            out["error"] = exc
        finally:
            request_done.set()
            connections.close_all()

    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("SET deadlock_timeout = '30s'")
            cursor.execute("SELECT id FROM registry_agentversion WHERE id = %s FOR UPDATE", [version.pk])
        thread = threading.Thread(target=request)
        thread.start()
        # the request holds the instance and waits for the version
        while not request_done.is_set() and not ("pid" in request_pid and _waiting_on_a_lock(request_pid["pid"])):
            request_done.wait(0.01)
        assert not request_done.is_set(), out
        with other.cursor() as cursor:  # closes the cycle; waits until the request's transaction is aborted
            cursor.execute("SELECT id FROM registry_agentinstance WHERE id = %s FOR UPDATE", [instance.pk])
        other.rollback()
        thread.join(30)
    finally:
        other.close()

    assert "error" not in out, out
    assert_busy_json(out["response"])
    assert AgentInstance.objects.get(pk=instance.pk).state == "PAUSED"
    retried = operator.client.post(f"/api/v1/instances/{instance.pk}/transition/", {"to": "DRAINING"}, format="json")
    assert retried.status_code == 200, retried.json()
