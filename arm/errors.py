"""Domain errors raised by services. The API maps them to HTTP (status + stable ``code``), the UI to
messages, commands to exit codes; ``django.core.exceptions.ValidationError`` stays the 400 case. Also how a
request that failed on the database is answered (``database_failure``: busy or lost)."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError


class AlreadyTaken(ValidationError):
    """A unique value (a name, a version label) already in use: still a per-field ValidationError for forms
    and commands, but a 409 ``conflict`` in the API (the request is valid; the tenant's data conflicts)."""


class DomainError(Exception):
    status = 400
    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class RoleRequired(DomainError):
    status = 403
    code = "role_required"


class FourEyesViolation(DomainError):
    status = 403
    code = "four_eyes"


class InvalidTransition(DomainError):
    status = 409
    code = "invalid_transition"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Immutable(DomainError):
    status = 405
    code = "immutable"


# ---------------------------------------------------------------- database failures
#
# Two kinds of database failure reach a request, and clients must tell them apart. A transient collision
# with another transaction (PostgreSQL's deadlock detector or serializable isolation aborting this
# transaction, a lock wait that timed out; SQLite's "database is locked" once its busy timeout ran out)
# rolled this request's transaction back while the database is healthy: 503 ``database_busy`` with a short
# Retry-After, retry the same request. Anything else (connection refused or lost, the server shutting
# down, a cancelled statement) is a lost database: 503 ``database_unavailable`` with the configured
# Retry-After. Both stay 503 (a generic client backs off and retries on 503 + Retry-After); the codes
# keep "the database is gone" alerts for databases that are.

# SQLSTATE 40P01 deadlock_detected, 40001 serialization_failure, 55P03 lock_not_available (lock_timeout, NOWAIT)
BUSY_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
# SQLITE_BUSY and SQLITE_LOCKED (primary result codes; extended codes carry them in the low byte)
BUSY_SQLITE_CODES = frozenset({5, 6})
BUSY_SQLITE_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")
DATABASE_BUSY_RETRY_AFTER_SECONDS = 1
DATABASE_BUSY_MESSAGE = (
    "The database was busy with a conflicting change (a deadlock, a serialization failure or a lock wait that "
    "timed out) and rolled back this request's change. Retry the request: try again in a moment."
)
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable. Please try again in a moment."


def is_database_busy(exc: BaseException) -> bool:
    """Whether a database error (``django.db.OperationalError``, raised by Django from the driver's own) is
    a transient collision with another transaction rather than a lost database."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "sqlstate", None) in BUSY_SQLSTATES:
            return True
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in BUSY_SQLITE_CODES:
            return True
        if str(exc).strip().lower().startswith(BUSY_SQLITE_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass(frozen=True)
class DatabaseFailure:
    """How a request that failed on the database is answered (API JSON and UI page alike)."""

    code: str
    title: str
    message: str
    retry_after: int


def database_failure(exc: BaseException | None) -> DatabaseFailure:
    """The one place that tells a busy database from a lost one (see above)."""
    if exc is not None and is_database_busy(exc):
        return DatabaseFailure(
            "database_busy", "Database busy", DATABASE_BUSY_MESSAGE, DATABASE_BUSY_RETRY_AFTER_SECONDS
        )
    from django.conf import settings

    return DatabaseFailure(
        "database_unavailable",
        "Service unavailable",
        DATABASE_UNAVAILABLE_MESSAGE,
        settings.ARM_DB_RETRY_AFTER_SECONDS,
    )
