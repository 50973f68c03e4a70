"""Browser tests: headless Chromium (Debian's package) driving a real ARM server.

The server runs in a subprocess against its OWN throwaway database (never the test database, and not
pytest-django's ``live_server``, whose DELETE-based flush cannot run against ARM's append-only and
write-once triggers): a temporary SQLite file, or a uniquely named PostgreSQL database when the suite
runs with ``DATABASE_URL=postgres…``. It is migrated and seeded with ``seed_demo``, a pending approval
is opened through the policy services, and the server is stopped and the database dropped at the end.
Under xdist that seeded database is built once per run and each worker's server gets a copy of its own
(serverdb.py). The server runs ARM's settings with a fast password hasher (server_settings.py).

Without /usr/bin/chromium the tests skip with the reason (``ARM_REQUIRE_BROWSER=1`` makes them fail
instead, as CI does).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.serverdb import ThrowawayDatabase, shared_copy

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_USERNAME, ADMIN_PASSWORD = "browser-root", "browser-root-pass"
# Opened after seeding so the approval center has a request this suite owns.
APPROVAL_PARAMS_MARKER = "BROWSER-1"
OPEN_APPROVAL = f"""
from tenancy.context import Actor
from tenancy.models import Tenant
from django.contrib.auth import get_user_model
from policies.services import policy_attach, policy_create, policy_evaluate
from registry.choices import InstanceState
from registry.models import AgentInstance

tenant = Tenant.objects.get(slug="acme")
users = get_user_model().objects
operator = Actor.for_user(users.get(username="acme-operator"), ["operator"])
compliance = Actor.for_user(users.get(username="acme-compliance"), ["compliance"])
instance = next(
    i for i in AgentInstance.objects.filter(tenant=tenant, state=InstanceState.ACTIVE).select_related("version")
    if i.version.genome.get("tool_manifest")
)
policy = policy_create(
    tenant=tenant, actor=compliance, name="browser-supervised", autonomy_tier=1, allowed_tools=["*"],
    data_scopes=["*"],
)
policy_attach(instance=instance, policy=policy, actor=compliance)
tool = instance.version.genome["tool_manifest"][0]["name"]
result = policy_evaluate(
    tenant=tenant, instance_id=instance.pk, tool=tool, params={{"ticket": "{APPROVAL_PARAMS_MARKER}"}}, actor=operator
)
assert result.decision.decision == "NEEDS_APPROVAL", result.as_response()
print("approval", result.approval_id)
"""

# A template, instance and API key with very long names (the tables must truncate them, not overflow).
LONG_NAME = (
    "customer-support-escalation-triage-agent-for-enterprise-accounts-in-the-emea-region-"
    "with-extended-sla-handling-and-multilingual-routing"
)
SEED_LONG_NAMES = f"""
from tenancy.context import Actor
from tenancy.models import Tenant
from registry.services import api_key_create
from django.contrib.auth import get_user_model
from registry.choices import EnvironmentTier
from registry.models import Environment, Provider
from registry.services import instance_create, template_create, version_create

tenant = Tenant.objects.get(slug="acme")
users = get_user_model().objects
operator = Actor.for_user(users.get(username="acme-operator"), ["operator"])
admin = Actor.for_user(users.get(username="acme-admin"), ["admin"])
template = template_create(tenant=tenant, actor=operator, name="{LONG_NAME}", owners=["qa@example.com"], tags=["qa"])
genome = {{
    "model_config": {{"provider": "openai", "name": "gpt-5"}},
    "prompt_bundle_hash": "sha256:" + "ab" * 32,
    "tool_manifest": [],
}}
version = version_create(tenant=tenant, template=template, version_label="0.0.1", genome=genome, actor=operator)
instance = instance_create(
    tenant=tenant, version=version, actor=operator, name="{LONG_NAME}-instance-1",
    environment=Environment.objects.filter(tenant=tenant, tier=EnvironmentTier.DEV).first(),
    provider=Provider.objects.filter(tenant=tenant).first(),
)
api_key_create(tenant=tenant, name="{LONG_NAME}-key", roles=["viewer"], instance=instance, actor=admin)
"""


# Migrate, seed, open the approval, add the long names and the platform operator (seed_demo makes no staff
# user), in one process: each ``manage.py`` start-up costs a Django set-up.
BUILD = f"""
from django.core.management import call_command
from django.db import connections

