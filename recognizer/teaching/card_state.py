"""What the model page shows, read from the database at most every few seconds.

A view of `/learn/model/` needs the active version, the state of the approved
drawings (gallery.approved_stamp), the version history and, from those, the
card's cache key. Reading them took three queries and a fresh database
connection a view: with 30 learners reloading the page, 63% of the server's
busy time on a view whose card was already drawn (py-spy, 20,000 approved
drawings; 7.0 ms of CPU a view). Kept for MODEL_CARD_STATE_SECONDS (2 s by
default, as long as a process takes to serve a newly activated version, see
RECOGNIZER_RELOAD_SECONDS), with the card's HTML once drawn, a view inside
that window touches neither the database nor the cache.
"""

import threading
import time
from typing import NamedTuple


class CardState(NamedTuple):
    version: object  # the active ModelVersion, or None
    stamp: object  # gallery.approved_stamp(), or None without a version
    history: list
    key: str  # modelcard.card_key of the three above
    html: str | None  # the card drawn for `key`, once known


class RecentCardState:
    """The latest CardState of this process and when it was read (`clock`, seconds)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._read_at = None
        self._state = None

    def recent(self, seconds):
        """The state if it was read less than `seconds` ago, else None."""
        with self._lock:
            if self._state is None or self.clock() - self._read_at >= seconds:
                return None
            return self._state

    def remember(self, state, read_at):
        """Keep `state`, read from the database at `read_at` (taken before the read,
        so a change made during it is seen at the next read)."""
        with self._lock:
            if self._read_at is None or read_at >= self._read_at:
                self._state, self._read_at = state, read_at

    def remember_html(self, key, html):
        """The card drawn for `key`: kept if the state is still the one it was drawn for."""
        with self._lock:
            if self._state is not None and self._state.key == key:
                self._state = self._state._replace(html=html)

    def forget(self):
        with self._lock:
            self._state = self._read_at = None
