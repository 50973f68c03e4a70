"""A live ARM for the SDK's contract tests: ARM's own code (this repository, run with the project's
Python: ``ARM_SERVER_PYTHON``, else ``.venv/bin/python``, else this interpreter; ``ARM_SERVER_ROOT`` names
another checkout to serve), migrated on a throwaway database, a tenant and two keys made with
``manage.py create_tenant``/``create_api_key``, served on a free port by uvicorn (``config.asgi``, the
wait server's application; ``runserver`` when the server's Python lacks uvicorn). The SDK never imports
Django: everything else goes through the REST API, as an integrator's code would.

The database is a temporary SQLite file, or the PostgreSQL database ``ARM_SDK_DATABASE_URL`` names
(``postgres://user@host:port/name``), dropped and created afresh for the session and dropped after it:
there a decision wakes a held wait through LISTEN/NOTIFY, on SQLite through the wait server's poller.

``LiveArm`` also tells which parts of the runtime protocol the server has (``features``), so tests of a
part the server lacks skip, saying which.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from arm_sdk import Client, Deployer

# ARM's code: this repository, or another checkout of it (ARM_SERVER_ROOT).
ROOT = Path(os.environ.get("ARM_SERVER_ROOT") or Path(__file__).resolve().parents[2])
TENANT = "sdk-contract"
PROMPT_HASH = "sha256:" + "5d" * 32
# Tool names that are their own call names, so the tests do not depend on call-name mapping, plus one
# dotted name (email.send → email_send) for the call-name test.
TOOLS = [
    {"name": "crm_lookup", "risk": "low", "data_scopes": ["crm:read"]},
    {"name": "email_send", "risk": "high"},
    {"name": "refund_issue", "risk": "high"},
    {"name": "db_drop", "risk": "critical"},
    {"name": "ticket.close", "risk": "high"},
]


def _python() -> str:
    configured = os.environ.get("ARM_SERVER_PYTHON")
    if configured:
        return configured
    venv = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def database_url(tmp: Path) -> str:
    """The served ARM's database: ``ARM_SDK_DATABASE_URL`` (PostgreSQL), else a SQLite file in ``tmp``."""
    return os.environ.get("ARM_SDK_DATABASE_URL") or f"sqlite:///{tmp / 'arm.sqlite3'}"


