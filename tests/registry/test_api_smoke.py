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
