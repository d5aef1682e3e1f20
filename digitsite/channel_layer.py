"""The embedded channel layer: Channels' in-memory layer, one copy per broadcast.

Channels' InMemoryChannelLayer deep-copies a message for every channel it is
delivered to, as Redis would serialise it. A room's broadcasts go to up to 8
players (41 sockets in a class), and the live drawings among them carry a
drawing's points: in a profile of one process serving 32 players, those
copies were 12.6% of the server's CPU, more than the network's forward pass.
Here `group_send` copies the message once, so the sender may still change its
dict afterwards, and every member of the group receives that one copy. The
game's handlers read broadcasts and never change them (`room_view.py` keeps
copies of what it stores); tests/test_channel_layer.py holds the contract.
A message sent to one channel is still copied, as before.

That one copy is a pickle round trip rather than copy.deepcopy: the same
deep copy for the plain data messages are (dicts, lists, strings, numbers;
the Redis layer could carry nothing else), at C speed: a live drawing's
broadcast of 150 points took 100 us to deep-copy and takes 19 us. A message
pickle cannot copy is deep-copied as before.

Channels' layer also sweeps every channel and every group membership of the
process for expired messages on each receive and each broadcast, so each
message costs time in proportion to the process's sockets: with 200 players
every live drawing's 8 deliveries walked 200 channels and 200 memberships
(bench/bench_channel_layer.py). Messages expire after a minute, memberships
after a day; this layer sweeps the whole process at most once every
SWEEP_SECONDS, and a receive drops only its own channel's expired messages
first (as the sweep would have: the channel leaves its groups), so an
expired message is still never handed out, and each message costs the same
whatever the number of players.
"""

import asyncio
import pickle
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

SWEEP_SECONDS = 1.0


def copy_message(message):
    """A deep copy of a message, through pickle where it can be pickled."""
    try:
        return pickle.loads(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # whatever pickle refuses; deepcopy raises if it cannot either
        return deepcopy(message)


class BroadcastOnceChannelLayer(InMemoryChannelLayer):
    def __init__(self, *args, sweep_seconds=SWEEP_SECONDS, monotonic=time.monotonic, **kwargs):
        super().__init__(*args, **kwargs)
        self.sweep_seconds = sweep_seconds
        self.monotonic = monotonic  # injectable, for tests
        self._next_sweep = float("-inf")

    def _clean_expired(self):
        """Channels' sweep of expired messages and memberships, once per sweep_seconds at most."""
        now = self.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_seconds
        super()._clean_expired()

    async def receive(self, channel):
        self._drop_expired_head(channel)
        return await super().receive(channel)

    def _drop_expired_head(self, channel):
        """Channels' sweep for one channel: its expired messages go, and so does
        its membership of every group."""
        queue = self.channels.get(channel)
        now = time.time()
        while queue is not None and not queue.empty() and queue._queue[0][0] < now:
            queue.get_nowait()
            self._remove_from_groups(channel)
            if queue.empty():
                self.channels.pop(channel, None)

    async def group_send(self, group, message):
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        shared = copy_message(message)
        for channel in list(self.groups.get(group, {})):
            try:
                self._deliver(channel, shared)
            except ChannelFull:
                pass  # as Channels' own layer: a full channel misses the broadcast

    def _deliver(self, channel, message):
        """Queue `message` itself (not a copy) on `channel`."""
        queue = self.channels.setdefault(
            channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, message))
        except asyncio.queues.QueueFull:
            raise ChannelFull(channel) from None
