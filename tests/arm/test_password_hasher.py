"""The suite hashes test passwords with MD5 (tests/conftest.py); production must not."""

from django.conf import global_settings, settings
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.test import override_settings

from config import settings as production_settings


def test_the_suite_runs_with_the_fast_hasher():
    assert settings.PASSWORD_HASHERS == ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_production_hashes_passwords_with_pbkdf2_at_full_strength():
    production = getattr(production_settings, "PASSWORD_HASHERS", global_settings.PASSWORD_HASHERS)
    with override_settings(PASSWORD_HASHERS=production):
        encoded = make_password("correct horse battery staple")
        hasher = identify_hasher(encoded)
        assert hasher.algorithm == "pbkdf2_sha256"
        assert int(encoded.split("$")[1]) == hasher.iterations >= 1_000_000
        assert check_password("correct horse battery staple", encoded)
