"""``arm.prepared.PreparedQuery`` answers exactly what its queryset answers, on both databases, with the
arguments of each call (compiled once, never reusing an earlier call's values); ``PreparedInsert`` writes
exactly what ``save()`` writes."""

import uuid
from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext

from arm.prepared import PreparedInsert, PreparedQuery, PreparedUpdate
from audit.recording import recorded_bulk_create
from policies.choices import SpendPeriod
from policies.models import InstanceSpend
from tenancy.models import ApiKey, Membership, Tenant
from tests.factories import InstanceFactory, TenantFactory, UserFactory, make_api_key

pytestmark = pytest.mark.django_db


def test_string_argument_with_joins_and_annotation():
    query = PreparedQuery(
        lambda prefix: (
            ApiKey.objects.select_related("tenant")
            .annotate(
                tenant_slug=Subquery(Tenant.objects.filter(pk=OuterRef("tenant")).values("slug")[:1]),
                upper_name=Upper("name"),
            )
            .filter(prefix=prefix)
        )
    )
    one, two = TenantFactory(), TenantFactory()
    key_one, _ = make_api_key(one, ["operator"], name="first")
    key_two, _ = make_api_key(two, ["runtime"], name="second")

    got = query.first(key_one.prefix)
    assert got.pk == key_one.pk and got.roles == ["operator"]
    with CaptureQueriesContext(connection) as ctx:
        assert got.tenant == one  # joined, no further query
        assert got.tenant_slug == one.slug and got.upper_name == "FIRST"
    assert not ctx.captured_queries
    # The next call uses its own argument, never the first call's.
    assert query.first(key_two.prefix).tenant == two
    assert query.first("nope") is None
    assert query.all("nope") == []


def test_uuid_and_date_arguments_match_the_orm():
    instance = InstanceFactory()
    other = InstanceFactory(tenant=instance.tenant)
    for inst in (instance, other):
        InstanceSpend.objects.create(
            tenant=inst.tenant, instance=inst, period=SpendPeriod.DAY, period_start=date(2026, 3, 4), amount_usd=2
        )
        InstanceSpend.objects.create(
            tenant=inst.tenant, instance=inst, period=SpendPeriod.MONTH, period_start=date(2026, 3, 1), amount_usd=9
        )
    query = PreparedQuery(
        lambda pk, day, month: (
            InstanceSpend.objects.filter(instance_id=pk).filter(period_start__in=[day, month]).order_by("period")
        ),
        uuid.UUID,
        date,
        date,
    )
    got = query.all(instance.pk, date(2026, 3, 4), date(2026, 3, 1))
    expected = list(
        InstanceSpend.objects.filter(
            instance_id=instance.pk, period_start__in=[date(2026, 3, 4), date(2026, 3, 1)]
        ).order_by("period")
    )
    assert got == expected and len(got) == 2
    assert [r.amount_usd for r in got] == [r.amount_usd for r in expected]
    assert query.all(instance.pk, date(2026, 3, 5), date(2026, 4, 1)) == []
    assert query.all(uuid.uuid4(), date(2026, 3, 4), date(2026, 3, 1)) == []


def test_membership_json_roles_annotation_is_converted():
    tenant = TenantFactory()
    user = UserFactory()
    Membership.objects.create(tenant=tenant, user=user, roles=["viewer", "approver"])
    query = PreparedQuery(
        lambda username: Tenant.objects.annotate(
            held=Subquery(Membership.objects.filter(tenant=OuterRef("pk"), user__username=username).values("roles")[:1])
        ).filter(pk=tenant.pk)
    )
    # The username is compared inside the subquery: still one parameter, found and replaced.
    assert query.first(user.username).held == ["viewer", "approver"]
    assert query.first("someone-else").held is None


def test_an_argument_that_does_not_reach_the_sql_is_refused():
    query = PreparedQuery(lambda prefix: ApiKey.objects.all())
    with pytest.raises(ValueError, match="exactly once"):
        query.first("x")


# ---------------------------------------------------------------- PreparedInsert


def _decision(instance, **overrides):
    from policies.models import PolicyDecision

    values = {
        "tenant_id": instance.tenant_id,
        "instance_id": instance.pk,
        "tool": "crm.lookup",
        "params": {"customer": 7, "tags": ["a", "é"], "nested": {"x": None}},
        "params_hash": "a" * 64,
        "data_scopes": ["pii"],
        "decision": "ALLOW",
        "risk": "LOW",
        "reasons": [{"code": "policy_allow", "message": "ok"}],
        "estimated_cost_usd": Decimal("1.2345"),
        "actor": "key:probe",
        "context": {"spend_today_usd": "0"},
    }
    return PolicyDecision(**{**values, **overrides})


def test_prepared_insert_writes_what_save_would():
    from policies.models import PolicyDecision

    insert = PreparedInsert(PolicyDecision)
    instance = InstanceFactory()
    inserted, saved = _decision(instance), _decision(instance, tool="crm.update")
    insert(inserted)
    saved.save(force_insert=True)
    assert inserted._state.adding is False and inserted.created_at is not None
    fields = [f.attname for f in PolicyDecision._meta.concrete_fields if f.attname not in ("id", "created_at", "tool")]
    got = PolicyDecision.objects.get(pk=inserted.pk)
    want = PolicyDecision.objects.get(pk=saved.pk)
    assert {f: getattr(got, f) for f in fields} == {f: getattr(want, f) for f in fields}
    assert got.created_at == inserted.created_at and got.tool == "crm.lookup"
    # Compiled once: a second row gets its own values, not the first one's.
    second = _decision(instance, tool="mail.send", params={"to": "x@example.com"})
    insert(second)
    assert PolicyDecision.objects.get(pk=second.pk).params == {"to": "x@example.com"}


