"""Open game sockets per client address and per browser session, in this process.

A client may hold GAME_WS_CONNECTIONS_PER_ADDRESS sockets from one address
and GAME_WS_CONNECTIONS_PER_SESSION from one browser session (the page's
session cookie; a client without one is counted by its address alone). The
socket past either bound is accepted, told `too_many_connections` and closed
with 4029 (docs/protocol.md), rather than refused in the handshake, which a
browser reports as a failed connection with no reason.

Each socket costs the process its buffers, a consumer and a drawing in
flight, so the count is kept per process, beside them: with N processes a
client may hold N times as many. A count shared in Redis would bound the
site instead, but outlive a process killed with its sockets open and shut
their clients out until it expired.
"""

from collections import Counter

from django.conf import settings


class ConnectionCounts:
    """Sockets open per address and per session key. Used from the event loop only."""

    def __init__(self):
        self.by_address = Counter()
        self.by_session = Counter()

    def admit(self, address, session_key):
        """Count a new socket, or return why it is refused (and count nothing)."""
        per_address = settings.GAME_WS_CONNECTIONS_PER_ADDRESS
        per_session = settings.GAME_WS_CONNECTIONS_PER_SESSION
        if per_address > 0 and self.by_address[address] >= per_address:
            return (f"too many connections from your address: at most {per_address} "
                    f"at a time; close another tab or device first")
        if session_key and per_session > 0 and self.by_session[session_key] >= per_session:
            return (f"too many connections from this browser: at most {per_session} "
                    f"at a time; close another tab first")
        self.by_address[address] += 1
        if session_key:
            self.by_session[session_key] += 1
        return None

    def release(self, address, session_key):
        for counter, key in ((self.by_address, address), (self.by_session, session_key)):
            if key and counter[key] > 0:
                counter[key] -= 1
                if not counter[key]:
                    del counter[key]


# The process's sockets (digitsite.game.consumers counts them).
open_sockets = ConnectionCounts()
