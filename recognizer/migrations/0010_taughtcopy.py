"""Taught copies: the teach page's private copies of a model version (recognizer/taught.py)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recognizer', '0009_drawing_player_label'),
    ]

    operations = [
        migrations.CreateModel(
            name='TaughtCopy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('owner_kind', models.CharField(choices=[('session', 'A browser session'), ('class', 'A class room')], max_length=8)),
                ('owner_key', models.CharField(max_length=64)),
                ('head_state', models.BinaryField()),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('expires_at', models.DateTimeField(db_index=True)),
                ('summary', models.JSONField(blank=True, default=dict)),
                ('base_version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='taught_copies', to='recognizer.modelversion')),
            ],
            options={
                'ordering': ['-created', '-id'],
                'indexes': [models.Index(fields=['owner_kind', 'owner_key', 'expires_at'], name='taughtcopy_owner')],
            },
        ),
    ]
