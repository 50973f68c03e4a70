"""OpenAPI helpers: the error body every endpoint answers with, documented per status code."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. validation_error, not_found.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    errors = serializers.DictField(required=False, help_text="Per-field messages for validation errors.")


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


ERRORS_READ = {
    400: _error("Invalid query parameters."),
    401: _error("No or invalid credentials."),
    403: _error("Your role does not allow this."),
    404: _error("Not found (or another tenant's)."),
}
ERRORS_WRITE = {
    **ERRORS_READ,
    400: _error("Validation error (per field)."),
    405: _error("Method not allowed (versions are write-once)."),
    409: _error("Invalid transition or conflicting state."),
    413: _error("Request body too large."),
}
