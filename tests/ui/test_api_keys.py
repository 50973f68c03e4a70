"""Tenant admins create and revoke API keys in the UI; the secret is shown once and never stored."""

import pytest
from django.urls import reverse

from audit.choices import EventType
from tenancy.models import ApiKey, hash_secret
from tests.helpers import records

pytestmark = pytest.mark.django_db


def test_admin_creates_a_key_and_sees_the_secret_once(login, admin_member, world):
    client = login(admin_member)
    response = client.post(
        reverse("ui:api_keys"), {"name": "eu runtime", "roles": ["runtime"], "instance": str(world.instance.pk)}
    )
    assert response.status_code == 200
    assert {"no-store", "private"} <= {part.strip() for part in response["Cache-Control"].split(",")}
    html = response.content.decode()
    key = ApiKey.objects.get(tenant=world.tenant, name="eu runtime")
    assert key.roles == ["runtime"] and key.instance_binding.instance_id == world.instance.pk
    secret = html.split('id="new-secret-value" aria-label="The new API key" data-select-on-click', 1)[0]
    secret = secret.rsplit('value="', 1)[1].split('"', 1)[0]
    assert secret.startswith(f"arm_{key.prefix}_") and hash_secret(secret) == key.key_hash
    assert records(key, EventType.API_KEY_CREATED)
    # Shown once: the list page never shows it again.
    assert secret not in client.get(reverse("ui:api_keys")).content.decode()


def test_key_form_errors(login, admin_member, world):
    html = login(admin_member).post(reverse("ui:api_keys"), {"name": "no roles"}).content.decode()
    assert 'data-field-error="roles"' in html and 'value="no roles"' in html
    assert not ApiKey.objects.filter(name="no roles").exists()


def test_revoke(login, admin_member, world):
    client = login(admin_member)
    key = admin_member.key
    response = client.post(reverse("ui:api_key_revoke", args=[key.pk]), follow=True)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "revoked" in response.content.decode()
    response = client.post(reverse("ui:api_key_revoke", args=[key.pk]), follow=True)
    assert "already revoked" in response.content.decode()


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance"])
def test_only_admins_manage_keys(login, cast, role, world):
    client = login(cast[role])
    assert client.get(reverse("ui:api_keys")).status_code == 403
    assert client.post(reverse("ui:api_keys"), {"name": "x", "roles": ["viewer"]}).status_code == 403
    assert client.post(reverse("ui:api_key_revoke", args=[cast["admin"].key.pk])).status_code == 403
    assert 'href="/settings/api-keys/"' not in client.get(reverse("ui:directory")).content.decode()


def test_keys_of_another_tenant_are_invisible_and_404(login, admin_member, outsider, world):
    client = login(admin_member)
    assert outsider.key.prefix not in client.get(reverse("ui:api_keys")).content.decode()
    assert client.post(reverse("ui:api_key_revoke", args=[outsider.key.pk])).status_code == 404
    outsider.key.refresh_from_db()
    assert outsider.key.revoked_at is None


def test_a_foreign_instance_cannot_be_bound(login, admin_member, world, other_world):
    html = (
        login(admin_member)
        .post(
            reverse("ui:api_keys"), {"name": "sneaky", "roles": ["runtime"], "instance": str(other_world.instance.pk)}
        )
        .content.decode()
    )
    assert 'data-field-error="instance"' in html
    assert not ApiKey.objects.filter(name="sneaky").exists()
