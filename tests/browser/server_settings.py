"""The browser suite's server settings: ARM's own, with a fast password hasher.

Every ``sign_in`` checks a password on the server and ``seed_demo`` hashes one per demo user; with the
production PBKDF2 that hashing was a large part of the suite's CPU, and no browser test is about the hasher
(``tests/arm/test_password_hasher.py`` checks the production setting).
"""

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
