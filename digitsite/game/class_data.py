"""A class's own data, for its teacher: /learn/class/<code>/.

A lesson on the drawings the class just made: the class's confusion matrix
(what it was asked to draw against what the model read), its hardest
drawings (the lowest probability the model gave the digit asked for), each
with a link that opens it in lesson 1, and counts. Linked from the
projector's end-of-game report.

The page lives with the game, not with the teaching pages, because only the
browser that opened the class may see it (class_views.is_teachers_browser,
the projector's check), which needs the game's rooms; the teaching pages
import nothing of the game (tests/test_import_graph.py). It reuses their
style sheet and the shared confusion-matrix colouring
(recognizer.metrics_display).

Anyone else, and a class opened by a script (no browser opened it), gets 404:
the page shows students' drawings, and 404 does not even say the class
exists.
"""

import numpy as np
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from digitsite.game import class_views, classroom, rooms
from recognizer.images import png_data_url
from recognizer.metrics_display import confusion_grid, percent

# Drawings read for one page: 40 students x 20 rounds is 800 a game, so a
# class that plays again still fits; past it the page says it shows the first.
MAX_DRAWINGS = 2000
# The hardest drawings shown: a projector screen's worth at 2 rows of 6.
HARDEST_SHOWN = 12


def class_data_url(code):
    return reverse("game:class_data", args=[code])


def _teachers_class(request, code):
    """The class room of `code` if this browser opened it; Http404 otherwise."""
    room = rooms.get_room(code)
    if (room is None or not room.classroom or not room.creator_session
            or not class_views.is_teachers_browser(request, room)):
        raise Http404("no class of yours has this code")
    return room


def _probability_of_label(drawing):
    try:
        return float(drawing.probabilities[drawing.label])
    except (TypeError, IndexError, KeyError, ValueError):
        return 0.0


def class_drawings(room):
    """The drawings the class's games kept, oldest first, at most MAX_DRAWINGS + 1
    (one more says there were more). Only those made since the room was
    created: a room code freed long ago and drawn again is another class."""
    from recognizer.models import Drawing

    return list(Drawing.objects.filter(room_code=room.code, created__gte=room.created)
                .only("id", "label", "prediction", "probabilities", "strokes", "input_image",
                      "player_id", "game_id")
                .order_by("created", "id")[:MAX_DRAWINGS + 1])


def hardest(drawings, count=HARDEST_SHOWN):
    """The `count` drawings with the lowest probability for their own label (ties: oldest
    first), as the page shows them."""
    ranked = sorted(drawings, key=_probability_of_label)[:count]
    return [{
        "id": d.id, "label": d.label, "prediction": d.prediction,
        "probability": _probability_of_label(d),
        "probability_text": percent(_probability_of_label(d), 0),
        "image": png_data_url(np.frombuffer(bytes(d.input_image), dtype=np.uint8)
                              .reshape(28, 28), scale=3, on_white=True),
        "drawing": {key: d.strokes.get(key) for key in ("width", "height", "strokes")}
        if isinstance(d.strokes, dict) else None,
    } for d in ranked]


def class_context(room):
    drawings = class_drawings(room)
    more = len(drawings) > MAX_DRAWINGS
    drawings = drawings[:MAX_DRAWINGS]
    matrix = classroom.confusion_matrix((d.label, d.prediction) for d in drawings)
    by_digit = [sum(row) for row in matrix]
    right = sum(matrix[i][i] for i in range(10))
    shown = hardest(drawings)
    return {
        "room": room,
        "drawings_count": len(drawings),
        "more_than_shown": more,
        "max_drawings": MAX_DRAWINGS,
        "students_count": len({d.player_id for d in drawings}),
        "games_count": len({d.game_id for d in drawings}),
        "right_count": right,
        "misread_count": len(drawings) - right,
        "right_text": percent(right / len(drawings), 0) if drawings else "",
        "by_digit": list(enumerate(by_digit)),
        "confusion": confusion_grid(matrix),
        "digits": range(10),
        "hardest": shown,
        # For static/js/class-data.js, which writes each "explain this drawing" link.
        "hardest_drawings": {str(item["id"]): item["drawing"] for item in shown},
    }


@never_cache
@require_GET
def class_data(request, code):
    room = _teachers_class(request, code)
    if room.code != code:
        return redirect(class_data_url(room.code))
    return render(request, "game/class_data.html", class_context(room))
