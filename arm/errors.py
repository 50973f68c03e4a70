"""Domain errors raised by services. The API maps them to HTTP (status + stable ``code``), the UI to
messages, commands to exit codes; ``django.core.exceptions.ValidationError`` stays the 400 case."""

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
