"""A trigram index for the admin's customer search, on PostgreSQL with ``pg_trgm`` only.

The admin searches email, name and external ID with ``icontains``, which
PostgreSQL runs as ``UPPER(col::text) LIKE UPPER('%term%')``: no B-tree serves
it, so 100,000 customers meant a full scan (about 280 ms). A GIN index with
``gin_trgm_ops`` on those same three expressions serves each arm of the OR
(PostgreSQL combines them with a BitmapOr).

Everywhere else this migration does nothing: SQLite, or a PostgreSQL server
where ``pg_trgm`` is not available or this role may not create it (it is a
trusted extension since PostgreSQL 13, so a database owner usually may). The
search still works there, as a scan. The index is not in the model state (a
Django ``Index`` cannot be conditional on an extension), so ``makemigrations``
never sees it; the index name is ``polar_sync_customer_search_trgm``.
"""

from django.db import DatabaseError, migrations, transaction

INDEX = "polar_sync_customer_search_trgm"

# The expressions exactly as Django writes icontains on PostgreSQL (lookup_cast).
CREATE_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON polar_sync_customer USING gin ("
    "UPPER(email::text) gin_trgm_ops, "
    "UPPER(name::text) gin_trgm_ops, "
    "UPPER(external_id::text) gin_trgm_ops)"
)


def trigram_available(connection) -> bool:
    """Whether ``pg_trgm`` is installed here, or could be and this role installed it now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone():
            return True
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return False
        try:
            # A savepoint: a refused CREATE EXTENSION must not abort the migration.
            with transaction.atomic(using=connection.alias):
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError:
            return False
    return True


def create_index(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or not trigram_available(connection):
        return
    with connection.cursor() as cursor:
        cursor.execute(CREATE_INDEX)


def drop_index(apps, schema_editor) -> None:
    # The extension stays: something else may use it.
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("polar_sync", "0011_members"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
