"""Storing a player's drawing of one round as training data.

The game calls store_drawing when a player's round is over and they have not
opted out (whether to store is the game's decision; opting out later deletes
the drawing again). The drawing waits for review as "pending", with how the
round ended for the player (Drawing.Ending): a drawing the timer or a
disconnect cut off may be unfinished, and reviewers can filter on it.
"""

import functools


@functools.cache
def version_key_query():
    """The key of a model version by its name, read at every player's round
    end: compiled once (recognizer/prepared_queries.py). Made on first use:
    this module is imported while Django loads its apps."""
    from recognizer.models import ModelVersion
    from recognizer.prepared_queries import PreparedQuery

    return PreparedQuery(ModelVersion, lambda version: ModelVersion.objects.filter(
        version=version).values_list("pk", flat=True))


def stored_version_name(model_version):
    """The ModelVersion name a drawing guessed by `model_version` is stored under.

    A class game under its taught copy (recognizer.taught) guesses with
    "<base>+taught", which no ModelVersion has: the drawing is stored under
    the copy's base version, so review and exports group it with the
    version the copy was taught from. Its prediction and probabilities stay
    the copy's (what the player saw); copies live hours and are deleted, so
    no row could point at one.
    """
    # Imported here: this module is imported while Django loads its apps.
    from recognizer.taught import TAUGHT_SUFFIX

    if model_version and model_version.endswith(TAUGHT_SUFFIX):
        return model_version[:-len(TAUGHT_SUFFIX)]
    return model_version


def store_drawing(*, game_id, round_number, player_id, player_name, user_id, room_code,
                  label, strokes, input_image, prediction, probabilities, model_version,
                  ending="unknown", source="game"):
    """Store one player's drawing of one round, once; return (drawing, created).

    - label: the digit the player was asked to draw (the round's target)
    - strokes: the canvas strokes as the game received them
    - input_image: the 28x28 network input, 784 bytes (any bytes-like value)
    - prediction, probabilities: the model's guess and its ten probabilities
    - model_version: the name of the model version that guessed ("" or None
      when unknown); a name no ModelVersion has is stored as no version,
      a taught copy's ("<base>+taught") as its base version
    - user_id: the signed-in player's user id, or None
    - ending: how the player's round ended, one of Drawing.Ending's values
      ("reached", "done", "time", "disconnected", "left", "kicked" or
      "unknown"); ValueError for any other

    The unique constraint (game, round, player) makes a second attempt a
    no-op: the drawing already stored is returned unchanged, with created
    False.
    """
    # Imported here: this module is imported while Django loads its apps.
    from django.db import IntegrityError, transaction

    from recognizer.models import Drawing

    if ending not in Drawing.Ending.values:
        raise ValueError(f"unknown ending {ending!r}: use one of "
                         + ", ".join(Drawing.Ending.values))
    name = stored_version_name(model_version)
    # Its key only: a version's row carries its metrics (confusion matrices,
    # per-style tables, its training history), JSON parsed on every read,
    # and every round end stores a drawing per player.
    version_id = version_key_query().value(version=name) if name else None
    key = {"game_id": game_id, "round_number": round_number, "player_id": player_id}
    values = {
        "label": label,
        "strokes": strokes,
        "input_image": bytes(input_image),
        "prediction": prediction,
        "probabilities": probabilities,
        "model_version_id": version_id,
        "player_name": player_name,
        "user_id": user_id,
        "room_code": room_code,
        "source": source,
        "ending": ending,
        "status": Drawing.Status.PENDING,
    }
    # Inserted first, read only if the row is there already: a round's
    # drawing is stored once, so the insert is what almost always happens.
    # get_or_create reads first, then inserts: one more statement on every
    # player's round end (`done` made 19 statements in a room of 8).
    try:
        with transaction.atomic():
            return Drawing.objects.create(**key, **values), True
    except IntegrityError:
        # Read after the failed insert: at READ COMMITTED (PostgreSQL's
        # default, which the site uses) this sees a row another transaction
        # committed meanwhile. None: another constraint refused the drawing.
        stored = Drawing.objects.filter(**key).first()
        if stored is None:
            raise
        return stored, False
