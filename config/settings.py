"""ARM settings: one module, every knob read from the environment with a safe default.

SQLite is the embedded default so a fresh checkout just works; set ``DATABASE_URL`` for PostgreSQL.
``.env.example`` lists every variable.
"""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import dj_database_url

from arm.schema_docs import DESCRIPTION as API_DESCRIPTION
from arm.schema_docs import TAGS as API_TAGS

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("ARM_DEBUG", False)
# The fallback key only serves local runs (runserver, tests, commands); production sets ARM_SECRET_KEY.
# With it, `manage.py check --deploy` fails (arm.E001) and config/wsgi.py refuses to start unless
# ARM_ALLOW_INSECURE_KEY=1 (see arm/checks.py).
INSECURE_FALLBACK_SECRET_KEY = "arm-insecure-development-key-change-me-in-production-0123456789"
SECRET_KEY = env_str("ARM_SECRET_KEY", "") or INSECURE_FALLBACK_SECRET_KEY
ARM_ALLOW_INSECURE_KEY = env_bool("ARM_ALLOW_INSECURE_KEY", False)
ALLOWED_HOSTS = env_list("ARM_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("ARM_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "tenancy.apps.ArmAdminConfig",  # django.contrib.admin with ARM's site (tenancy/admin_site.py)
    "django.contrib.auth",
    "axes",  # before "tenancy": axes' login signal receivers run first, tenancy's audit receivers read their result
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "tailwind",
    "theme",
    "tenancy",  # app label "arm" (tenancy/apps.py); the plumbing package arm is not an app
    "audit",
    "registry",
    "demo",
    "approvals",
    "policies",
    "ledger",
    "django_tasks",
    "django_tasks_db",
    "notifications",
    "schedules",
    "worker",
]

# The benchmark (`manage.py bench`) is tooling, not part of a deployment: its app is installed only when
# asked for. manage.py sets ARM_BENCH=1 for the bench command, and its re-run inherits it.
if env_bool("ARM_BENCH", False):
    INSTALLED_APPS.append("bench")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "arm.middleware.NoStoreMiddleware",
    "arm.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tenancy.middleware.RequestContextMiddleware",
    "arm.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns a locked-out login attempt into the 429 lockout page.
    "axes.middleware.AxesMiddleware",
]

# Profiling a served process: ARM_PROFILE_DIR=/some/dir writes a pyinstrument profile of every request
# there (pyinstrument must be installed; see docs/benchmarks.md). Never in production.
ARM_PROFILE_DIR = env_str("ARM_PROFILE_DIR", "")
if ARM_PROFILE_DIR:
    MIDDLEWARE.insert(0, "arm.middleware.ProfileMiddleware")

