import pytest

from tests.factories import EnvironmentFactory, ProviderFactory, make_genome

pytestmark = pytest.mark.django_db


def test_create_template_version_instance_and_read_detail(operator, approver, tenant):
    c = operator.client
    t = c.post("/api/v1/templates/", {"name": "support-bot", "owners": ["ops@example.com"], "tags": ["support"]})
    assert t.status_code == 201, t.json()
    v = c.post(
        "/api/v1/versions/",
        {"template": t.json()["id"], "version_label": "1.0.0", "genome": make_genome()},
    )
    assert v.status_code == 201, v.json()
    body = v.json()
    assert body["lifecycle_state"] == "DRAFT"
    d = c.get(f"/api/v1/versions/{body['id']}/")
    assert d.status_code == 200, d.json()
    assert d.json()["integrity"]["status"] == "VERIFIED"
    env = EnvironmentFactory(tenant=tenant)
    prov = ProviderFactory(tenant=tenant)
    i = c.post("/api/v1/instances/", {"version": body["id"], "environment": str(env.pk), "provider": str(prov.pk)})
    assert i.status_code == 201, i.json()
    assert i.json()["state"] == "PROVISIONING"
    assert i.json()["health"] == "never"
    assert c.get("/api/v1/versions/").json()["count"] == 1
    assert c.get("/api/v1/audit/").status_code == 200
    assert c.get("/api/v1/audit/verify/").json()["ok"] is True


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_the_version_list_renders_times_as_the_detail_does(operator, tenant, zone):
    """The list's hand-built rows (``VersionSerializer.to_representation``) give the same fields as the
    detail, times included, in the current time zone with UTC as 'Z' (DRF's format)."""
    from django.utils import timezone

    from tests.factories import VersionFactory

    version = VersionFactory(tenant=tenant)
    with timezone.override(zone):
        row = operator.client.get("/api/v1/versions/").json()["results"][0]
        detail = operator.client.get(f"/api/v1/versions/{version.pk}/").json()
    for name in ("created_at", "updated_at"):
        assert row[name] == detail[name]
        assert row[name].endswith("Z") if zone == "UTC" else row[name].endswith(("+01:00", "+02:00"))
    assert {k: v for k, v in row.items() if k != "genome"} == {k: detail[k] for k in row if k != "genome"}
