"""No tenant is left without an active admin, whatever runs at once: deactivating a person (an act on their
account, shared by all their tenants) from one tenant's page while an admin is demoted or removed in
another tenant. The rule is checked under the row lock of every tenant it concerns; those locks let rows
that reference the tenant (change records, decisions, ledger entries) insert meanwhile. PostgreSQL only:
SQLite serializes every writer anyway."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from arm.errors import Conflict
from audit.services import verify_chain
from tenancy import services
from tenancy.context import Actor
from tenancy.models import Membership, Tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.helpers import race

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)"),
    pytest.mark.django_db(transaction=True),
]

User = get_user_model()


def _two_tenants_two_admins(n=0):
    """x and y are the only admins of both tenants (acme, globex)."""
    acme, globex = TenantFactory(slug=f"acme-{n}"), TenantFactory(slug=f"globex-{n}")
    x, y = UserFactory(username=f"x-{n}"), UserFactory(username=f"y-{n}")
    for tenant in (acme, globex):
        for person in (x, y):
            MembershipFactory(tenant=tenant, user=person, roles=["admin"])
    return acme, globex, x, y


def _as(user) -> Actor:
    return Actor.for_user(user, ["admin"])


def _active_admins(tenant) -> list[str]:
    return sorted(
        m.user.username
        for m in Membership.objects.filter(tenant=tenant, user__is_active=True).select_related("user")
        if "admin" in m.roles
    )


def _deactivate_x(acme, x, y):
    return lambda: services.user_deactivate(tenant=acme, user=x, actor=_as(y))


def _demote_y(globex, x, y):
    return lambda: services.membership_set(tenant=globex, user=y, roles=["viewer"], actor=_as(x))


def _remove_y(globex, x, y):
    membership = Membership.objects.get(tenant=globex, user=y)
    return lambda: services.membership_remove(tenant=globex, membership=membership, actor=_as(x))


def _outcome(results, acme, globex):
    """Exactly one of the two acts wins; the other is refused: the demotion as the last admin, the
    deactivation as the last admin or, once Y is no longer admin of globex, as not Y's to make. Both
    tenants keep an active admin."""
    deactivated, other = results
    if isinstance(deactivated, Exception):
        assert isinstance(deactivated, Conflict), results
        assert deactivated.code in {"last_admin", "account_not_yours"} and not isinstance(other, Exception), results
    else:
        assert isinstance(other, Conflict) and other.code == "last_admin", results
    for tenant in (acme, globex):
        assert _active_admins(tenant), f"{tenant.slug} was left without an active admin"
        assert verify_chain(tenant).ok


@pytest.mark.parametrize("other_act", [_demote_y, _remove_y], ids=["demotion", "removal"])
def test_deactivating_a_person_racing_a_demotion_in_another_tenant_leaves_an_admin(other_act):
    """Y deactivates X's account from acme's page while X demotes (or removes) Y in globex, several times
    over: each time one of them is refused."""
    for n in range(6):
        acme, globex, x, y = _two_tenants_two_admins(n)
        _outcome(race([_deactivate_x(acme, x, y), other_act(globex, x, y)]), acme, globex)


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def _one_after_the_other(first, second, *, hold):
    """Run ``first`` in a thread held by ``hold`` (after its checks and writes, before it commits) until
    ``second``, in another thread, has finished or waits on a row lock; then let ``first`` go on. Without
    the locks ``second`` checks the rule against the state before ``first`` and both commit: the
    interleaving that broke it."""
    holding, go, second_done = threading.Event(), threading.Event(), threading.Event()
    results, pid = {}, {}

    def held():
        if threading.current_thread().name == "first" and not holding.is_set():
            holding.set()
            go.wait(30)

    def run(name, call):
        try:
            if name == "second":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    pid["pid"] = cursor.fetchone()[0]
            results[name] = call()
        except Exception as exc:  # reported to the test
            results[name] = exc
        finally:
            (second_done if name == "second" else holding).set()
            connections.close_all()

    with hold(held):
        a = threading.Thread(target=run, args=("first", first), name="first")
        a.start()
        assert holding.wait(30)
        b = threading.Thread(target=run, args=("second", second), name="second")
        b.start()
        while not second_done.is_set() and not ("pid" in pid and _waiting_on_a_lock(pid["pid"])):
            second_done.wait(0.01)
        go.set()
        a.join(30)
        b.join(30)
    return [results["first"], results["second"]]


@pytest.fixture
def hold_after_checks(monkeypatch):
    """``hold(callback)``: call ``callback`` after each change record the services append (inside their
    transaction, once they have checked the rule and written)."""
    from contextlib import contextmanager

    from audit import accounts

    callbacks = []
    # The account's records (deactivation) are written by audit's receiver of tenancy.signals.account_event.
    original_record = accounts.record_change
    original_annotate = services.annotate

    def record_change(*args, **kwargs):
        result = original_record(*args, **kwargs)
        for callback in callbacks:
            callback()
        return result

    @contextmanager
    def annotate(*args, **kwargs):
        with original_annotate(*args, **kwargs) as annotation:
            yield annotation
        for callback in callbacks:
            callback()

    monkeypatch.setattr(accounts, "record_change", record_change)
    monkeypatch.setattr(services, "annotate", annotate)

    @contextmanager
    def hold(callback):
        callbacks.append(callback)
        try:
            yield
        finally:
            callbacks.remove(callback)

    return hold


def test_a_deactivation_in_flight_makes_a_demotion_elsewhere_wait_and_refuses_it(hold_after_checks):
    acme, globex, x, y = _two_tenants_two_admins()

    first, second = _one_after_the_other(_deactivate_x(acme, x, y), _demote_y(globex, x, y), hold=hold_after_checks)

    assert first is None
    assert isinstance(second, Conflict) and second.code == "last_admin"
    assert _active_admins(globex) == ["y-0"]


def test_a_demotion_in_flight_makes_a_deactivation_from_another_tenant_wait_and_refuses_it(hold_after_checks):
    """X demotes Y in globex while a platform operator deactivates X from acme's page."""
    acme, globex, x, y = _two_tenants_two_admins()
    operator = Actor.for_user(UserFactory(username="root", is_superuser=True), is_superuser=True)

    first, second = _one_after_the_other(
        _demote_y(globex, x, y),
        lambda: services.user_deactivate(tenant=acme, user=x, actor=operator),
        hold=hold_after_checks,
    )

    assert isinstance(first, Membership)
    assert isinstance(second, Conflict) and second.code == "last_admin"
    assert _active_admins(globex) == ["x-0"] and User.objects.get(pk=x.pk).is_active


