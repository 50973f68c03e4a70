"""The cast shared by every test: one tenant with a member per role, an API key per role, and an
outsider tenant with its own data. Helpers for checks many tests make."""

import os
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from audit.models import ChangeRecord
from tenancy.context import Actor, actor_context
from tests.factories import MembershipFactory, TenantFactory, UserFactory, make_api_key

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROLES = ("viewer", "operator", "approver", "compliance", "admin")


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """MD5 for the test users' passwords, for the whole run: the cast gives every test several users, and
    the production PBKDF2 made hashing about half of the suite's CPU. ``tests/arm/test_password_hasher.py``
    checks the production setting on its own."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@dataclass
class Member:
    user: object
    key: object
    secret: str
    client: APIClient
    actor: Actor


def _client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _member(tenant, role: str, username: str) -> Member:
    user = UserFactory(username=username)
    MembershipFactory(tenant=tenant, user=user, roles=[role])
    key, secret = make_api_key(tenant, [role], name=f"{role} key")
    return Member(
        user,
        key,
        secret,
        _client(secret),
        Actor(ref=f"key:{key.prefix}", api_key=key, roles=frozenset([role])),
    )


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme", name="Acme")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="globex", name="Globex")


@pytest.fixture
def cast(tenant):
    """{role: Member} for the main tenant."""
    return {role: _member(tenant, role, f"{role}-acme") for role in ROLES}


@pytest.fixture
def viewer(cast):
    return cast["viewer"]


@pytest.fixture
def operator(cast):
    return cast["operator"]


@pytest.fixture
def approver(cast):
    return cast["approver"]


@pytest.fixture
def compliance(cast):
    return cast["compliance"]


@pytest.fixture
def admin_member(cast):
    return cast["admin"]


@pytest.fixture
def second_operator(tenant):
    return _member(tenant, "operator", "operator2-acme")


@pytest.fixture
def outsider(other_tenant):
    """An admin of another tenant: must never see or touch the main tenant's rows."""
    return _member(other_tenant, "admin", "admin-globex")


@pytest.fixture
def runtime_key(tenant):
    key, secret = make_api_key(tenant, ["runtime"], name="runtime key")
    return key, _client(secret)


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def as_actor():
    """Run service calls as an actor: ``with as_actor(member.actor, tenant): ...``."""
    return actor_context


def change_records(target=None, event_type=None):
    qs = ChangeRecord.objects.all()
    if target is not None:
        qs = qs.filter(target_id=str(target.pk))
    if event_type is not None:
        qs = qs.filter(event_type=event_type)
    return list(qs.order_by("seq"))


def count_queries(func) -> int:
    with CaptureQueriesContext(connection) as ctx:
        func()
    return len(ctx.captured_queries)


def assert_constant_queries(make_rows, request, *, small=10, large=200):
    """``make_rows(n)`` creates n more rows; ``request()`` runs the list. Same query count for both."""
    make_rows(small)
    request()  # warm caches (content types, sessions)
    first = count_queries(request)
    make_rows(large - small)
    second = count_queries(request)
    assert first == second, f"query count grew with rows: {first} for {small} rows, {second} for {large}"
    return first


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"ARM test database: {db['ENGINE'].rsplit('.', 1)[-1]} ({db.get('HOST') or db.get('NAME')})"


def pytest_sessionfinish(session):
    """The xdist controller drops the seeded database the browser suite's xdist workers
    shared (tests/browser/serverdb.py). Here, not in tests/browser/conftest.py: an xdist controller loads
    only the conftests of the paths it was given."""
    xdist_controller = session.config.getoption("dist", "no") != "no" and not hasattr(session.config, "workerinput")
    if xdist_controller:
        from tests.browser.serverdb import drop_shared

        drop_shared(session.config._tmp_path_factory.getbasetemp())