call_command("migrate", interactive=False, verbosity=0)
call_command("seed_demo")
exec({OPEN_APPROVAL!r}, {{}})
exec({SEED_LONG_NAMES!r}, {{}})
call_command("createsuperuser", interactive=False, username={ADMIN_USERNAME!r}, email="root@example.com")
connections.close_all()
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: headless Chromium tests against a live ARM server (tests/browser)")


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium): browser tests skipped"
    if os.environ.get("ARM_REQUIRE_BROWSER"):
        return  # the arm_server fixture fails them instead
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": LAUNCH_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manage(env, *args, timeout=180) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _passwords(seed_output: str) -> dict[str, str]:
    """The demo sign-ins seed_demo prints (``  user   password   roles``)."""
    found = {}
    for line in seed_output.splitlines():
        match = re.match(r"^\s+([a-z0-9-]+)\s+(\S+-pass)\s", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


class ArmServer:
    def __init__(self, url: str, passwords: dict[str, str], env: dict | None = None):
        self.url = url
        self.passwords = passwords
        self.env = env or {}  # the server's environment (its database): ``manage(...)`` runs commands on it

    def manage(self, *args, **env) -> str:
        """``manage.py <args>`` on the server's database, with ``env`` added to its environment."""
        return _manage({**self.env, **env}, *args)


def _build(env: dict) -> dict[str, str]:
    """Migrates and seeds the database ``env`` names, in one process; returns the sign-ins."""
    passwords = _passwords(_manage({**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}, "shell", "-c", BUILD))
    passwords[ADMIN_USERNAME] = ADMIN_PASSWORD
    return passwords


@pytest.fixture(scope="session")
def arm_server(tmp_path_factory, worker_id):
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("ARM_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.browser.server_settings",
        "ARM_DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
    }
    base_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    if worker_id == "master":
        db = ThrowawayDatabase()
        try:
            passwords = _build({**base_env, "DATABASE_URL": db.url})
        except BaseException:
            db.drop()
            raise
    else:
        # One build per run, shared by the xdist workers; each serves a copy of its own (serverdb.py).
        db, passwords = shared_copy(
            tmp_path_factory.getbasetemp().parent, lambda url: _build({**base_env, "DATABASE_URL": url})
        )
    env = {**base_env, "DATABASE_URL": db.url}
    server = None
    log = open(Path(db.tmpdir) / "server.log", "w")  # closed in finally
    try:
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError("ARM server did not start:\n" + (Path(db.tmpdir) / "server.log").read_text())
            time.sleep(0.2)
        yield ArmServer(url, passwords, env)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()
        db.drop()


def wait_ready(page) -> None:
    """The page has loaded and htmx has processed it (events fired earlier would be lost)."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined && document.readyState === 'complete'")


def wait_settled(page) -> None:
    """htmx has processed what it last swapped in. New content gets its htmx behaviour (``hx-trigger``
    listeners) only when the swap settles, 20 ms after it is inserted and later on a loaded machine;
    until then its elements carry ``htmx-added``, and an event fired into them (typing, say) is lost."""
    page.wait_for_function("() => !document.querySelector('.htmx-added, .htmx-settling')")


@pytest.fixture
def shot(page, request):
    """``shot()`` saves a full-page screenshot named after the test to test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(suffix: str = "") -> Path:
        name = request.node.name.replace("/", "_") + (f"-{suffix}" if suffix else "")
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return take


@pytest.fixture
def sign_in(page, arm_server):
    """``sign_in("acme-operator")`` signs in through the login form and lands on the directory."""

    def go(username: str):
        page.goto(f"{arm_server.url}/")
        page.fill("#id_username", username)
        password = arm_server.passwords.get(username)
        if password is None:
            pytest.fail(f"seed_demo printed no password for {username!r}; it printed: {sorted(arm_server.passwords)}")
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_selector('[data-testid="current-user"]')
        wait_ready(page)
        return page

    return go
