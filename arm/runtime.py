"""Process tuning for serving ARM (called by wsgi.py, asgi.py and the benchmark commands): the garbage
collector (``tune_gc``) and, on SQLite, WAL checkpoints off the request path (``start_sqlite_checkpointer``).

**The collector.**

A list page of 1000 versions allocates tens of thousands of objects; with CPython's default collector
thresholds (700, 10, 10) that triggers full collections in a fraction of requests, which set the tail
latency of list endpoints (docs/benchmarks.md, "GC tuning"). Freezing what is alive after start-up (modules, settings,
URL resolvers) keeps it out of every later collection, and a higher first threshold makes young-generation
collections rarer. Memory is still reclaimed: reference counting frees almost everything; the collector
only breaks cycles.

**Each request starts by collecting the garbage cycles the previous one left.** Every Django and DRF
request leaves its objects in reference cycles (the request and its messages storage and htmx details,
the view and its DRF request and response, each serializer and its fields), which only the collector
frees. With the thresholds above, one request in about 50 started a young-generation collection of what
the previous ones had left, and that request paid for all of it. ``collect_before_request`` (a
``request_started`` receiver) collects the young generation as each request starts, when the previous
request's objects are garbage (while a response is being closed they are still referenced, so a
collection then would only move them to an older generation): a small collection in every request instead
of a large one in one in 50, the same work. An older generation is collected when as many collections of
the generation below it ran as its threshold allows, CPython's own rule. (A request that something
module-level still references survives the collection and ages instead:
``tenancy.viewsets.TenantViewSet.as_view`` drops the one such reference found, drf-spectacular's schema
class holding each action's last view.)

``ARM_GC_TUNING=false`` (settings) leaves the collector as CPython configures it.
"""

import gc
import logging
import sqlite3
import threading

logger = logging.getLogger(__name__)

GC_THRESHOLDS = (10_000, 50, 100)


def tune_gc() -> bool:
    """Apply the tuning unless ``settings.ARM_GC_TUNING`` is off; True when it was applied."""
    from django.conf import settings

    if not getattr(settings, "ARM_GC_TUNING", True):
        return False
    from django.core.signals import request_started

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    request_started.connect(collect_before_request, dispatch_uid="arm.runtime.collect_before_request")
    return True


def collect_before_request(**kwargs) -> int:
    """Collect the garbage cycles earlier requests left (``request_started``, connected by ``tune_gc``):
    the young generation, or an older one when as many collections of the generation below it ran as
    its threshold allows. Returns the generation collected."""
    _, young_collections, middle_collections = gc.get_count()
    generation = 0
    if middle_collections >= GC_THRESHOLDS[2]:
        generation = 2
    elif young_collections >= GC_THRESHOLDS[1]:
        generation = 1
    gc.collect(generation)
    return generation


# ---------------------------------------------------------------- SQLite checkpoints

#: Request connections of a served process checkpoint the WAL themselves only past this many pages
#: (~40 MB; SQLite's default is 1000): the fallback should the checkpointer thread fall behind.
FALLBACK_AUTOCHECKPOINT_PAGES = 10_000


def start_sqlite_checkpointer(
    path: str | None = None, interval: float | None = None, stop: threading.Event | None = None
) -> threading.Thread | None:
    """Checkpoint the SQLite WAL from a background thread of this served process, every ``interval``
    seconds (``settings.ARM_SQLITE_CHECKPOINT_SECONDS``, 1 by default; 0 turns it off).

    SQLite in WAL mode copies the log back into the database file (a *checkpoint*, with its fsyncs) in
    whichever connection's commit takes the log past ``wal_autocheckpoint`` pages (1000): that request
    pays for it, several times its usual time (measured in docs/benchmarks.md's history). Here a thread
    with its own connection runs ``PRAGMA wal_checkpoint(PASSIVE)``, which never blocks readers or
    writers (it does what it can and leaves the rest for the next round), and the sqlite3 module releases
    the GIL while SQLite works. Request connections keep a fallback ``wal_autocheckpoint`` of
    ``FALLBACK_AUTOCHECKPOINT_PAGES``, so the log stays bounded if the thread stops or falls behind.
    Several workers each running one is harmless: SQLite lets one checkpoint run at a time and a PASSIVE
    one that finds it busy returns at once.

    Only on a file database and only in served processes (config.wsgi, config.asgi): a management
    command or a test keeps SQLite's own checkpoints. Returns the started thread, or None; it runs for
    the life of the process, or until ``stop`` is set."""
    from django.conf import settings
    from django.db.backends.signals import connection_created

    db = settings.DATABASES["default"]
    if path is None:
        if db["ENGINE"] != "django.db.backends.sqlite3":
            return None
        path = str(db["NAME"])
    if interval is None:
        interval = settings.ARM_SQLITE_CHECKPOINT_SECONDS
    if not interval or path == ":memory:" or "mode=memory" in path:
        return None
    connection_created.connect(_raise_autocheckpoint, dispatch_uid="arm.runtime.autocheckpoint")
    thread = threading.Thread(
        target=_checkpoint_loop,
        args=(path, interval, stop or threading.Event()),
        name="arm-sqlite-checkpointer",
        daemon=True,
    )
    thread.start()
    return thread


def _raise_autocheckpoint(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_AUTOCHECKPOINT_PAGES}")


def _checkpoint_loop(path: str, interval: float, stop: threading.Event) -> None:
    db = None
    failed = False
    while not stop.wait(interval):
        try:
            if db is None:
                db = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            failed = False
        except sqlite3.Error as exc:  # the file went away, or is locked for a rebuild: try again later
            if not failed:
                logger.warning("sqlite checkpoint failed: %s", exc)
            failed = True
            if db is not None:
                db.close()
                db = None
    if db is not None:
        db.close()
