"""What a player's session needs of its connection: the transport.

The session (digitsite.game.session) talks to the outside world only through
an object with these members; in production it is the Channels consumer
(digitsite.game.consumers), in a test it may be anything that has them.
Broadcasts to the room come back to every session through its `on_event`,
so everything a client learns about the room, from this process or another,
goes the same way.
"""

from typing import Protocol


class Transport(Protocol):
    # This connection's address in the channel layer.
    channel_name: str
    # The Django user, or None / AnonymousUser.
    user: object
    # The Django session key of the connection, or None (may be left out).
    session_key: str | None
    # The client's address, which per-client limits count (may be left out:
    # the session then counts it as no address).
    client_address: str | None

    async def send_message(self, message: dict, text: str | None = None) -> None:
        """Send a message to this client (`text`: the message already encoded
        by digitsite.game.protocol.encode; only passed when there is one)."""

    async def broadcast(self, message: dict) -> None:
        """Send a message to everyone in the room, this client included."""

    async def subscribe(self, code: str) -> None:
        """Start receiving the room's broadcasts."""

    async def subscribe_teacher(self, code: str) -> None:
        """Start receiving the live drawings of a class's students (the
        teacher's connection only; digitsite.game.class_feed)."""

    async def send_to_teacher(self, message: dict) -> None:
        """Send a message to the connection of the class's teacher, and no one else."""

    async def notify_replaced(self, channel_name: str, same_browser: bool = False) -> None:
        """Tell an older connection that it lost its seat to this one
        (`same_browser`: this one is another tab of the same browser)."""

    async def notify_kicked(self, channel_name: str) -> None:
        """Tell the connection of a player the host removed."""

    async def close_socket(self, code: int) -> None:
        """Close the socket with a close code (digitsite.game.protocol)."""
