"""A class's drawings as teach examples, and who may teach a class's copy.

After a game, a class's teacher teaches the class's copy (recognizer.taught)
with the drawings the game kept: each labelled with its round's target digit
(Drawing.label; a reviewer's relabelling wins), leaving out those staff
rejected in review and those the teacher excluded from the projector. Only
drawings the game stored are used, so a student who opted out is not in it.
"""

import numpy as np

from digitsite.game import class_views, rooms
from recognizer.models import Drawing
from recognizer.preprocessing import bytes_to_input

# The newest drawings of a game a class job trains on: 40 students times 10
# rounds, the most a class game keeps.
CLASS_MAX_EXAMPLES = 400


def teachable_room(code):
    """The class room `code` (any case), or None when there is no such class."""
    room = rooms.get_room(code)
    if room is None or not room.classroom:
        return None
    return room


def is_teacher(request, room):
    """This browser teaches the class: the one that opened it, by the projector's
    own rule (digitsite.game.class_views), so that whoever sees the projector's
    teach button may press it. A class opened by a script has no such browser:
    the projector lets its first visitor in, but its copy is taught by nobody,
    or any visitor could retrain what the class's game reads (as
    digitsite/game/class_data.py refuses its data)."""
    return bool(room.creator_session) and class_views.is_teachers_browser(request, room)


def class_examples(room, exclude=()):
    """(inputs (N, 28, 28) float32, labels) of the room's latest game's kept drawings."""
    exclude = set(exclude)
    rows = (Drawing.objects.filter(room_code=room.code, game_id=room.game_id, source="game")
            .exclude(status=Drawing.Status.REJECTED).order_by("-created", "-id")
            .values_list("player_id", "round_number", "label", "input_image"))
    inputs, labels = [], []
    for player, round_number, label, image in rows.iterator():
        if (player, round_number) in exclude:
            continue
        inputs.append(bytes_to_input(bytes(image)))
        labels.append(int(label))
        if len(labels) >= CLASS_MAX_EXAMPLES:
            break
    if not inputs:
        return np.zeros((0, 28, 28), np.float32), []
    return np.stack(inputs).astype(np.float32), labels
