from django.apps import AppConfig


class BenchConfig(AppConfig):
    """``manage.py bench``: builds a synthetic tenant in its own database, serves it with gunicorn and
    measures every hot path (docs/benchmarks.md). Tooling on top of every app; nothing imports it."""

    name = "bench"
    verbose_name = "ARM benchmark"
