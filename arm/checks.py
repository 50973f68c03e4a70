"""System checks for a production deployment (``manage.py check --deploy``)."""

from django.conf import settings
from django.core.checks import Error, Tags, register


def uses_fallback_secret_key() -> bool:
    return settings.SECRET_KEY == settings.INSECURE_FALLBACK_SECRET_KEY


@register(Tags.security, deploy=True)
def check_secret_key(app_configs=None, **kwargs):
    """The development key is public (it is in the repository): sessions and CSRF tokens signed with it
    can be forged by anyone."""
    if uses_fallback_secret_key():
        return [
            Error(
                "ARM_SECRET_KEY is not set: ARM is using the public development key.",
                hint="Set ARM_SECRET_KEY to a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(50))').",
                id="arm.E001",
            )
        ]
    return []


def refuse_insecure_key_for_serving() -> None:
    """Called by config/wsgi.py: a served ARM (gunicorn) with DEBUG off and the public fallback key refuses
    to start, unless ARM_ALLOW_INSECURE_KEY=1 says this is a throwaway deployment. runserver, tests and
    commands do not go through wsgi.py and keep working with the fallback key."""
    from django.core.exceptions import ImproperlyConfigured

    if uses_fallback_secret_key() and not settings.DEBUG and not settings.ARM_ALLOW_INSECURE_KEY:
        raise ImproperlyConfigured(
            "ARM_SECRET_KEY is not set and ARM_DEBUG is off: refusing to serve with the public development "
            "key. Set ARM_SECRET_KEY (or ARM_ALLOW_INSECURE_KEY=1 for a throwaway deployment)."
        )
