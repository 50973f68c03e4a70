"""ASGI entry point: the wait server (``uvicorn config.asgi:application``, started by ``make serve`` beside
gunicorn). It serves ``GET /api/v1/approvals/{id}/wait/`` without holding a worker or a database connection
while it waits (approvals/api/wait.py) and hands every other request to Django's ASGI handler. Like wsgi.py,
refuses to start with the public development SECRET_KEY while DEBUG is off."""

import os

from django.core.asgi import get_asgi_application

from arm.runtime import start_sqlite_checkpointer, tune_gc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from approvals.api.wait import WaitServer  # noqa: E402 - needs the apps loaded
from arm.checks import refuse_insecure_key_for_serving  # noqa: E402 - needs the settings loaded

application = WaitServer(django_application)

refuse_insecure_key_for_serving()
tune_gc()
start_sqlite_checkpointer()
