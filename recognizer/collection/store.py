"""Storing a player's drawing of one round as training data.

The game calls store_drawing when a player's round is over and they have not
opted out (whether to store is the game's decision; opting out later deletes
the drawing again). The drawing waits for review as "pending", with how the
round ended for the player (Drawing.Ending): a drawing the timer or a
disconnect cut off may be unfinished, and reviewers can filter on it.
"""


def store_drawing(*, game_id, round_number, player_id, player_name, user_id, room_code,
                  label, strokes, input_image, prediction, probabilities, model_version,
                  ending="unknown", source="game"):
    """Store one player's drawing of one round, once; return (drawing, created).

    - label: the digit the player was asked to draw (the round's target)
    - strokes: the canvas strokes as the game received them
    - input_image: the 28x28 network input, 784 bytes (any bytes-like value)
    - prediction, probabilities: the model's guess and its ten probabilities
    - model_version: the name of the model version that guessed ("" or None
      when unknown); a name no ModelVersion has is stored as no version
    - user_id: the signed-in player's user id, or None
    - ending: how the player's round ended, one of Drawing.Ending's values
      ("reached", "done", "time", "disconnected", "left", "kicked" or
      "unknown"); ValueError for any other

    The unique constraint (game, round, player) makes a second attempt a
    no-op: the drawing already stored is returned unchanged, with created
    False.
    """
    # Imported here: this module is imported while Django loads its apps.
    from recognizer.models import Drawing, ModelVersion

    if ending not in Drawing.Ending.values:
        raise ValueError(f"unknown ending {ending!r}: use one of "
                         + ", ".join(Drawing.Ending.values))
    version = (ModelVersion.objects.filter(version=model_version).first()
               if model_version else None)
    return Drawing.objects.get_or_create(
        game_id=game_id,
        round_number=round_number,
        player_id=player_id,
        defaults={
            "label": label,
            "strokes": strokes,
            "input_image": bytes(input_image),
            "prediction": prediction,
            "probabilities": probabilities,
            "model_version": version,
            "player_name": player_name,
            "user_id": user_id,
            "room_code": room_code,
            "source": source,
            "ending": ending,
            "status": Drawing.Status.PENDING,
        },
    )
