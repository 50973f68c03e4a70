"""Usernames are unique up to case: a unique index on ``LOWER(username)`` of the user table (Django's
``auth_user``), backing ``accounts.services.username_check`` against two accounts created at once.
Usernames are stored NFKC-normalized (Django's ``AbstractBaseUser.normalize_username``), so ``ＯＰＳ`` is
saved as ``OPS`` and meets ``ops`` here. SQLite's ``LOWER`` folds ASCII letters only; PostgreSQL's folds
every letter its collation knows.

Refuses to run while two accounts already differ only in case, naming them: rename one first."""

from django.conf import settings
from django.db import migrations
from django.db.models.functions import Lower

INDEX = "arm_user_username_lower_uniq"


def _table(apps, schema_editor):
    model = apps.get_model(settings.AUTH_USER_MODEL)
    quote = schema_editor.connection.ops.quote_name
    return model, quote(model._meta.db_table), quote(model._meta.get_field("username").column)


def create(apps, schema_editor):
    model, table, column = _table(apps, schema_editor)
    seen, clashes = {}, []
    for name, lower in model.objects.annotate(lower=Lower("username")).order_by("pk").values_list("username", "lower"):
        if lower in seen:
            clashes.append(f"{seen[lower]!r} and {name!r}")
        seen.setdefault(lower, name)
    if clashes:
        raise RuntimeError(
            "Usernames must be unique up to case, and these accounts differ only in case: "
            + "; ".join(clashes)
            + ". Rename one of each pair (Django admin or manage.py shell), then migrate again."
        )
    schema_editor.execute(
        f"CREATE UNIQUE INDEX {schema_editor.connection.ops.quote_name(INDEX)} ON {table} (LOWER({column}))"
    )


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.connection.ops.quote_name(INDEX)}")


class Migration(migrations.Migration):
    dependencies = [
        ("arm", "0006_apikey_minters"),
        # after the user table's last change: SQLite rebuilds a table it alters, without this index
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
