"""Integrity verification on detail reads (SPEC §3): a row changed behind ARM's back (trigger dropped in
the test) reads TAMPERED with both hashes, is recorded, and quarantines the version's live instances;
``verify_integrity`` exits 1. List reads never verify."""

import hashlib
import json

import pytest
import rfc8785
from django.core.management import call_command

from audit.choices import EventType
from audit.recording import recorded_update
from registry.choices import InstanceState, IntegrityStatus
from registry.models import AgentInstance, AgentVersion
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory
from tests.helpers import (
    VERSION_PROTECTED_COLUMNS,
    VERSION_TABLE,
    db_id,
    drop_triggers,
    raw_sql,
    record_count,
    records,
    tamper_genome,
)

pytestmark = pytest.mark.django_db

S = InstanceState


@pytest.fixture
def version(tenant):
    return VersionFactory(
        template=TemplateFactory(tenant=tenant, name="support-bot"),
        version_label="1.4.0",
        lifecycle_state="APPROVED",
        eval_status="PASS",
    )


def detail(member, version):
    response = member.client.get(f"/api/v1/versions/{version.pk}/")
    assert response.status_code == 200, response.json()
    return response.json()


def integrity_records(version=None):
    return records(version, EventType.INTEGRITY_VERIFIED) + records(version, EventType.INTEGRITY_FAILED)


def test_untouched_version_reads_verified_and_is_recorded(viewer, version):
    data = detail(viewer, version)

    integrity = data["integrity"]
    assert integrity["status"] == "VERIFIED"
    assert integrity["stored_hash"] == integrity["computed_hash"] == version.genome_hash
    assert integrity["checked_at"]
    (record,) = records(version, EventType.INTEGRITY_VERIFIED)
    assert record.actor == viewer.actor.ref
    assert record.payload == {
        "action": "changed",
        "model": "registry.AgentVersion",
        "changes": {"integrity_status": {"before": "UNCHECKED", "after": "VERIFIED"}},
        "event": "INTEGRITY_VERIFIED",
        "status": "VERIFIED",
        "stored_hash": version.genome_hash,
        "computed_hash": version.genome_hash,
    }
    assert AgentVersion.objects.get(pk=version.pk).integrity_status == IntegrityStatus.VERIFIED


def test_every_detail_read_verifies_again_but_only_a_change_is_recorded(viewer, version):
    first = detail(viewer, version)
    second = detail(viewer, version)
    # each read recomputed the hash and stamped the row; the trail holds the first verification only
    assert second["integrity"]["checked_at"] > first["integrity"]["checked_at"]
    assert AgentVersion.objects.get(pk=version.pk).integrity_checked_at.isoformat().replace("+00:00", "Z") >= (
        second["integrity"]["checked_at"].replace("+00:00", "Z")
    )
    assert len(records(version, EventType.INTEGRITY_VERIFIED)) == 1
    # a change of result is recorded again: VERIFIED -> TAMPERED
    tamper_genome(version)
    assert detail(viewer, version)["integrity"]["status"] == "TAMPERED"
    assert len(records(version, EventType.INTEGRITY_FAILED)) == 1


def test_tampered_genome_reads_tampered_with_both_hashes(viewer, version):
    text = tamper_genome(version)
    expected_computed = hashlib.sha256(rfc8785.dumps(json.loads(text))).hexdigest()

    data = detail(viewer, version)

    assert data["integrity"]["status"] == "TAMPERED"
    assert data["integrity"]["stored_hash"] == version.genome_hash
    assert data["integrity"]["computed_hash"] == expected_computed != version.genome_hash
    (record,) = records(version, EventType.INTEGRITY_FAILED)
    assert record.payload == {
        "action": "changed",
        "model": "registry.AgentVersion",
        "changes": {"integrity_status": {"before": "UNCHECKED", "after": "TAMPERED"}},
        "event": "INTEGRITY_FAILED",
        "status": "TAMPERED",
        "stored_hash": version.genome_hash,
        "computed_hash": expected_computed,
    }
    assert records(version, EventType.INTEGRITY_VERIFIED) == []
    assert AgentVersion.objects.get(pk=version.pk).integrity_status == IntegrityStatus.TAMPERED


