from django.db import migrations, models
from django.db.models import Q


def forget_opted_out_drawings(apps, schema_editor):
    """Rounds that ended before opted-out drawings were deleted at a round's end:
    delete them now. Only the round a room is playing keeps its drawings."""
    RoundProgress = apps.get_model("game", "RoundProgress")
    being_played = Q(room__state="playing", room__game_id=models.F("game_id"),
                     room__round=models.F("round_number"))
    RoundProgress.objects.filter(seat__opt_out=True).exclude(being_played).update(
        drawing=None, input_image=None, probabilities=None, drawing_deleted=True)


class Migration(migrations.Migration):

    dependencies = [
        ('game', '0002_round_progress_best_probability'),
    ]

    operations = [
        migrations.AddField(
            model_name='roundprogress',
            name='drawing_deleted',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(forget_opted_out_drawings, migrations.RunPython.noop),
    ]
