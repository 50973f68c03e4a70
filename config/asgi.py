"""ASGI entry point. Like wsgi.py, refuses to start with the public development SECRET_KEY while DEBUG
is off."""

import os

from django.core.asgi import get_asgi_application

from arm.runtime import start_sqlite_checkpointer, tune_gc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

from arm.checks import refuse_insecure_key_for_serving  # noqa: E402 - needs the settings loaded

refuse_insecure_key_for_serving()
tune_gc()
start_sqlite_checkpointer()
