import os

import pytest
from django.db import connection


@pytest.mark.django_db
def test_suite_runs_on_the_database_DATABASE_URL_names():
    """CI runs the suite twice; this proves the PostgreSQL run really is on PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected
    print(f"database vendor: {connection.vendor}")
