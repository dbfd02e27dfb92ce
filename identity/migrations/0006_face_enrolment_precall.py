from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('identity', '0005_face_enrolment_sources'),
    ]

    operations = [
        migrations.AlterField(
            model_name='faceenrolment',
            name='source',
            field=models.CharField(choices=[('selfie', 'Selfie'), ('id_photo', 'Photo ID'), ('photo', 'Photo'), ('precall', 'Camera check before a call')], default='selfie', max_length=16),
        ),
    ]
