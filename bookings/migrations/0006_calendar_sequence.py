"""The calendar file's SEQUENCE per booking: 0 for existing bookings (as if just booked)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("bookings", "0005_short_reference")]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="calendar_sequence",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
    ]
