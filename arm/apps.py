from django.apps import AppConfig


class ArmConfig(AppConfig):
    """The bottom layer: tenants, memberships and API keys (the models), authentication, the request
    context, permissions and the API/UI plumbing every app builds on. It imports no other ARM app."""

    name = "arm"
    verbose_name = "ARM tenancy & identity"

    def ready(self) -> None:
        from arm import checks, schema  # noqa: F401 - deploy checks, OpenAPI extensions
