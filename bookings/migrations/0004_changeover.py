"""Changeover on each laptop: a booking holds its terminal until ``terminal_free_at``
(the end of the call plus the establishment's changeover), and on PostgreSQL the
terminal exclusion constraint keeps [starts_at, terminal_free_at) apart instead of
[starts_at, ends_at).

Existing bookings get the changeover where it fits: up to the next active booking on
the same laptop at most, so that no existing row breaks the new constraint.
"""

from datetime import timedelta

from django.db import migrations, models

ACTIVE = "status IN ('requested', 'confirmed')"


def fill_terminal_free_at(apps, schema_editor):
    Booking = apps.get_model("bookings", "Booking")
    rows = Booking.objects.select_related("establishment").order_by("terminal_id", "starts_at")
    following: dict[int, object] = {}  # terminal id -> start of the next active booking
    for booking in reversed(list(rows)):
        free_at = booking.ends_at + timedelta(minutes=booking.establishment.changeover_minutes)
        active = booking.status in ("requested", "confirmed")
        if active:
            nxt = following.get(booking.terminal_id)
            if nxt is not None and nxt < free_at:
                free_at = max(nxt, booking.ends_at)
            following[booking.terminal_id] = booking.starts_at
        Booking.objects.filter(pk=booking.pk).update(terminal_free_at=free_at)


def swap_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE bookings_booking DROP CONSTRAINT IF EXISTS booking_terminal_no_overlap"
    )
    schema_editor.execute(
        "ALTER TABLE bookings_booking ADD CONSTRAINT booking_terminal_keeps_changeover "
        "EXCLUDE USING gist (terminal_id WITH =, "
        f"tstzrange(starts_at, terminal_free_at, '[)') WITH &&) WHERE ({ACTIVE})"
    )


def unswap_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE bookings_booking DROP CONSTRAINT IF EXISTS booking_terminal_keeps_changeover"
    )
    schema_editor.execute(
        "ALTER TABLE bookings_booking ADD CONSTRAINT booking_terminal_no_overlap "
        "EXCLUDE USING gist (terminal_id WITH =, "
        f"tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE ({ACTIVE})"
    )


class Migration(migrations.Migration):
    dependencies = [("bookings", "0003_postgres_exclusion_constraints")]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="terminal_free_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(fill_terminal_free_at, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="booking",
            name="terminal_free_at",
            field=models.DateTimeField(blank=True),
        ),
        migrations.AddConstraint(
            model_name="booking",
            constraint=models.CheckConstraint(
                condition=models.Q(("terminal_free_at__gte", models.F("ends_at"))),
                name="booking_terminal_free_after_end",
            ),
        ),
        migrations.RunPython(swap_constraint, unswap_constraint),
    ]