# Run with the server's Python (it has psycopg; the SDK's tests need not): drop the database named in
# argv[1] and, unless argv[2] is "drop", create it empty. Through the server's maintenance database.
_RECREATE = """
import sys
from urllib.parse import urlsplit, urlunsplit
import psycopg

parts = urlsplit(sys.argv[1])
name = parts.path.lstrip("/")
with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if sys.argv[2] != "drop":
        conn.execute(f'CREATE DATABASE "{name}"')
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Agent:
    """One ARM instance with its own policy and bound runtime key, as a deployed agent has."""

    instance: str
    runtime_key: str
    policy: str
    arm: LiveArm

    def client(self, **options) -> Client:
        return Client(self.arm.url, self.runtime_key, self.instance, **options)


@dataclass
class LiveArm:
    url: str
    admin_key: str
    approver_key: str
    features: dict[str, bool] = field(default_factory=dict)
    _ids: dict[str, str] = field(default_factory=dict)

    def admin(self) -> Client:
        return Client(self.url, self.admin_key, retries=0)

    def approver(self) -> Client:
        return Client(self.url, self.approver_key, retries=0)

    # -- the world the tests share: one environment, provider, template and version
    def setup(self) -> None:
        with self.admin() as admin:
            env = admin.api("POST", "/api/v1/environments/", json={"name": "sdk-dev", "tier": "dev"})
            body = {"name": "sdk-local", "type": "local"}
            provider = admin.api("POST", "/api/v1/providers/", json=body)
            template = admin.api(
                "POST", "/api/v1/templates/", json={"name": "sdk-agent", "owners": ["sdk@example.com"]}
            )
            genome = {
                "model_config": {"provider": "openai", "name": "gpt-test"},
                "prompt_bundle_hash": PROMPT_HASH,
                "tool_manifest": TOOLS,
            }
            version = admin.api(
                "POST",
                "/api/v1/versions/",
                json={"template": template["id"], "version_label": "1.0.0", "genome": genome},
            )
        self._ids.update(environment=env["id"], provider=provider["id"], version=version["id"])

    def agent(self, *, tier: int = 2, name: str | None = None, **policy) -> Agent:
        """A fresh ACTIVE instance under a fresh policy (tier 2: low-risk tools run, higher ones wait for
        a person), with its runtime key: deployed through the SDK's Deployer."""
        label = name or f"sdk-{uuid.uuid4().hex[:10]}"
        body = {
            "name": label,
            "autonomy_tier": tier,
            "allowed_tools": ["*"],
            "denied_tools": ["db_drop"],
            "data_scopes": ["crm:*"],
            "approval_timeout_seconds": 600,
            **policy,
        }
        with self.admin() as admin:
            created = admin.api("POST", "/api/v1/policies/", json=body)
            deployment = Deployer(admin).deploy(
                version=self._ids["version"],
                environment=self._ids["environment"],
                provider=self._ids["provider"],
                policy=created["id"],
                name=label,
                runtime_key=True,
            )
        return Agent(deployment.instance["id"], deployment.runtime_key, created["id"], self)

    # -- what a person (and an auditor) does and sees
    def approvals(self, instance: str, **filters) -> list[dict]:
        with self.admin() as admin:
            params = {"instance": instance, "page_size": 1000, **filters}
            return admin.api("GET", "/api/v1/approvals/", params=params)["results"]

    def decisions(self, instance: str) -> list[dict]:
        with self.admin() as admin:
            return admin.api("GET", "/api/v1/decisions/", params={"instance": instance, "page_size": 1000})["results"]

    def wait_for_pending(self, instance: str, *, count: int = 1, deadline: float = 30.0) -> list[dict]:
        """The instance's pending approvals once there are ``count`` (a guarded call running in another
        thread opens its request when it gets there); fails after ``deadline`` seconds."""
        give_up = time.monotonic() + deadline
        while True:
            pending = self.approvals(instance, status="PENDING")
            if len(pending) >= count:
                return pending
            if time.monotonic() > give_up:
                raise AssertionError(f"no pending approval for {instance} after {deadline} s: {pending}")
            time.sleep(0.05)

    def decide(self, approval: str, *, approve: bool, note: str = "") -> dict:
        with self.approver() as approver:
            verb = "approve" if approve else "deny"
            return approver.api("POST", f"/api/v1/approvals/{approval}/{verb}/", json={"note": note})

    # -- which parts of the runtime protocol the server has
    def probe(self) -> None:
        agent = self.agent()
        with agent.client(retries=0) as client:
            key = f"probe-{uuid.uuid4().hex}"
            first = client.evaluate("crm_lookup", {"probe": 1}, idempotency_key=key)
            self.features["replay"] = "replay" in first.raw
            context = client.request("GET", "/api/v1/runtime/context/")
            self.features["runtime_context"] = context.status != 404
            pending = client.evaluate("email_send", {"probe": 2})
            approval = pending.approval
            wait = client.request("GET", f"/api/v1/approvals/{approval}/wait/", params={"timeout": 1})
            self.features["wait"] = wait.status == 200 and wait.headers.get("X-ARM-Wait") == "timeout"
            withdraw = client.request("POST", f"/api/v1/approvals/{approval}/withdraw/", json={"note": "probe"})
            self.features["withdraw"] = withdraw.status not in (404, 405)
            called = client.evaluate("ticket_close", {"probe": 3})
            self.features["call_names"] = "undeclared_tool" not in called.codes


class Server:
    """Starts and stops the ARM server process with its own database."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="arm-sdk-"))
        self.database_url = database_url(self.tmp)
        self.postgres = self.database_url.startswith(("postgres://", "postgresql://"))
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ARM_DEBUG": "0",
            "ARM_SECRET_KEY": uuid.uuid4().hex * 2,  # a served ARM refuses the public development key
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("ARM_URL", "ARM_API_KEY", "ARM_INSTANCE_ID", "DJANGO_ALLOW_ASYNC_UNSAFE"):
            self.env.pop(name, None)
        self.process: subprocess.Popen | None = None
        self.log_path = self.tmp / "server.log"

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [_python(), "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _serve_command(self, port: int) -> list[str]:
        """ARM's ASGI application under uvicorn (it serves the long-poll wait endpoint without holding a
        worker) when the server's Python has uvicorn, else ``runserver`` (which answers waits 503
        ``wait_unavailable``: the SDK polls)."""
        has_uvicorn = subprocess.run([_python(), "-c", "import uvicorn"], capture_output=True).returncode == 0
        if has_uvicorn:
            return [_python(), "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
        return [_python(), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]

    def _recreate_database(self, *, drop_only: bool = False) -> None:
        command = [_python(), "-c", _RECREATE, self.database_url, "drop" if drop_only else "create"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"could not recreate {self.database_url}:\n{result.stderr}")

    def start(self) -> LiveArm:
        if self.postgres:
            self._recreate_database()
        self.manage("migrate", "--noinput")
        self.manage("create_tenant", TENANT)
        admin = self.manage("create_api_key", "--tenant", TENANT, "--role", "admin", "--name", "sdk admin")
        approver = self.manage("create_api_key", "--tenant", TENANT, "--role", "approver", "--name", "sdk approver")
        port = _free_port()
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self._serve_command(port), cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        give_up = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/health/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError("ARM did not start:\n" + self.log_path.read_text())
            time.sleep(0.2)
        live = LiveArm(url, admin.strip().splitlines()[-1], approver.strip().splitlines()[-1])
        live.setup()
        live.probe()
        return live

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self._log.close()
        if self.postgres:
            self._recreate_database(drop_only=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
