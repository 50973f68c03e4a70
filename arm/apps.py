from django.apps import AppConfig


class ArmConfig(AppConfig):
    """Project package: tenancy, identity (memberships, API keys), request context and API plumbing."""

    name = "arm"
    verbose_name = "ARM tenancy & identity"

    def ready(self) -> None:
        from arm import checks, login_throttle, schema  # noqa: F401 - deploy checks, sign-in audit receivers, OpenAPI extensions
