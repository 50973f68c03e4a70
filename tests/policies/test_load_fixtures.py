"""``manage.py load_fixtures``: the sample tenant's files go through the services (hashes and change
records made by ARM), re-running skips what exists and says so, and a bad file writes nothing and names
the file and the field."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.choices import EventType
from audit.models import ChangeRecord
from policies.models import PolicyEnvelope
from registry.genome import genome_hash
from registry.models import AgentTemplate, AgentVersion, Environment, Provider
from tests.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db
SAMPLE = Path(settings.BASE_DIR) / "fixtures" / "sample-tenant"


def load(path, tenant, *extra) -> str:
    out = StringIO()
    call_command("load_fixtures", str(path), "--tenant", tenant.slug, *extra, stdout=out)
    return out.getvalue()


@pytest.fixture
def sample(tmp_path):
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE, target)
    return target


def test_the_sample_tenant_loads_through_the_services(tenant, other_tenant):
    out = load(SAMPLE, tenant)
    assert "12 created, 0 skipped" in out
    assert Environment.objects.filter(tenant=tenant).count() == 3
    assert Provider.objects.filter(tenant=tenant).count() == 2
    assert set(AgentTemplate.objects.filter(tenant=tenant).values_list("name", flat=True)) == {
        "support-triage",
        "invoice-assistant",
    }
    assert PolicyEnvelope.objects.get(tenant=tenant, name="billing-guarded").tool_risk_overrides == {
        "billing.refund": "critical"
    }
    child = AgentVersion.objects.get(tenant=tenant, version_label="1.1.0")
    assert child.parent.version_label == "1.0.0" and child.lifecycle_state == "DRAFT"
    for version in AgentVersion.objects.filter(tenant=tenant):
        assert version.genome_hash == genome_hash(version.genome)  # computed by ARM from the stored text
    records = ChangeRecord.objects.filter(tenant=tenant)
    assert records.filter(event_type=EventType.VERSION_CREATED).count() == 3
    assert records.filter(event_type=EventType.POLICY_CREATED).count() == 2
    assert set(records.exclude(event_type=EventType.TENANT_CREATED).values_list("actor", flat=True)) == {"system"}
    assert not AgentTemplate.objects.filter(tenant=other_tenant).exists()


def test_rerunning_skips_what_exists_and_says_so(tenant, sample):
    EnvironmentFactory(tenant=tenant, name="dev", tier="staging")  # made by hand: left as is
    first = load(sample, tenant)
    assert "skipped  environment dev: already exists, left as is" in first
    assert Environment.objects.get(tenant=tenant, name="dev").tier == "staging"
    before = ChangeRecord.objects.filter(tenant=tenant).count()
    (sample / "genomes" / "support-triage-1.0.0.json").write_text(
        (sample / "genomes" / "support-triage-1.0.0.json").read_text().replace("gpt-4.1", "gpt-5")
    )
    second = load(sample, tenant)
    assert "0 created, 12 skipped" in second
    assert "support-triage @1.0.0: already exists, left as is (the file's genome differs" in second
    assert "support-triage @1.1.0: already exists, left as is\n" in second
    assert ChangeRecord.objects.filter(tenant=tenant).count() == before


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "policies.yaml",
            "autonomy_tier: 1",
            "autonomy_tier: 1\n    colour: red",
            "policies.yaml: policies[1].colour: unknown field",
        ),
        (
            "templates.yaml",
            "tags: [billing]",
            "tags: [Billing Team]",
            "templates.yaml: templates[1].tags: Tags are short slugs",
        ),
        (
            "templates.yaml",
            "parent: 1.0.0",
            "parent: 0.1.0",
            "templates.yaml: templates[0].versions[1].parent: no version '0.1.0'",
        ),
        ("environments.yaml", "tier: prod", "tier: live", "environments.yaml: environments[2].tier:"),
        ("providers.yaml", "providers:", "providers: [", "providers.yaml: not valid YAML: line"),
        (
            "genomes/invoice-assistant-0.9.0.json",
            '"billing.lookup"',
            '"billing.refund"',
            "genomes/invoice-assistant-0.9.0.json: tool_manifest[1].name 'billing.refund' is declared twice",
        ),
        (
            "templates.yaml",
            "genomes/invoice-assistant-0.9.0.json",
            "genomes/missing.json",
            "templates[1].versions[0].genome: no file 'genomes/missing.json'",
        ),
        (
            "genomes/invoice-assistant-0.9.0.json",
            '"billing.lookup"',
            '"billing.lookup",,',
            "genomes/invoice-assistant-0.9.0.json: not valid JSON",
        ),
    ],
)
def test_a_bad_file_writes_nothing_and_names_the_file_and_field(tenant, sample, file, old, new, message):
    path = sample / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    before = ChangeRecord.objects.filter(tenant=tenant).count()
    with pytest.raises(CommandError) as excinfo:
        load(sample, tenant)
    assert message in str(excinfo.value), str(excinfo.value)
    if file.startswith("genomes/"):  # the genome's own file is named first, then where it is used
        assert str(excinfo.value).startswith(str(path) + ": ")
        assert str(excinfo.value).endswith("templates.yaml: templates[1].versions[0])")
    assert ChangeRecord.objects.filter(tenant=tenant).count() == before
    assert not Environment.objects.filter(tenant=tenant).exists()


def test_an_unknown_tenant_or_an_empty_directory_is_refused(tenant, tmp_path):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("load_fixtures", str(SAMPLE), "--tenant", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="no fixture file found"):
        load(tmp_path, tenant)
