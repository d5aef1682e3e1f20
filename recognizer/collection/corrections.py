"""A player's correction of their own stored drawing: "this was wrong, it was a ...".

The game offers it on the player's own drawings after a game
(digitsite.game.gallery, which checks that the drawing is the player's and
that their room is still kept). What is recorded here is the player's word
only (Drawing.player_label): the label stays as it was until a reviewer
relabels the drawing (review.relabel), and the admin shows the word beside
the label and filters on it.

Bounded: once per drawing (a conditional UPDATE where none was recorded, so
two at once record one), one digit.
"""

from django.utils import timezone


class CorrectionError(Exception):
    """Why a correction was refused: `code` is one of "not_kept", "same_as_guess",
    "already_corrected", "not_a_digit"; the message says it for people."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def record_player_label(*, game_id, round_number, player_id, digit, now=None):
    """Record that the player says their drawing of the round is `digit`.

    Returns the drawing. Raises CorrectionError when no drawing of theirs is
    stored for the round (nothing drawn, opted out, deleted), when `digit` is
    the model's own reading of it (nothing to correct), or when they already
    said.
    """
    from recognizer.models import Drawing

    if not isinstance(digit, int) or isinstance(digit, bool) or not 0 <= digit <= 9:
        raise CorrectionError("not_a_digit", "the digit must be a whole number from 0 to 9")
    drawing = Drawing.objects.filter(game_id=game_id, round_number=round_number,
                                     player_id=player_id).first()
    if drawing is None:
        raise CorrectionError("not_kept", "no drawing of yours is kept for that round")
    if drawing.prediction == digit:
        raise CorrectionError("same_as_guess", f"the model read it as {digit} already: "
                                               "say which digit it was instead")
    if not Drawing.objects.filter(pk=drawing.pk, player_label__isnull=True).update(
            player_label=digit, player_label_at=now or timezone.now()):
        raise CorrectionError("already_corrected", "you already said which digit this drawing is")
    drawing.refresh_from_db(fields=["player_label", "player_label_at"])
    return drawing
