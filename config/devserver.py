"""The WSGI application ``manage.py runserver`` serves (settings.WSGI_APPLICATION).

Production serves config.wsgi (gunicorn), which refuses the public development SECRET_KEY; the development
server keeps working on a fresh checkout with no environment (``make run``) and says loudly that the
key is not fit for anything else.
"""

import sys

from django.core.wsgi import get_wsgi_application

from arm.checks import uses_fallback_secret_key

application = get_wsgi_application()

if uses_fallback_secret_key():
    sys.stderr.write(
        "\n*** ARM is using the public development SECRET_KEY (ARM_SECRET_KEY is not set). Fine for a local "
        "demo; never expose this server. Production serves config.wsgi, which refuses to start like this. ***\n\n"
    )
