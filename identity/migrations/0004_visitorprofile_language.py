from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0003_group_member"),
    ]

    operations = [
        migrations.AddField(
            model_name="visitorprofile",
            name="language",
            field=models.CharField(
                choices=[("en-gb", "English"), ("cy", "Cymraeg")], default="en-gb", max_length=8
            ),
        ),
    ]
