"""WSGI entry point (gunicorn arm.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from arm.runtime import tune_gc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arm.settings")
application = get_wsgi_application()
tune_gc()
