"""Security headers and settings: the Content-Security-Policy, no inline script in any template,
Cache-Control on personal responses, the other security headers, and the deploy checks (the documented
production environment passes `check --deploy`; the public fallback key fails it and stops config.wsgi)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted([*(ROOT / "templates").rglob("*.html"), *(ROOT / "theme").rglob("templates/**/*.html")])

# The production environment docs/configuration.md's "Production" section and .env.example document.
PRODUCTION_ENV = {
    "ARM_SECRET_KEY": "k3y-for-the-deploy-check-test-" + "x" * 40,
    "ARM_DEBUG": "false",
    "ARM_ALLOWED_HOSTS": "arm.example.com",
    "ARM_CSRF_TRUSTED_ORIGINS": "https://arm.example.com",
    "ARM_SECURE_COOKIES": "true",
    "ARM_SECURE_SSL_REDIRECT": "true",
    "ARM_HSTS_SECONDS": "31536000",
    "ARM_HSTS_PRELOAD": "true",
    "ARM_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


def no_store(response) -> bool:
    parts = {part.strip() for part in response.get("Cache-Control", "").split(",")}
    return {"no-store", "private"} <= parts


@pytest.mark.django_db
def test_pages_carry_the_content_security_policy(client):
    policy = client.get(reverse("login"))["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in policy


def test_no_template_has_inline_script_style_or_handlers():
    problems = []
    for path in TEMPLATES:
        text = path.read_text()
        for pattern, what in [
            (r"<script(?![^>]*\bsrc=)[^>]*>", "inline <script>"),
            (r"\son[a-z]+\s*=", "inline event handler"),
            (r"javascript:", "javascript: URL"),
            (r"\sstyle\s*=", "style attribute"),
            (r"<style", "inline <style>"),
            (r'hx-trigger="[^"]*\[', "htmx filter expression (needs eval)"),
            (r"hx-on", "hx-on handler (needs eval)"),
        ]:
            # An email's HTML is never served under the CSP, and mail clients drop style sheets: it is styled
            # inline. Scripts and handlers stay forbidden there too.
            if "email" in path.parts and "style" in what:
                continue
            if re.search(pattern, text, re.I):
                problems.append(f"{path.relative_to(ROOT)}: {what}")
    assert not problems, problems


@pytest.mark.django_db
def test_security_headers(client):
    response = client.get(reverse("login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_signed_in_pages_and_api_answers_are_not_stored(viewer, admin_member):
    client = Client()
    client.force_login(viewer.user)
    assert no_store(client.get(reverse("ui:directory")))
    assert no_store(client.get("/api/v1/templates/"))  # session
    assert no_store(viewer.client.get("/api/v1/templates/"))  # API key
    assert no_store(viewer.client.get("/api/v1/nope/"))  # errors too


@pytest.mark.django_db
def test_a_new_api_key_secret_is_never_stored(admin_member):
    response = admin_member.client.post("/api/v1/api-keys/", {"name": "ci", "roles": ["operator"]}, format="json")
    assert response.status_code == 201 and response.json()["key"]
    assert no_store(response)
    client = Client()
    client.force_login(admin_member.user)
    response = client.post(reverse("ui:api_keys"), {"name": "ui key", "roles": ["viewer"]})
    assert response.status_code == 200 and b"new-secret-value" in response.content
    assert no_store(response)


@pytest.mark.django_db
def test_anonymous_public_answers_stay_cacheable(client):
    response = client.get("/api/health/")
    assert response.status_code == 200 and "no-store" not in response.get("Cache-Control", "")


def run_manage(env_overrides, *args, drop=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARM_") and k not in drop}
    env.pop("DATABASE_URL", None)  # the checks need no database
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by tests/conftest.py for the test process only
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_documented_production_environment_passes_check_deploy():
    result = run_manage(PRODUCTION_ENV, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_public_fallback_key_fails_check_deploy():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "ARM_SECRET_KEY"}
    result = run_manage(env, "check", "--deploy")
    assert result.returncode != 0
    assert "arm.E001" in result.stdout + result.stderr


def test_development_checks_pass_with_the_fallback_key():
    """`make run` on a fresh machine: no environment at all, plain `check` passes."""
    result = run_manage({}, "check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def _import_wsgi(env):
    return run_manage(env, "shell", "-c", "import config.wsgi; print('served')")


def test_wsgi_refuses_the_fallback_key_with_debug_off():
    result = _import_wsgi({"ARM_DEBUG": "false"})
    assert result.returncode != 0 and "refusing to serve" in result.stderr
    assert "served" in _import_wsgi({"ARM_DEBUG": "false", "ARM_ALLOW_INSECURE_KEY": "1"}).stdout
    assert "served" in _import_wsgi({"ARM_DEBUG": "false", "ARM_SECRET_KEY": "a-real-key-" + "y" * 40}).stdout
