"""Collected drawings: what players draw becomes training data.

The game stores each player's drawing of a round (store.py); staff review
(review.py, the admin in admin.py with its list filters in list_filters.py
and its review queue in review_queue.py), look at small pictures of them
(thumbnails.py) and export them for training (exports.py). A player's own
word on a drawing after the game is kept for them (corrections.py). The drawings
themselves are recognizer.models.Drawing.

This package is imported while Django loads its apps, so it imports no
models here; store_drawing imports them when it runs.
"""

from recognizer.collection.store import store_drawing

__all__ = ["store_drawing"]
