"""A short reference a person can read out: 8 characters without look-alikes, unique.
Existing bookings get one each."""

from django.db import migrations, models

import bookings.models


def fill(apps, schema_editor):
    Booking = apps.get_model("bookings", "Booking")
    taken: set[str] = set()
    for pk in Booking.objects.order_by("pk").values_list("pk", flat=True):
        code = bookings.models.new_short_reference()
        while code in taken:
            code = bookings.models.new_short_reference()
        taken.add(code)
        Booking.objects.filter(pk=pk).update(short_reference=code)


class Migration(migrations.Migration):
    dependencies = [("bookings", "0004_changeover")]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="short_reference",
            field=models.CharField(editable=False, max_length=8, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="booking",
            name="short_reference",
            field=models.CharField(
                default=bookings.models.new_short_reference,
                editable=False,
                max_length=8,
                unique=True,
            ),
        ),
    ]
