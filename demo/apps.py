from django.apps import AppConfig


class DemoConfig(AppConfig):
    """``manage.py seed_demo``: the demo tenants, built through every app's services so their hashes,
    chains and records are ARM's own. Tooling on top of every app; nothing imports it."""

    name = "demo"
    verbose_name = "ARM demo data"