ROOT_URLCONF = "config.urls"
# runserver only; gunicorn serves config.wsgi (which refuses the development key, see config/devserver.py)
WSGI_APPLICATION = "config.devserver.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenancy.context_processors.arm",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("ARM_DB_CONN_MAX_AGE", 60),
        # A reused connection is checked before a request uses it, so a database restart does not fail
        # one request per worker on its stale connection (that request would answer 503
        # database_unavailable and the worker reconnect). On PostgreSQL the check asks the socket first
        # and costs a `SELECT 1` round trip only when the server has said something (arm.backends).
        conn_health_checks=env_bool("ARM_DB_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with a health check that asks the connection's socket before it costs a
    # `SELECT 1` round trip (arm/backends/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "arm.backends.postgresql"
if DATABASES["default"]["ENGINE"] == "arm.backends.postgresql" and env_bool("ARM_DB_PREPARED_STATEMENTS", True):
    # Server-side parameter binding, and every statement a connection has run twice prepared (Django's
    # server_side_binding, psycopg's prepare_threshold): the hot paths are planned once per connection.
    # The cost reports force custom plans (arm.db.custom_plans): generic ones made them twice as slow
    # (docs/configuration.md, "Prepared statements"). Off behind a transaction-mode pooler that cannot
    # keep prepared statements (PgBouncer < 1.21).
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "server_side_binding": True,
        "prepare_threshold": 2,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE takes SQLite's write lock when a transaction starts, so two writers queue
    # instead of failing to upgrade a read lock (audit chain appends rely on it). WAL lets readers
    # carry on while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Connections are reused like PostgreSQL's (ARM_DB_CONN_MAX_AGE): a gunicorn sync worker serves one
    # request at a time on its one connection, and opening one costs the connect and the PRAGMAs above
    # on every request otherwise (measured: most of a heartbeat's served time).

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # Refuses sign-ins (login page, admin login) while the account or the client address is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Every path that sets a password runs these (the set-password link, Members page, create_user, Django
# admin, changepassword): long enough, not one of Django's list of common passwords, not all digits, not
# close to the username or email.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "ui:directory"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("ARM_SECURE_COOKIES", False)
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("ARM_SESSION_AGE_SECONDS", 8 * 60 * 60)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "arm.views.csrf_failure"

# models.W040: "SQLite does not support indexes with non-key columns". The ledger's span-rollup series
# indexes carry the sums as INCLUDE columns for PostgreSQL's index-only scans; on SQLite they are the same
# indexes without them, which is what this check says.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# ---- HTTPS and security headers (production turns these on; see docs/configuration.md, "Production")
SECURE_SSL_REDIRECT = env_bool("ARM_SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^api/health/$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("ARM_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ARM_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("ARM_HSTS_PRELOAD", False)
# Only behind a proxy that sets this header itself (and strips a client's): "HTTP_X_FORWARDED_PROTO,https".
_proxy_ssl_header = env_list("ARM_SECURE_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if len(_proxy_ssl_header) == 2 else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp 4): nothing inline, nothing from another host. The UI's behaviour
# lives in theme/static/arm/*.js; htmx is told not to inject its indicator <style> (base.html meta tag);
# the Swagger UI page loads its initialisation script as a file (SpectacularSwaggerSplitView).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# ---- Sign-in throttling (django-axes): see docs/configuration.md, "Sign-in throttling".
# "username,ip_address" locks an account after N failures from anywhere AND a client address after N
# failures on any accounts; "username+ip_address" would lock only that pair.
AXES_ENABLED = env_bool("ARM_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("ARM_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ARM_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [
    part.split("+") if "+" in part else part for part in env_list("ARM_LOGIN_LOCKOUT", "username,ip_address")
]
AXES_RESET_ON_SUCCESS = False  # a success does not clear an address's failures on other accounts
AXES_LOCKOUT_CALLABLE = "tenancy.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "tenancy.login_throttle.client_ip"
AXES_VERBOSE = False
# Header a trusted reverse proxy sets to the client address (e.g. X-Forwarded-For, X-Real-IP); unset
# = REMOTE_ADDR. With X-Forwarded-For, ARM_TRUSTED_PROXY_COUNT proxies appended to it (right-most hops).
ARM_CLIENT_IP_HEADER = env_str("ARM_CLIENT_IP_HEADER", "")
ARM_TRUSTED_PROXY_COUNT = env_int("ARM_TRUSTED_PROXY_COUNT", 1)

# Retry-After (seconds) of the 503 answered while the database is unreachable.
ARM_DB_RETRY_AFTER_SECONDS = env_int("ARM_DB_RETRY_AFTER_SECONDS", 5)

# The hot path's reads (the API-key lookup, evaluation's instance) compiled to SQL once per process
# (arm/compiled.py); false runs them as plain querysets (an A/B run).
ARM_COMPILED_QUERIES = env_bool("ARM_COMPILED_QUERIES", True)

# Served processes (config.wsgi, config.asgi, bench) freeze start-up objects and raise the GC thresholds
# (arm/runtime.py); false leaves CPython's collector as it is.
ARM_GC_TUNING = env_bool("ARM_GC_TUNING", True)
# Served processes on SQLite checkpoint the WAL from a background thread every N seconds instead of in the
# commit of whichever request fills it (arm/runtime.py); 0 leaves checkpoints to SQLite.
ARM_SQLITE_CHECKPOINT_SECONDS = env_float("ARM_SQLITE_CHECKPOINT_SECONDS", 1.0)

# Request bodies above this answer 413 (API) before any parsing happens.
ARM_MAX_BODY_BYTES = env_int("ARM_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = ARM_MAX_BODY_BYTES
# A gzip OTLP export may inflate to this much (larger: 413), so a small body cannot expand without bound.
ARM_OTLP_MAX_DECOMPRESSED_BYTES = env_int("ARM_OTLP_MAX_DECOMPRESSED_BYTES", 8 * 1024 * 1024)
# Default heartbeat window for new tenants (seconds); each tenant can override it.
ARM_HEARTBEAT_WINDOW_SECONDS = env_int("ARM_HEARTBEAT_WINDOW_SECONDS", 120)

# The wait server (config.asgi under uvicorn: GET /api/v1/approvals/{id}/wait/, approvals/waiting.py): waits
# one process holds at most (one more: 503 too_many_waiters), the threads (and so database connections) its
# reads run on, and on SQLite how often it reads which waited-on approvals were decided.
ARM_WAIT_MAX_WAITERS = env_int("ARM_WAIT_MAX_WAITERS", 5000)
ARM_WAIT_DB_THREADS = env_int("ARM_WAIT_DB_THREADS", 4)
ARM_WAIT_POLL_SECONDS = env_float("ARM_WAIT_POLL_SECONDS", 0.1)

# Signed audit checkpoints (audit/signing.py, README "Auditors", docs/audit.md). The Ed25519
# signing key lives outside the database: a PEM file (or the PEM text itself in the environment, "\n"
# escapes allowed); never both. Unset: ARM signs nothing and exports cannot prove their end.
ARM_AUDIT_SIGNING_KEY_FILE = env_str("ARM_AUDIT_SIGNING_KEY_FILE", "")
ARM_AUDIT_SIGNING_KEY = env_str("ARM_AUDIT_SIGNING_KEY", "")
# When the active key started signing (ISO 8601 with offset; published as its valid_from).
ARM_AUDIT_SIGNING_KEY_VALID_FROM = env_str("ARM_AUDIT_SIGNING_KEY_VALID_FROM", "") or None
# Retired public keys still trusted for verification: a keys document (the well-known format).
ARM_AUDIT_RETIRED_KEYS_FILE = env_str("ARM_AUDIT_RETIRED_KEYS_FILE", "")
# Witnesses that `audit_checkpoint --push` writes each checkpoint to (any, all, or none of them).
ARM_AUDIT_WITNESS_DIR = env_str("ARM_AUDIT_WITNESS_DIR", "")
ARM_AUDIT_WITNESS_S3_BUCKET = env_str("ARM_AUDIT_WITNESS_S3_BUCKET", "")
ARM_AUDIT_WITNESS_S3_PREFIX = env_str("ARM_AUDIT_WITNESS_S3_PREFIX", "arm-audit-checkpoints/")
ARM_AUDIT_WITNESS_S3_ENDPOINT_URL = env_str("ARM_AUDIT_WITNESS_S3_ENDPOINT_URL", "") or None
ARM_AUDIT_WITNESS_S3_REGION = env_str("ARM_AUDIT_WITNESS_S3_REGION", "") or None
ARM_AUDIT_WITNESS_WEBHOOK_URL = env_str("ARM_AUDIT_WITNESS_WEBHOOK_URL", "")
ARM_AUDIT_WITNESS_WEBHOOK_TIMEOUT_SECONDS = env_float("ARM_AUDIT_WITNESS_WEBHOOK_TIMEOUT_SECONDS", 10.0)

# ---- Background work and notifications (issue 25; docs/notifications.md, docs/configuration.md).
# Django's Tasks API (the django-tasks backport on 5.2) with its database backend: the database is the
# queue, so the default install needs nothing more; `manage.py worker` runs the tasks.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Absolute links in notifications and emails (a request's page in the Approval center).
ARM_PUBLIC_URL = env_str("ARM_PUBLIC_URL", "http://127.0.0.1:8000")
# Outbound requests (webhooks, provider health URLs) to loopback, private, link-local or reserved
# addresses are refused unless this is true, or the host is in ARM_OUTBOUND_ALLOW_HOSTS; plain http is
# refused unless DEBUG or ARM_OUTBOUND_ALLOW_HTTP.
ARM_OUTBOUND_ALLOW_PRIVATE = env_bool("ARM_OUTBOUND_ALLOW_PRIVATE", False)
ARM_OUTBOUND_ALLOW_HOSTS = env_list("ARM_OUTBOUND_ALLOW_HOSTS", "")
ARM_OUTBOUND_ALLOW_HTTP = env_bool("ARM_OUTBOUND_ALLOW_HTTP", False)
ARM_OUTBOUND_CONNECT_TIMEOUT_SECONDS = env_float("ARM_OUTBOUND_CONNECT_TIMEOUT_SECONDS", 5.0)
ARM_OUTBOUND_TIMEOUT_SECONDS = env_float("ARM_OUTBOUND_TIMEOUT_SECONDS", 10.0)
ARM_OUTBOUND_MAX_RESPONSE_BYTES = env_int("ARM_OUTBOUND_MAX_RESPONSE_BYTES", 64 * 1024)
# Webhook retries: attempt n (n >= 1) failing waits BASE * 2**(n-1) seconds (at most MAX), each with up to
# half of it added at random (jitter), and the delivery is dead after MAX_ATTEMPTS attempts.
ARM_WEBHOOK_MAX_ATTEMPTS = env_int("ARM_WEBHOOK_MAX_ATTEMPTS", 8)
ARM_WEBHOOK_BACKOFF_BASE_SECONDS = env_float("ARM_WEBHOOK_BACKOFF_BASE_SECONDS", 10.0)
ARM_WEBHOOK_BACKOFF_MAX_SECONDS = env_float("ARM_WEBHOOK_BACKOFF_MAX_SECONDS", 6 * 60 * 60)
# How long a worker holds a claimed delivery; a worker killed mid-send leaves it, and another retries after.
ARM_WEBHOOK_LEASE_SECONDS = env_float("ARM_WEBHOOK_LEASE_SECONDS", 60.0)
# Requests one worker sends at once (threads); a slow receiver holds one of them, not the others.
ARM_WEBHOOK_CONCURRENCY = env_int("ARM_WEBHOOK_CONCURRENCY", 8)
# How long a process trusts what it read of a tenant's endpoints (notifications/outbox.py): a new endpoint,
# or a filter widened, in another process gets events committed from at most this long after it is saved.
ARM_NOTIFICATION_CACHE_SECONDS = env_float("ARM_NOTIFICATION_CACHE_SECONDS", 5.0)
# The worker's wait between looks on SQLite (PostgreSQL wakes it at commit with NOTIFY).
ARM_WORKER_POLL_SECONDS = env_float("ARM_WORKER_POLL_SECONDS", 0.25)
# Schedules the worker runs (schedules.definitions; docs/schedules.md): "name=seconds,..." overrides a
# schedule's interval, 0 turns it off, e.g. "integrity_sweep=900,audit_checkpoint=0". The lease: how long
# a run may last before another worker may assume its worker died and run it again.
ARM_SCHEDULE_INTERVALS = env_str("ARM_SCHEDULE_INTERVALS", "")
ARM_SCHEDULE_LEASE_SECONDS = env_int("ARM_SCHEDULE_LEASE_SECONDS", 900)
# Email notifications go through Django's mail backends: SMTP once EMAIL_HOST is set (EMAIL_PORT,
# EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS); ARM_EMAIL_FILE_PATH: one file per message there;
# neither (make run, the demo): the worker prints each message on its console. ARM_EMAIL_BACKEND overrides.
EMAIL_FILE_PATH = env_str("ARM_EMAIL_FILE_PATH", "")
EMAIL_BACKEND = env_str(
    "ARM_EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if EMAIL_FILE_PATH
    else "django.core.mail.backends.smtp.EmailBackend"
    if env_str("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("ARM_EMAIL_FROM", "ARM <arm@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.ApiKeyAuthentication",
        "tenancy.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.HasTenantRole"],
    "DEFAULT_PARSER_CLASSES": ["arm.api.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["arm.renderers.ORJSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "arm.api.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "arm.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ARM API",
    "DESCRIPTION": API_DESCRIPTION,
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "/static/arm/favicon.svg",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "TAGS": API_TAGS,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "arm.schema.postprocess"],
    "ENUM_NAME_OVERRIDES": {
        "VersionLifecycleStateEnum": "registry.choices.VersionState",
        "InstanceStateEnum": "registry.choices.InstanceState",
        "RiskEnum": "registry.choices.Risk",
        "DecisionEnum": "policies.choices.Decision",
        "DeliveryStatusEnum": "notifications.choices.DeliveryStatus",
    },
}

TAILWIND_APP_NAME = "theme"
NPM_BIN_PATH = shutil.which("npm") or "/usr/bin/npm"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_without_traceback": {"()": "arm.logging.ClientErrorsWithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["client_errors_without_traceback"]},
    },
    "root": {"handlers": ["console"], "level": env_str("ARM_LOG_LEVEL", "WARNING")},
}
