"""Which models' writes append change records: discovered from the models themselves.

Every concrete model of ARM's own apps (the packages at the top of this repository: ``arm``, ``audit``,
``registry``, ``approvals``, ``policies``, ``ledger`` and any app added beside them) declares it, next
to its fields: ``audit = Recorded(...)`` (``arm.models``: a subclass of ``RecordedModel``, whose writes
``audit.recording`` records) or ``audit = Unrecorded("the reason")``. ``manage.py check`` (``audit.E001``…)
and ``tests/audit/test_every_model_recorded.py`` fail while a model declares neither, so a new app
cannot forget its models. Models are found through ``apps.get_models()``, never imported: audit sits at
the bottom of the app layers and knows the apps above it only through the registry.
"""

from __future__ import annotations

from pathlib import Path

from arm.models import Recorded, Unrecorded


def domain_app_configs():
    """ARM's own apps: installed packages at the top of this repository (third-party apps live in the
    virtualenv). A new app created beside ``registry`` is one of them as soon as it is installed."""
    from django.apps import apps
    from django.conf import settings

    root = Path(settings.BASE_DIR).resolve()
    return [config for config in apps.get_app_configs() if Path(config.path).resolve().parent == root]


def domain_models():
    """Every concrete model of ARM's own apps (no abstract, proxy or auto-created through models)."""
    return [
        model
        for config in domain_app_configs()
        for model in config.get_models()
        if not model._meta.proxy and not model._meta.auto_created
    ]


def declaration(model) -> Recorded | Unrecorded | None:
    """What ``model`` declares (None: nothing, which the check reports)."""
    declared = getattr(model, "audit", None)
    return declared if isinstance(declared, Recorded | Unrecorded) else None


def recorded_models() -> dict[type, Recorded]:
    """{model: its declaration} of every model whose writes are recorded."""
    return {model: declared for model in domain_models() if isinstance(declared := declaration(model), Recorded)}
