"""On PostgreSQL: no terminal and no prisoner with overlapping active calls.

The unique constraints (terminal + start, prisoner + start) work on every database;
these exclusion constraints also catch calls that overlap without starting at the same
moment (e.g. after a change of session times). SQLite keeps only the unique ones.
"""

from django.db import migrations

ACTIVE = "status IN ('requested', 'confirmed')"
CONSTRAINTS = {
    "booking_terminal_no_overlap": "terminal_id",
    "booking_prisoner_no_overlap": "prisoner_id",
}


def add_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    for name, column in CONSTRAINTS.items():
        schema_editor.execute(
            f"ALTER TABLE bookings_booking ADD CONSTRAINT {name} EXCLUDE USING gist "
            f"({column} WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE ({ACTIVE})"
        )


def remove_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in CONSTRAINTS:
        schema_editor.execute(f"ALTER TABLE bookings_booking DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("bookings", "0002_initial")]

    operations = [migrations.RunPython(add_constraints, remove_constraints)]
