"""What a visitor reads when the server lacks something a teaching page needs.

The reasons the server knows (a missing MNIST file and the folder it was
looked for in, a model file that fails its checksum) are for the operator:
they go to the log at warning level, and the page says in plain words what
is missing, without paths of the server.
"""

import logging

logger = logging.getLogger(__name__)

MNIST = "The MNIST examples are not installed on this server, so there are none to show here."
ANSWERS = ("The model's answers on these digits cannot be worked out on this server "
           "right now.")
TRAINING_DIGITS = ("MNIST's training digits are not installed on this server, so the digits "
                   "that excite each map most cannot be shown here.")
TOP_DIGITS_FAILED = ("The digits that excite each map most cannot be worked out on this "
                     "server right now.")
COLLECTED = "not measured: the model could not be run on this server right now"


def explained(public, exc, page):
    """Log `exc` (the detail) for the operator; return `public`, the visitor's text."""
    logger.warning("teaching page %s: %s", page, exc)
    return public