def test_prepared_insert_raises_integrity_error_like_save():
    from policies.models import PolicyDecision

    insert = PreparedInsert(PolicyDecision)
    row = _decision(InstanceFactory())
    insert(row)
    again = _decision(InstanceFactory(), id=row.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert(again)


def _approval(instance, **overrides):
    from django.utils import timezone

    from approvals.models import ApprovalRequest

    now = timezone.now()
    values = {
        "tenant_id": instance.tenant_id,
        "instance_id": instance.pk,
        "tool": "email.send",
        "params": {"to": "a@example.com"},
        "params_hash": "b" * 64,
        "risk": "HIGH",
        "requester": "key:probe",
        "requested_at": now,
        "expires_at": now,
    }
    return ApprovalRequest(**{**values, **overrides})


def test_skip_conflicts_skips_only_a_unique_conflict_and_says_so():
    from approvals.models import ApprovalRequest

    insert = PreparedInsert(ApprovalRequest, skip_conflicts=True)
    instance = InstanceFactory()
    first = _approval(instance)
    assert insert(first) is True and first._state.adding is False
    # The same PENDING call again: the partial unique constraint holds it off, no error, nothing written.
    twin = _approval(instance)
    assert insert(twin) is False and twin._state.adding is True
    assert list(ApprovalRequest.objects.values_list("pk", flat=True)) == [first.pk]
    # The transaction is still usable (no savepoint was needed), and a different call is written.
    assert insert(_approval(instance, tool="email.read")) is True
    assert ApprovalRequest.objects.count() == 2
    # Only uniqueness is skipped: a CHECK violation still raises, on SQLite too (unlike INSERT OR IGNORE).
    with pytest.raises(IntegrityError), transaction.atomic():
        insert(_approval(instance, tool="other", status="BOGUS"))


def test_prepared_insert_refuses_a_database_generated_key_and_another_model():
    from policies.models import PolicyDecision

    with pytest.raises(ValueError, match="primary key"):
        PreparedInsert(InstanceSpend)
    with pytest.raises(TypeError):
        PreparedInsert(PolicyDecision)(InstanceSpend())


# ---------------------------------------------------------------- PreparedUpdate


def test_prepared_update_changes_only_its_fields_of_that_row():
    from datetime import UTC, datetime

    from registry.models import AgentVersion
    from tests.factories import VersionFactory

    update = PreparedUpdate(AgentVersion, "integrity_status", "integrity_checked_at")
    target, other = VersionFactory(), VersionFactory()
    before = AgentVersion.objects.get(pk=target.pk)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert update(target, integrity_status="TAMPERED", integrity_checked_at=at) == 1  # a recorded model: the object
    after = AgentVersion.objects.get(pk=target.pk)
    assert (after.integrity_status, after.integrity_checked_at) == ("TAMPERED", at)
    assert after.updated_at == before.updated_at  # like QuerySet.update: auto_now untouched
    assert AgentVersion.objects.get(pk=other.pk).integrity_status == other.integrity_status
    # Compiled once: the next call binds its own values; an unknown id changes nothing.
    assert update(other, integrity_status="VERIFIED", integrity_checked_at=at) == 1
    assert AgentVersion.objects.get(pk=target.pk).integrity_status == "TAMPERED"
    assert update(AgentVersion(pk=uuid.uuid4()), integrity_status="VERIFIED", integrity_checked_at=at) == 0
    with pytest.raises(TypeError):
        update(target, integrity_status="VERIFIED")
    with pytest.raises(TypeError, match="AgentVersion itself"):
        update(target.pk, integrity_status="VERIFIED", integrity_checked_at=at)


def test_prepared_update_where_changes_the_row_only_while_its_conditions_hold():
    from datetime import timedelta

    from django.utils import timezone

    from approvals.models import ApprovalRequest

    decide = PreparedUpdate(ApprovalRequest, "status", "note", where=("status", "expires_at__gt"))
    now = timezone.now()
    instance = InstanceFactory()
    due_later = _approval(instance, expires_at=now + timedelta(minutes=5))
    due_already = _approval(instance, tool="other", expires_at=now - timedelta(seconds=1))
    recorded_bulk_create([due_later, due_already])
    pending_and_open = {"status": "PENDING", "expires_at__gt": now}
    assert decide(due_already, where=pending_and_open, status="APPROVED", note="late") == 0
    assert decide(due_later, where=pending_and_open, status="APPROVED", note="first") == 1
    # The second decider's update finds the row no longer PENDING: it changes nothing.
    second = ApprovalRequest.objects.get(pk=due_later.pk)
    assert decide(second, where=pending_and_open, status="DENIED", note="second") == 0
    rows = dict(ApprovalRequest.objects.values_list("pk", "note"))
    assert rows == {due_later.pk: "first", due_already.pk: ""}
    with pytest.raises(TypeError):
        decide(due_later, where={"status": "PENDING"}, status="DENIED", note="x")
    with pytest.raises(ValueError, match="lookup"):
        PreparedUpdate(ApprovalRequest, "note", where=("status__in",))