def test_a_copy_read_before_the_tampering_is_checked_against_the_stored_row(version):
    """Callers that read the version earlier (the deployment gate, the UI) get the hash of what is stored
    now: the service reads the genome again unless told the caller read the row just now."""
    from registry.services import version_verify_integrity

    earlier = AgentVersion.objects.get(pk=version.pk)
    tamper_genome(version)

    assert version_verify_integrity(version=earlier).status == IntegrityStatus.TAMPERED


def test_tampered_hash_column_reads_tampered(viewer, version):
    drop_triggers(VERSION_TABLE, VERSION_PROTECTED_COLUMNS)
    raw_sql(f"UPDATE {VERSION_TABLE} SET genome_hash = %s WHERE id = %s", ["e" * 64, db_id(version)])

    data = detail(viewer, version)

    assert data["integrity"] | {"checked_at": None} == {
        "status": "TAMPERED",
        "stored_hash": "e" * 64,
        "computed_hash": version.genome_hash,
        "checked_at": None,
    }


@pytest.mark.parametrize("text", ["{not json", "", '"just a string"', "[]"])
def test_genome_text_that_no_longer_parses_reads_tampered_not_500(viewer, version, text):
    tamper_genome(version, text)

    data = detail(viewer, version)

    assert data["integrity"]["status"] == "TAMPERED"
    assert len(records(version, EventType.INTEGRITY_FAILED)) == 1


def test_tampering_quarantines_every_live_instance_with_a_record(viewer, version):
    live = {
        state: InstanceFactory(version=version, state=state)
        for state in [S.PROVISIONING, S.ACTIVE, S.PAUSED, S.READONLY, S.DRAINING]
    }
    retired = InstanceFactory(version=version, state=S.RETIRED)
    already = InstanceFactory(version=version, state=S.QUARANTINED)
    unrelated = InstanceFactory(version=VersionFactory(template=version.template), state=S.ACTIVE)
    tamper_genome(version)

    detail(viewer, version)

    for state, instance in live.items():
        assert AgentInstance.objects.get(pk=instance.pk).state == S.QUARANTINED
        (record,) = records(instance, EventType.INSTANCE_TRANSITIONED)
        assert record.transition == (state, "QUARANTINED")
        assert (record.payload["event"], record.payload["reason"]) == (
            "INSTANCE_TRANSITIONED",
            "integrity check failed",
        )
        assert record.actor == "system"
    assert AgentInstance.objects.get(pk=retired.pk).state == S.RETIRED
    assert AgentInstance.objects.get(pk=unrelated.pk).state == S.ACTIVE
    for untouched in (retired, already, unrelated):
        assert records(untouched, EventType.INSTANCE_TRANSITIONED) == []
    # the failure is recorded before the quarantines it causes
    (failed,) = records(version, EventType.INTEGRITY_FAILED)
    assert all(failed.seq < r.seq for r in records(event_type=EventType.INSTANCE_TRANSITIONED))


def test_reading_a_tampered_version_again_does_not_requarantine(viewer, version):
    instance = InstanceFactory(version=version, state=S.ACTIVE)
    tamper_genome(version)
    detail(viewer, version)
    detail(viewer, version)
    assert len(records(instance, EventType.INSTANCE_TRANSITIONED)) == 1
    assert len(records(version, EventType.INTEGRITY_FAILED)) == 1  # the change; the second read found the same


def test_list_never_verifies(viewer, version, tenant):
    InstanceFactory(version=version, state=S.ACTIVE)
    tamper_genome(version)
    before = record_count()

    response = viewer.client.get("/api/v1/versions/")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(version.pk)]
    assert "integrity" not in response.json()["results"][0]
    assert record_count() == before
    assert integrity_records() == []
    assert AgentVersion.objects.get(pk=version.pk).integrity_status == IntegrityStatus.UNCHECKED
    assert not AgentInstance.objects.filter(state=S.QUARANTINED).exists()


def test_instance_list_and_detail_do_not_verify_either(viewer, version):
    instance = InstanceFactory(version=version, state=S.ACTIVE)
    tamper_genome(version)
    assert viewer.client.get("/api/v1/instances/").status_code == 200
    assert viewer.client.get(f"/api/v1/instances/{instance.pk}/").status_code == 200
    assert integrity_records() == []


# ---------------------------------------------------------------- verify_integrity


