"""The demo runtime's keys: minted by seed_demo through the accounts service, runtime role only, one
unbound host key per tenant and one key bound to each calling agent; the secrets only in a 0600 file
(ARM keeps hashes); a lost file means new keys, the old ones revoked with their records."""

import stat
from io import StringIO

import pytest
from django.core.management import call_command

from audit.models import ChangeRecord
from demo.keys import CALLING_STATES, read_keys_file
from registry.models import AgentInstance
from tenancy.context import Actor
from tenancy.models import ApiKey, hash_secret

pytestmark = pytest.mark.django_db


def seed(keys_file) -> str:
    out = StringIO()
    call_command("seed_demo", "--keys-file", str(keys_file), stdout=out)
    return out.getvalue()


def key_of(secret: str) -> ApiKey:
    key = ApiKey.objects.get(prefix=secret.split("_")[1])
    assert key.key_hash == hash_secret(secret)
    return key


def test_seed_demo_mints_runtime_keys_kept_only_in_a_private_file(tmp_path):
    keys_file = tmp_path / "keys.json"
    out = seed(keys_file)

    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    data = read_keys_file(keys_file)
    minted = 0
    for host in data["hosts"]:
        host_key = key_of(host["host_key"])
        bound = Actor.for_key(host_key).bound_instance_id  # the binding is registry.InstanceKey
        assert (host_key.tenant.slug, host_key.roles, bound) == (host["tenant"], ["runtime"], None)
        calling = AgentInstance.objects.filter(tenant=host_key.tenant, state__in=CALLING_STATES)
        assert {a["instance"] for a in host["agents"]} == {str(pk) for pk in calling.values_list("pk", flat=True)}
        for agent in host["agents"]:
            key = key_of(agent["key"])
            assert (key.roles, str(Actor.for_key(key).bound_instance_id)) == (["runtime"], agent["instance"])
            assert agent["tools"] and agent["models"]
        minted += 1 + len(host["agents"])
    assert f"Demo runtime keys: {minted} minted, kept in {keys_file} (mode 0600, for demo_runtime)" in out
    assert ChangeRecord.objects.filter(event_type="API_KEY_CREATED").count() == minted


def test_a_lost_keys_file_gets_new_keys_and_the_old_ones_revoked(tmp_path):
    keys_file = tmp_path / "keys.json"
    seed(keys_file)
    old = {h["host_key"] for h in read_keys_file(keys_file)["hosts"]}
    keys_file.unlink()

    out = seed(keys_file)

    assert "Demo already seeded" not in out and "minted" in out
    new = {h["host_key"] for h in read_keys_file(keys_file)["hosts"]}
    assert new.isdisjoint(old)
    for secret in old:
        key = ApiKey.objects.get(prefix=secret.split("_")[1])
        assert key.revoked_at is not None
        assert ChangeRecord.objects.filter(event_type="API_KEY_REVOKED", target_id=str(key.pk)).exists()
    assert all(key_of(secret).revoked_at is None for secret in new)
