"""Identity commands (SPEC §9): create_tenant, create_user, create_api_key. Their changes are on the
audit trail, attributed to ``system`` or ``--actor``; create_api_key prints the key alone on its last
line, and that key works."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from audit.choices import EventType
from tenancy.models import ApiKey, Membership, Tenant
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory
from tests.helpers import records

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


# ---------------------------------------------------------------- create_tenant


def test_create_tenant(db):
    out = run("create_tenant", "initech", name="Initech Corp")

    tenant = Tenant.objects.get(slug="initech")
    assert tenant.name == "Initech Corp"
    assert "initech" in out
    (record,) = records(tenant, EventType.TENANT_CREATED)
    assert (record.actor, record.seq, record.tenant_id) == ("system", 1, tenant.pk)


def test_create_tenant_refuses_a_duplicate_or_bad_slug(tenant):
    with pytest.raises(CommandError):
        run("create_tenant", "acme")
    with pytest.raises(CommandError):
        run("create_tenant", "Not A Slug!")
    assert Tenant.objects.count() == 1


# ---------------------------------------------------------------- create_user


def test_create_user_with_several_roles_and_a_password(tenant):
    run("create_user", "dana", "--tenant", "acme", "--role", "viewer", "--role", "operator", "--password", "s3cret-pw!")

    user = get_user_model().objects.get(username="dana")
    assert user.check_password("s3cret-pw!")
    membership = Membership.objects.get(user=user, tenant=tenant)
    assert sorted(membership.roles) == ["operator", "viewer"]
    (record,) = records(membership, EventType.MEMBERSHIP_CREATED)
    assert record.actor == "system"
    assert (record.payload["user"], record.payload["after"]["roles"]) == ("dana", ["operator", "viewer"])


def test_create_user_again_changes_the_roles(tenant):
    run("create_user", "dana", "--tenant", "acme", "--role", "viewer")
    run("create_user", "dana", "--tenant", "acme", "--role", "approver")
    membership = Membership.objects.get(user__username="dana", tenant=tenant)
    assert membership.roles == ["approver"]
    created, changed = records(membership)
    assert (created.event_type, created.payload["after"]["roles"]) == (EventType.MEMBERSHIP_CREATED, ["viewer"])
    assert changed.event_type == EventType.MEMBERSHIP_CHANGED
    assert changed.payload["changes"] == {"roles": {"before": ["viewer"], "after": ["approver"]}}


def test_create_user_without_password_cannot_sign_in(tenant):
    run("create_user", "erin", "--tenant", "acme", "--role", "viewer")
    assert not get_user_model().objects.get(username="erin").has_usable_password()


def test_create_user_without_password_prints_the_full_set_password_url_in_a_sentence(tenant):
    out = run("create_user", "erin", "--tenant", "acme", "--role", "viewer", "--base-url", "https://arm.example.com/")

    (line,) = [line for line in out.splitlines() if "one-time link" in line]
    url = re.search(r"https://arm\.example\.com/\S+/", line).group(0)
    assert line.startswith("No password set yet: send erin this one-time link to choose one: https://")
    assert "//" not in url.removeprefix("https://")  # base URL and path joined once
    # no line is the bare path alone
    assert not any(line.strip().startswith("/") for line in out.splitlines())
    assert "http://127.0.0.1:8000/" in run("create_user", "ivy", "--tenant", "acme", "--role", "viewer")


def test_create_user_in_a_second_tenant(tenant, other_tenant):
    run("create_user", "frank", "--tenant", "acme", "--role", "viewer")
    run("create_user", "frank", "--tenant", "globex", "--role", "admin")
    assert {m.tenant.slug: m.roles for m in Membership.objects.filter(user__username="frank")} == {
        "acme": ["viewer"],
        "globex": ["admin"],
    }


@pytest.mark.parametrize(
    "args",
    [
        ["gina", "--tenant", "nowhere", "--role", "viewer"],
        ["gina", "--tenant", "acme", "--role", "runtime"],
        ["gina", "--tenant", "acme", "--role", "root"],
        ["gina", "--tenant", "acme"],
    ],
)
def test_create_user_refuses_bad_input(tenant, args):
    with pytest.raises(CommandError):
        run("create_user", *args)
    assert not get_user_model().objects.filter(username="gina").exists()


def test_command_changes_can_be_attributed_to_a_named_user(tenant):
    run("create_user", "ops-lead", "--tenant", "acme", "--role", "admin")
    run("create_user", "hank", "--tenant", "acme", "--role", "viewer", "--actor", "ops-lead")
    membership = Membership.objects.get(user__username="hank")
    (record,) = records(membership, EventType.MEMBERSHIP_CREATED)
    assert record.actor == "user:ops-lead"


# ---------------------------------------------------------------- create_api_key

KEY_LINE = re.compile(r"^arm_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}$")


def test_create_api_key_prints_the_key_alone_on_the_last_line_and_it_works(tenant):
    out = run("create_api_key", "--tenant", "acme", "--role", "operator", "--role", "viewer", "--name", "ci")

    last = out.rstrip("\n").split("\n")[-1]
    assert KEY_LINE.match(last), out
    key = ApiKey.objects.get(name="ci")
    assert sorted(key.roles) == ["operator", "viewer"]
    assert last.split("_")[1] == key.prefix
    assert last not in str(ApiKey.objects.filter(pk=key.pk).values().get())

    client = bearer(last)
    assert client.get("/api/v1/templates/").status_code == 200
    created = client.post("/api/v1/templates/", {"name": "from-ci", "owners": ["ci@example.com"]}, format="json")
    assert created.status_code == 201, created.json()

    (record,) = records(key, EventType.API_KEY_CREATED)
    assert record.actor == "system"
    assert record.tenant_id == tenant.pk


def test_create_api_key_output_is_usable_by_a_script(tenant):
    # `KEY=$(manage.py create_api_key ... | tail -n 1)`
    out = run("create_api_key", "--tenant", "acme", "--role", "viewer")
    assert KEY_LINE.match(out.splitlines()[-1])
    assert out.count(out.splitlines()[-1]) == 1  # the secret is printed once


def test_create_api_key_bound_to_an_instance(tenant):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)), state="ACTIVE")
    other = InstanceFactory(version=instance.version, state="ACTIVE")

    out = run("create_api_key", "--tenant", "acme", "--role", "runtime", "--instance", str(instance.pk))

    client = bearer(out.splitlines()[-1])
    assert client.post(f"/api/v1/instances/{instance.pk}/heartbeat/", {}, format="json").status_code == 200
    assert client.post(f"/api/v1/instances/{other.pk}/heartbeat/", {}, format="json").status_code == 404


@pytest.mark.parametrize(
    "args",
    [
        ["--tenant", "nowhere", "--role", "viewer"],
        ["--tenant", "acme", "--role", "wizard"],
        ["--tenant", "acme"],
        ["--tenant", "acme", "--role", "runtime", "--instance", "not-a-uuid"],
        ["--tenant", "acme", "--role", "runtime", "--instance", "7d444840-9dc0-11d1-b245-5ffdce74fad2"],
    ],
)
def test_create_api_key_refuses_bad_input(tenant, args):
    with pytest.raises(CommandError):
        run("create_api_key", *args)
    assert not ApiKey.objects.exists()


def test_create_api_key_refuses_another_tenants_instance(tenant, other_tenant):
    theirs = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=other_tenant)))
    with pytest.raises(CommandError):
        run("create_api_key", "--tenant", "acme", "--role", "runtime", "--instance", str(theirs.pk))
    assert not ApiKey.objects.exists()


def test_progress_on_a_terminal_redraws_one_line_with_a_bar_rate_and_eta():
    import io

    from django.core.management.base import OutputWrapper

    from arm.commandutils import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    now = [100.0]
    out = Terminal()
    progress = Progress(OutputWrapper(out), 1000, "Verifying", clock=lambda: now[0])
    now[0] = 110.0
    progress.update(250)
    now[0] = 140.0
    progress.update(1000)
    progress.finish()

    text = out.getvalue()
    assert text.startswith("\rVerifying [######..................] 250/1,000 (25%) 25/s ETA 30s")
    assert "\rVerifying [########################] 1,000/1,000 (100%) 25/s ETA 0s" in text
    assert text.endswith("\n")
