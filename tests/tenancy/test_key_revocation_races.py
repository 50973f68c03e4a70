"""Revoking a key while it (or a key below it) mints: no minted key survives the revocation. Either the
mint commits first and the cascade revokes its key, or the mint sees the revoked chain and is refused
(409 ``key_revoked``). PostgreSQL only: SQLite serializes every writer anyway."""

import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from arm.errors import Conflict
from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import verify_chain
from tenancy.context import Actor
from tenancy.models import ApiKey
from tenancy.services import api_key_create, api_key_revoke
from tests.conftest import change_records
from tests.helpers import assert_error, member_with

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)"),
    pytest.mark.django_db(transaction=True),
]


def _refused(secret: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get("/api/v1/templates/")
    if response.status_code == 200:
        return False
    assert_error(response, 401, "authentication_failed")
    return True


def _chain_below(root: ApiKey) -> list[ApiKey]:
    """Every key minted by ``root``, directly or through keys it minted, walked by ``created_by``."""
    found, level = [], [root.prefix]
    while level:
        minted = list(ApiKey.objects.filter(created_by__in=[f"key:{p}" for p in level]))
        found += minted
        level = [k.prefix for k in minted]
    return found


def _mint_in_a_loop(tenant, minter: ApiKey, *, started: threading.Event, revoked: threading.Event, out: dict):
    """A stolen key minting as fast as it can. ``minter`` was authenticated before the revocation (the
    actor a request in flight holds); it keeps minting until refused, and at least twice after the
    revocation committed."""
    actor = Actor.for_key(minter)
    after = 0
    try:
        for n in range(200):
            try:
                _, secret = api_key_create(tenant=tenant, name=f"loot-{n}", roles=["viewer"], actor=actor)
            except Conflict as exc:
                out["refused"] = exc
                return
            out.setdefault("secrets", []).append(secret)
            started.set()
            if revoked.is_set():
                after += 1
                if after > 2:
                    return
    finally:
        started.set()
        connections.close_all()


def _revoke_when_minting(key: ApiKey, actor: Actor, *, started: threading.Event, revoked: threading.Event, out):
    try:
        started.wait(30)
        out["revoked"] = api_key_revoke(key=key, actor=actor)
    except Exception as exc:  # reported to the test
        out["revoke_error"] = exc
    finally:
        revoked.set()
        connections.close_all()


def _race_mint_and_revoke(tenant, minter: ApiKey, revoked_key: ApiKey, revoker: Actor) -> dict:
    started, revoked, out = threading.Event(), threading.Event(), {}
    threads = [
        threading.Thread(
            target=_mint_in_a_loop, args=(tenant, minter), kwargs=dict(started=started, revoked=revoked, out=out)
        ),
        threading.Thread(
            target=_revoke_when_minting,
            args=(revoked_key, revoker),
            kwargs=dict(started=started, revoked=revoked, out=out),
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert "revoke_error" not in out, out["revoke_error"]
    return out


def _assert_nothing_survives(root: ApiKey, out: dict) -> None:
    below = _chain_below(root)
    survivors = [k.prefix for k in below if k.revoked_at is None]
    assert survivors == [], f"{len(survivors)} key(s) minted during the revocation survived it"
    assert all(_refused(secret) for secret in out.get("secrets", []))
    refused = out.get("refused")
    assert isinstance(refused, Conflict) and refused.code == "key_revoked", out
    # every revoked key has its record; the chain holds
    revoked_records = ChangeRecord.objects.filter(event_type=EventType.API_KEY_REVOKED)
    assert revoked_records.count() == 1 + len(below)
    assert verify_chain(root.tenant).ok


def test_keys_a_revoked_key_mints_during_its_revocation_do_not_survive(tenant):
    person = member_with(tenant, ["admin"], "alice")
    actor = Actor.for_user(person.user, ["admin"])
    stolen, _ = api_key_create(tenant=tenant, name="stolen", roles=["admin"], actor=actor)

    out = _race_mint_and_revoke(tenant, stolen, stolen, actor)

    _assert_nothing_survives(stolen, out)


def test_keys_minted_two_levels_below_a_revoked_key_do_not_survive(tenant):
    """The key minting is a grandchild of the one revoked: the cascade reaches it and what it minted."""
    person = member_with(tenant, ["admin"], "alice")
    actor = Actor.for_user(person.user, ["admin"])
    root, _ = api_key_create(tenant=tenant, name="root", roles=["admin"], actor=actor)
    child, _ = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=Actor.for_key(root))
    grandchild, _ = api_key_create(tenant=tenant, name="grandchild", roles=["admin"], actor=Actor.for_key(child))

    out = _race_mint_and_revoke(tenant, grandchild, root, actor)

    _assert_nothing_survives(root, out)


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def test_a_revocation_waits_for_a_mint_in_flight_below_it_and_revokes_its_key(tenant, monkeypatch):
    """The interleaving that let keys survive, forced step by step: a grandchild is minting (its minter
    read, the new key not written yet) while its grandparent is revoked. The mint is held there until the
    revocation has either finished (it did not wait: the new key would survive) or waits on a row lock;
    then the mint goes on. The cascade must revoke the new key, and neither side may deadlock (the cascade
    appends its records only after it holds every row, since the mint takes the chain head next)."""
    person = member_with(tenant, ["admin"], "alice")
    actor = Actor.for_user(person.user, ["admin"])
    root, _ = api_key_create(tenant=tenant, name="root", roles=["admin"], actor=actor)
    child, _ = api_key_create(tenant=tenant, name="child", roles=["admin"], actor=Actor.for_key(root))
    grandchild, _ = api_key_create(tenant=tenant, name="grandchild", roles=["admin"], actor=Actor.for_key(child))
    minting, go, revoke_done = threading.Event(), threading.Event(), threading.Event()
    out, revoker_pid = {}, {}

    full_clean = ApiKey.full_clean

    def held_full_clean(self, *args, **kwargs):
        full_clean(self, *args, **kwargs)
        if threading.current_thread().name == "minter":
            minting.set()
            go.wait(30)

    monkeypatch.setattr(ApiKey, "full_clean", held_full_clean)

    def mint():
        try:
            out["key"], out["secret"] = api_key_create(
                tenant=tenant, name="in flight", roles=["viewer"], actor=Actor.for_key(grandchild)
            )
        except Exception as exc:  # reported to the test
            out["mint_error"] = exc
        finally:
            minting.set()
            connections.close_all()

    def revoke():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                revoker_pid["pid"] = cursor.fetchone()[0]
            api_key_revoke(key=root, actor=actor)
        except Exception as exc:
            out["revoke_error"] = exc
        finally:
            revoke_done.set()
            connections.close_all()

    minter = threading.Thread(target=mint, name="minter")
    minter.start()
    assert minting.wait(30)
    revoker = threading.Thread(target=revoke)
    revoker.start()
    while not revoke_done.is_set() and not ("pid" in revoker_pid and _waiting_on_a_lock(revoker_pid["pid"])):
        revoke_done.wait(0.01)
    go.set()
    minter.join(30)
    revoker.join(30)

    assert "mint_error" not in out and "revoke_error" not in out, out
    out["key"].refresh_from_db()
    assert out["key"].revoked_at is not None, "the key minted during the revocation survived it"
    assert _refused(out["secret"])
    (record,) = change_records(out["key"], EventType.API_KEY_REVOKED)
    assert record.payload["minted_by_revoked_key"] == root.prefix
    assert verify_chain(tenant).ok
