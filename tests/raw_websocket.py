"""A bare WebSocket client that reads only when asked, for tests of misbehaving clients.

The `websockets` library (digitsite.game.client) reads the socket in the
background and answers pings, as a well-behaved client does. The tests of
the server's bounds need a client that does not: one that sends frames as
fast as the socket takes them, or never reads what the server sends. This
one speaks just enough of RFC 6455 for that: the handshake, unfragmented text
frames out (masked with a zero key, which is valid and lets a 60 KB frame go
without a Python loop over its bytes) and frames in.
"""

import asyncio
import base64
import json
import os
import socket
import struct


class RawWebSocket:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.frames_sent = 0
        self.bytes_sent = 0

    @classmethod
    async def open(cls, port, path, *, origin, local_address="127.0.0.1",
                   receive_buffer=None):
        """Connect from `local_address` (any 127.x.y.z is this machine, and
        counts as another client address). `receive_buffer`: the socket's
        SO_RCVBUF, to make a client that does not read fill up quickly."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.bind((local_address, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        # A small reader limit: asyncio stops reading the socket once twice
        # this waits unread, so not reading leaves the bytes to the kernel.
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Origin: {origin}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await reader.read(1)
            if not chunk:
                raise ConnectionError(f"the server closed during the handshake: {head!r}")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"handshake refused: {head!r}")
        return cls(reader, writer)

    async def send_text(self, text):
        payload = text.encode("utf-8")
        length = len(payload)
        if length < 126:
            header = bytes([0x81, 0x80 | length])
        elif length < 65536:
            header = bytes([0x81, 0x80 | 126]) + struct.pack("!H", length)
        else:
            header = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", length)
        self.writer.write(header + b"\0\0\0\0" + payload)
        await self.writer.drain()  # waits while the socket takes nothing more
        self.frames_sent += 1
        self.bytes_sent += length

    async def send_json(self, message):
        await self.send_text(json.dumps(message))

    async def receive(self):
        """The next frame: ("text", str) or ("close", code); ("eof", None)
        when the connection ended without a close frame."""
        try:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return "eof", None
        opcode = first & 0x0F
        if opcode == 0x8:
            return "close", struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        if opcode == 0x1:
            return "text", payload.decode("utf-8")
        return "other", payload

    async def close_code(self):
        """Read until the connection ends: the server's close code, or None."""
        while True:
            kind, value = await self.receive()
            if kind == "close":
                return value
            if kind == "eof":
                return None

    def abort(self):
        self.writer.transport.abort()
