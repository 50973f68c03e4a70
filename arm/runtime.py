"""Process tuning for serving ARM (called by wsgi.py, asgi.py and the benchmark commands).

A list page of 1000 versions allocates tens of thousands of objects; with CPython's default collector
thresholds (700, 10, 10) that triggers full collections in a fraction of requests, which was most of the
p95 of list endpoints when every genome was parsed into a dict per row (measured then: p50 33 ms, p95
107 ms on the 1000-version list; with this tuning p95 33 ms). The list now emits each stored canonical
genome text as is (``arm.renderers``), which allocates far less; docs/benchmarks.md has the p95 and p99
measured with and without the tuning since. Freezing what is alive after start-up (modules, settings,
URL resolvers) keeps it out of every later collection, and a higher first threshold makes young-generation
collections rarer. Memory is still reclaimed: reference counting frees almost everything; the collector
only breaks cycles.

``ARM_GC_TUNING=false`` (settings) leaves the collector as CPython configures it.
"""

import gc

GC_THRESHOLDS = (10_000, 50, 100)


def tune_gc() -> bool:
    """Apply the tuning unless ``settings.ARM_GC_TUNING`` is off; True when it was applied."""
    from django.conf import settings

    if not getattr(settings, "ARM_GC_TUNING", True):
        return False
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return True
