"""The game's WebSocket endpoint: carries messages between a socket and its PlayerSession.

The consumer is the session's transport (digitsite.game.transport): it
writes the session's messages to the socket as the protocol says
(digitsite.game.protocol.encode) and passes the room's broadcasts on. It
counts the sockets per client (digitsite.game.connection_limits; in Redis
when the site has one)
and closes one past the bound with 4029 before any session is made.
"""

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

from digitsite.game import connection_limits, protocol, upkeep
from digitsite.game.protocol import CLOSE_TOO_MANY_CONNECTIONS
from digitsite.game.session import PlayerSession
from recognizer.clients import client_address


def room_group(code):
    return f"game.room.{code}"


def teacher_group(code):
    """A class's teacher's connections: the only receivers of its students' live drawings."""
    return f"game.class.{code}"


class GameConsumer(AsyncWebsocketConsumer):
    """One player's socket; the rules live in digitsite.game (see docs/protocol.md)."""

    async def connect(self):
        self.group = None
        self.teacher_group = None
        self.user = self.scope.get("user")
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        # The address the limits count (TRUSTED_PROXIES decide it, digitsite/proxies.py).
        self.client_address = client_address(self.scope)
        self.ticket, refusal = await connection_limits.admit(self.client_address,
                                                             self.session_key)
        await self.accept()
        if refusal is not None:
            await self.send_message(protocol.error("too_many_connections", refusal))
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.session = PlayerSession(self.scope["url_route"]["kwargs"]["code"], self)
        # A graceful stop finishes the rounds of the process's players.
        upkeep.live_sessions.add(self.session)
        await self.session.opened()

    async def receive(self, text_data=None, bytes_data=None):
        session = getattr(self, "session", None)
        if session is not None:  # none for a socket refused in connect
            await session.receive(text_data, bytes_data)

    async def disconnect(self, code):
        ticket, self.ticket = getattr(self, "ticket", None), None
        if ticket is not None:
            await connection_limits.release(ticket)
        session = getattr(self, "session", None)
        if session is not None:
            await session.closed_by_client()
        for group in (self.group, self.teacher_group):
            if group is not None:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message):
        # Channels' own dispatch first awaits aclose_old_connections(): a hop
        # to the thread Django and Channels share for thread-sensitive work,
        # and back, for every frame received and every broadcast heard (7 for
        # each live drawing in a room of 8). It closes the connections of
        # that thread only, which the game does not use: its database work
        # runs in its own pool (digitsite.game.database.db), through
        # database_sync_to_async, which closes old connections before and
        # after each call in the thread that holds them; and Django refuses
        # database work on the event loop. The hop was pure handover cost:
        # 7% of the interpreter's time in a profile of 32 players. Closing
        # the socket still runs Channels' own, in websocket_disconnect.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # Channel layer events.

    async def game_event(self, event):
        # `text`: the message as its frame, encoded once by the sender for the
        # whole room (absent from broadcasts of upkeep, which are rare).
        await self.session.on_event(event["message"], text=event.get("text"))

    async def game_teacher(self, event):
        await self.session.feed.from_student(event["message"])

    async def game_replaced(self, event):
        await self.session.replaced_elsewhere(same_browser=event.get("same_browser", False))

    async def game_kicked(self, event):
        await self.session.kicked_by_host()

    # The transport the session uses.

    async def send_message(self, message, text=None):
        await self.send(text_data=protocol.encode(message) if text is None else text)

    async def broadcast(self, message):
        # Encoded here, once, rather than by each of the room's sockets: with
        # live canvases a room of 8 hears 21 drawings a second, and encoding
        # each for every member made the JSON encoder a large share of a
        # process's CPU at 200 players (bench/bench_load.py).
        await self.channel_layer.group_send(self.group, {
            "type": "game.event", "message": message, "text": protocol.encode(message)})

    async def subscribe(self, code):
        self.group = room_group(code)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def subscribe_teacher(self, code):
        self.teacher_group = teacher_group(code)
        await self.channel_layer.group_add(self.teacher_group, self.channel_name)

    async def send_to_teacher(self, message):
        await self.channel_layer.group_send(teacher_group(self.session.code),
                                            {"type": "game.teacher", "message": message})

    async def notify_replaced(self, channel_name, same_browser=False):
        await self.channel_layer.send(channel_name, {"type": "game.replaced",
                                                     "same_browser": same_browser})

    async def notify_kicked(self, channel_name):
        await self.channel_layer.send(channel_name, {"type": "game.kicked"})

    async def close_socket(self, code):
        await self.close(code=code)
