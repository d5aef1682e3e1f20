"""What a class's teacher is shown after each round and after the game, read
from the database: the `class_round` and `class_summary` messages.

Reads only, called by the teacher's own connection when it hears a round's
end or the game's (digitsite.game.class_feed): no other connection pays for
them, and a teacher who reconnects between rounds gets them again. The rules
they apply (what counts as wrong, the confusion matrix) are plain Python in
digitsite.game.classroom.
"""

from django.db.models import Count, F
from django.urls import reverse

from digitsite.game import classroom, protocol
from digitsite.game.models import RoundProgress

# The lesson a class is pointed to at the end. The teaching page opens an
# MNIST digit by its index (?mnist=N) but takes no drawing of a player's, so
# the link is to the lesson itself.
LEARN_URL_NAME = "teaching:how_it_works"


def round_message(code, round_end):
    """`class_round` for a `round_end` of class room `code`: the round's
    counts and wrong drawings, and the confusion matrix of every round of
    the game up to this one."""
    summary = classroom.round_summary(round_end["results"], round_end["target"])
    pairs = RoundProgress.objects.filter(
        room__code=code, game_id=round_end["game"], round_number__lte=round_end["round"],
    ).values_list("target", "prediction")
    return protocol.message(
        "class_round",
        game=round_end["game"],
        round=round_end["round"],
        target=round_end["target"],
        students=summary["students"],
        drawn=summary["drawn"],
        recognised=summary["recognised"],
        correct=summary["correct"],
        wrong=[protocol.record("class_wrong", **wrong) for wrong in summary["wrong"]],
        matrix=classroom.confusion_matrix(pairs),
        matrix_rounds=round_end["round"],
    )


def review_url(code):
    """The admin's list of a class's drawings (staff only: the admin asks to log in)."""
    return f"{reverse('admin:recognizer_drawing_changelist')}?room_code={code}"


def summary_message(code, game_id, *, staff):
    """`class_summary`: the drawings the class's games kept as training data
    (all of the room's: a class may play again), counted per digit, with
    a sample to show, and where to go next. `staff`: the teacher may review
    them in the admin, so the message carries the link."""
    from recognizer.models import Drawing

    drawings = Drawing.objects.filter(room_code=code)
    by_label = dict(drawings.values_list("label").annotate(count=Count("id")).order_by())
    samples = drawings.order_by("label", "created").values_list(
        "label", "prediction", "strokes")[:classroom.SUMMARY_MAX_DRAWINGS]
    return protocol.message(
        "class_summary",
        game=game_id,
        drawings=sum(by_label.values()),
        by_digit=[by_label.get(digit, 0) for digit in range(10)],
        misread=drawings.exclude(prediction=F("label")).count(),
        samples=[protocol.record(
            "class_sample", label=label, prediction=prediction,
            drawing=classroom.simplify_drawing(strokes, max_points=classroom.SUMMARY_MAX_POINTS))
            for label, prediction, strokes in samples],
        review_url=review_url(code) if staff else None,
        learn_url=reverse(LEARN_URL_NAME),
    )
