"""Reusable checks for the registry, audit and identity tests: error bodies, tenant isolation, change
records, and dropping a database trigger to play an attacker with direct database access."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import threading

from django.db import connection, connections

from arm.dbtriggers import drop_triggers_sql
from audit.models import ChangeRecord

VERSION_TABLE = "registry_agentversion"
VERSION_PROTECTED_COLUMNS = ["genome", "genome_hash", "template_id", "parent_id", "tenant_id"]
AUDIT_TABLE = "audit_changerecord"


def body(response):
    try:
        return response.json()
    except (ValueError, TypeError):
        return response.content[:500]


def assert_error(response, status: int, code: str, *, message: str | None = None, contains=()) -> dict:
    """The response is a JSON error ``{"code", "message"[, "errors"]}`` with this status and code.

    ``message`` must equal the message; each of ``contains`` must appear in the message or the errors."""
    data = body(response)
    assert response.status_code == status, (response.status_code, data)
    assert isinstance(data, dict), data
    assert data.get("code") == code, data
    assert isinstance(data.get("message"), str) and data["message"], data
    if message is not None:
        assert data["message"] == message, data
    text = data["message"] + " " + json.dumps(data.get("errors"), ensure_ascii=False)
    for fragment in contains:
        assert fragment in text, (fragment, data)
    return data


def records(target=None, event_type=None, tenant=None) -> list[ChangeRecord]:
    qs = ChangeRecord.objects.all()
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    if target is not None:
        qs = qs.filter(target_id=str(target.pk))
    if event_type is not None:
        qs = qs.filter(event_type=event_type)
    return list(qs.order_by("tenant_id", "seq"))


def changed(model: str, changes: dict, **annotation) -> dict:
    """The payload of a ``<PREFIX>_CHANGED`` record (docs/audit.md): ``changes`` as {field: (before, after)},
    plus the service's annotation (``event``, ``reason``, context)."""
    diff = {name: {"before": before, "after": after} for name, (before, after) in changes.items()}
    return {"action": "changed", "model": model, "changes": diff, **annotation}


def record_count() -> int:
    return ChangeRecord.objects.count()


def drop_triggers(table: str, columns: list[str] | None = None) -> None:
    """Drop a table's guard triggers inside the test transaction (its rollback restores them)."""
    with connection.cursor() as cursor:
        for sql in drop_triggers_sql(connection.vendor, table, columns):
            cursor.execute(sql)


def raw_sql(sql: str, params=()) -> int:
    """Run raw SQL in a savepoint, so a trigger's refusal does not poison the test transaction."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def ids(response) -> set[str]:
    data = response.json()
    assert response.status_code == 200, data
    return {row["id"] for row in data["results"]}


def assert_isolated(client, url: str, *, write_methods=("post", "patch", "put", "delete"), write_body=None) -> None:
    """``url`` names another tenant's object: every read and write answers 404 (never 403, never a leak)."""
    response = client.get(url)
    assert_error(response, 404, "not_found")
    for method in write_methods:
        response = getattr(client, method)(url, write_body if write_body is not None else {}, format="json")
        assert response.status_code in (404, 405), (method, url, response.status_code, body(response))
        if response.status_code == 405:
            # a method the endpoint never offers is refused before the lookup; that leaks nothing
            assert body(response)["code"] == "method_not_allowed", body(response)
        else:
            assert body(response)["code"] == "not_found", (method, url, body(response))


def assert_post_isolated(client, url: str, payload=None) -> None:
    """A POST-only action on another tenant's object answers 404."""
    response = client.post(url, payload if payload is not None else {}, format="json")
    assert_error(response, 404, "not_found")


def member_with(tenant, roles, username: str):
    """A member (user + API key + client) holding exactly ``roles`` in ``tenant``."""
    from rest_framework.test import APIClient

    from tenancy.context import Actor
    from tests.conftest import Member
    from tests.factories import MembershipFactory, UserFactory, make_api_key

    user = UserFactory(username=username)
    MembershipFactory(tenant=tenant, user=user, roles=list(roles))
    key, secret = make_api_key(tenant, list(roles), name=f"{username} key")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return Member(user, key, secret, client, Actor(ref=f"key:{key.prefix}", api_key=key, roles=frozenset(roles)))


def db_id(obj):
    """The primary key as the database stores it (hex text on SQLite, uuid on PostgreSQL), for raw SQL."""
    return obj._meta.pk.get_db_prep_value(obj.pk, connection)


def tamper_genome(version, genome_text: str | None = None, *, rehash: bool = False) -> str:
    """Play an attacker: drop the write-once trigger and rewrite the stored genome text with raw SQL.
    ``rehash``: a superuser with SQL rewrites ``genome_hash`` to match, so the row still verifies."""
    if genome_text is None:
        genome_text = json.dumps(
            {**version.genome, "prompt_bundle_hash": "sha256:" + "66" * 32}, sort_keys=True, separators=(",", ":")
        )
    drop_triggers(VERSION_TABLE, VERSION_PROTECTED_COLUMNS)
    params = [genome_text, db_id(version)]
    if rehash:
        sql = f"UPDATE {VERSION_TABLE} SET genome = %s, genome_hash = %s WHERE id = %s"
        params.insert(1, hashlib.sha256(genome_text.encode()).hexdigest())
    else:
        sql = f"UPDATE {VERSION_TABLE} SET genome = %s WHERE id = %s"
    assert raw_sql(sql, params) == 1
    return genome_text


def race(calls):
    """Run the callables at the same moment, one thread (and database connection) each; returns their
    results in order. For PostgreSQL tests marked ``django_db(transaction=True)``."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except Exception as exc:  # reported to the test as the result
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def policy_id_of(instance):
    """The id of the policy ``instance`` runs under now (its ``policies.PolicyAttachment``), or None."""
    from policies.models import PolicyAttachment

    return PolicyAttachment.objects.filter(pk=instance.pk).values_list("policy_id", flat=True).first()


def run_async(coro):
    """``asyncio.run(coro)``, in a thread of its own when this thread already runs an event loop:
    Playwright's sync API keeps one running for the rest of the session in the xdist worker that ran a
    browser test, and ``asyncio.run`` refuses to start inside it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