def test_verify_integrity_exits_3_and_names_the_tampered_version(version, tenant, capsys):
    clean = VersionFactory(template=version.template, version_label="1.5.0")
    instance = InstanceFactory(version=version, state=S.ACTIVE)
    tamper_genome(version)

    with pytest.raises(SystemExit) as exc:
        call_command("verify_integrity")

    assert exc.value.code == 3
    out = capsys.readouterr().out
    assert str(version.pk) in out and "TAMPERED" in out
    assert str(clean.pk) not in out
    assert len(records(version, EventType.INTEGRITY_FAILED)) == 1
    # a healthy version gets its mark in bulk: its first one is a change of integrity_status, recorded
    created, marked = records(clean)
    assert (created.event_type, marked.event_type) == (EventType.VERSION_CREATED, EventType.VERSION_CHANGED)
    assert marked.payload["changes"] == {"integrity_status": {"before": "UNCHECKED", "after": "VERIFIED"}}
    assert (marked.payload["reason"], marked.actor) == ("integrity sweep", "system")
    assert AgentVersion.objects.get(pk=clean.pk).integrity_status == IntegrityStatus.VERIFIED
    (sweep,) = records(event_type=EventType.INTEGRITY_SWEEP)
    assert sweep.payload == {"checked": 2, "verified": 1, "tampered": [str(version.pk)]}
    assert AgentInstance.objects.get(pk=instance.pk).state == S.QUARANTINED
    assert records(version, EventType.INTEGRITY_FAILED)[0].actor == "system"
    # marked again by a later sweep: nothing recorded changed, no record (the sweep's counts say it)
    with pytest.raises(SystemExit):
        call_command("verify_integrity")
    assert len(records(clean)) == 2


def test_verify_integrity_succeeds_when_everything_verifies(version, capsys):
    VersionFactory(template=version.template, version_label="1.5.0")

    call_command("verify_integrity")  # returns normally: exit status 0

    assert "2 VERIFIED, 0 TAMPERED" in capsys.readouterr().out
    assert records(event_type=EventType.INTEGRITY_VERIFIED) == []
    (sweep,) = records(event_type=EventType.INTEGRITY_SWEEP)
    assert sweep.payload == {"checked": 2, "verified": 2, "tampered": []}
    assert sweep.target_type == "Tenant" and sweep.target_id == str(version.tenant_id)
    assert set(AgentVersion.objects.values_list("integrity_status", flat=True)) == {IntegrityStatus.VERIFIED}


def test_a_sweep_does_not_clear_a_tampered_mark_without_recording_the_recovery(version, capsys):
    # e.g. an operator restored the genome text: the recovery is a change worth a record
    recorded_update(AgentVersion.objects.filter(pk=version.pk), integrity_status=IntegrityStatus.TAMPERED)
    call_command("verify_integrity")
    (verified,) = records(version, EventType.INTEGRITY_VERIFIED)
    assert verified.payload["status"] == "VERIFIED"
    assert AgentVersion.objects.get(pk=version.pk).integrity_status == IntegrityStatus.VERIFIED


def test_verify_integrity_shows_progress_lines_off_a_terminal_with_progress(version, capsys, monkeypatch):
    from registry import services

    monkeypatch.setattr(services, "SWEEP_CHUNK", 2)
    for n in range(4):
        VersionFactory(template=version.template, version_label=f"2.{n}.0")
    from arm.commandutils import Progress

    monkeypatch.setitem(Progress.__init__.__kwdefaults__, "every", 0.0)  # a line per chunk

    call_command("verify_integrity")
    assert "Verifying" not in capsys.readouterr().err  # cron: the result only

    call_command("verify_integrity", progress=True)

    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("Verifying")]
    assert lines[0].startswith("Verifying 2/5 (40%)") and "left" in lines[0]
    assert lines[-1].startswith("Verifying 5/5 (100%)")
    assert "\r" not in captured.err
    assert "Checked 5 version(s) in 1 tenant(s)" in captured.out


def test_verify_integrity_for_one_tenant_checks_only_that_tenant(version, other_tenant, capsys):
    theirs = VersionFactory(template=TemplateFactory(tenant=other_tenant))
    tamper_genome(theirs)

    call_command("verify_integrity", tenant=version.tenant.slug)  # ours is clean

    assert [r.event_type for r in records(theirs)] == [EventType.VERSION_CREATED]
    with pytest.raises(SystemExit) as exc:
        call_command("verify_integrity", tenant=other_tenant.slug)
    assert exc.value.code == 3
