"""Each drawing records how its player's round ended. Drawings stored before
(their ending was not kept) read "unknown"."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recognizer', '0007_modelversion_last_activated'),
    ]

    operations = [
        migrations.AddField(
            model_name='drawing',
            name='ending',
            field=models.CharField(choices=[('reached', 'Reached the target, pen lifted'), ('done', 'Done'), ('time', 'Time ran out'), ('disconnected', 'Disconnected'), ('left', 'Left'), ('kicked', 'Removed by the host'), ('unknown', 'Not recorded (an older drawing)')], db_index=True, default='unknown', help_text="How the player's round ended when this drawing was kept.", max_length=16, verbose_name='round ended by'),
        ),
    ]
