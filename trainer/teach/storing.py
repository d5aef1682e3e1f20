"""Teach drawings kept as collected drawings, for review like the game's.

Each example a learner draws on the teach page is stored through
recognizer.collection.store_drawing as a pending drawing labelled with what
the learner said it is, `source` "teach", so the admin's review and
`finetune`'s gate decide whether the site's model ever learns from it. A
request with "store": false (the page's switch) stores nothing.

The game's unique key (game, round, player) becomes (teach-<job id>, the
example's index, the session's learner id): each example once, and a
player's data in the admin finds all of one browser's teach drawings by its
learner id.
"""

import logging

from recognizer.collection import store_drawing
from recognizer.inference import ModelUnavailable, get_service
from recognizer.preprocessing import input_to_bytes

logger = logging.getLogger(__name__)

SOURCE = "teach"
PLAYER_NAME = "Teach page"


def store_examples(job_id, parsed, inputs, learner, user_id, limit=None):
    """Store the examples of a teach request (a jobs.JobRequest), the first `limit`
    of them when given (trainer/teach/limits.py); how many were stored."""
    service = get_service()
    inputs = inputs[:limit] if limit is not None else inputs
    try:
        # Queued together: the inference service batches them.
        futures = [service.submit(image, client=("teach", learner)) for image in inputs]
        predictions = [future.result(timeout=60) for future in futures]
    except (ModelUnavailable, TimeoutError) as exc:
        logger.warning("teach job %s: its drawings are not stored: %s", job_id, exc)
        return 0
    stored = 0
    for index, (label, drawing, image, prediction) in enumerate(
            zip(parsed.labels[:len(inputs)], parsed.drawings[:len(inputs)], inputs,
                predictions, strict=True)):
        _, created = store_drawing(
            game_id=f"teach-{job_id}", round_number=index, player_id=learner,
            player_name=PLAYER_NAME, user_id=user_id, room_code="", label=label,
            strokes=drawing.as_json(), input_image=input_to_bytes(image),
            prediction=prediction.digit, probabilities=prediction.probabilities,
            model_version=prediction.version, ending="done", source=SOURCE)
        stored += created
    return stored
