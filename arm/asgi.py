"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from arm.runtime import tune_gc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arm.settings")
application = get_asgi_application()
tune_gc()