def test_an_account_change_checks_whose_account_it_is_under_the_lock(hold_after_checks):
    """Y deactivating X while X demotes Y in globex: once the demotion commits, X's account is no longer
    Y's to change (Y is not admin of every tenant X belongs to), and the deactivation sees that."""
    acme, globex, x, y = _two_tenants_two_admins()

    first, second = _one_after_the_other(_demote_y(globex, x, y), _deactivate_x(acme, x, y), hold=hold_after_checks)

    assert isinstance(first, Membership)
    assert isinstance(second, Conflict) and second.code == "account_not_yours"
    assert User.objects.get(pk=x.pk).is_active


def test_the_last_admin_lock_lets_rows_referencing_the_tenant_insert(tenant):
    """While a membership change holds its tenant, another connection can still take the lock a foreign
    key insert takes on the tenant row (``FOR KEY SHARE``): the tenant is locked ``FOR NO KEY UPDATE``."""
    admin = UserFactory(username="boss")
    MembershipFactory(tenant=tenant, user=admin, roles=["admin"])
    person = UserFactory(username="person")
    locked, release, out = threading.Event(), threading.Event(), {}

    def hold():
        try:
            with transaction.atomic():
                services.membership_set(tenant=tenant, user=person, roles=["viewer"], actor=_as(admin))
                locked.set()
                release.wait(30)
        except Exception as exc:
            out["error"] = exc
        finally:
            locked.set()
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(30) and "error" not in out, out
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {Tenant._meta.db_table} WHERE id = %s FOR KEY SHARE NOWAIT", [tenant.pk])
            assert cursor.fetchone() == (1,)
    finally:
        release.set()
        thread.join(30)
