"""OpenAPI helpers: the error body every endpoint answers with, documented per status code."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
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


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "arm.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An ARM API key: `Bearer arm_<prefix>_<secret>`."}


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "arm.authentication.TenantSessionAuthentication"
    name = "sessionAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
