from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """Environments, providers, templates, immutable versions, evaluations and instances (SPEC §3)."""

    name = "registry"
    verbose_name = "Registry"
