from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recognizer', '0006_drawing_status_reviewed_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='modelversion',
            name='last_activated',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
