"""A player may say, once, which digit their drawing is ("this was wrong, it
was a ..." in the game's end-of-game gallery), for the reviewers."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recognizer', '0008_drawing_ending'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='drawing',
            name='player_label',
            field=models.PositiveSmallIntegerField(blank=True, help_text='The digit the player said this drawing is, after the game.', null=True, verbose_name='player says'),
        ),
        migrations.AddField(
            model_name='drawing',
            name='player_label_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='player said at'),
        ),
        migrations.AddConstraint(
            model_name='drawing',
            constraint=models.CheckConstraint(condition=models.Q(('player_label__isnull', True), ('player_label__lte', 9), _connector='OR'), name='player_label_is_a_digit'),
        ),
    ]
