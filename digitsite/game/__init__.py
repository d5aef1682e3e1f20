"""The draw-the-digit game app (label `game`): rooms, seats, rounds and the
WebSocket that plays them.

The modules, from the outside in:
- `views`, `urls`, templates: the pages (home and lobby, rooms, practice);
- `consumers`, `routing`: the WebSocket, which only carries messages between
  the socket and a `session`;
- `protocol`: every message of the WebSocket protocol, both ways, declared
  once (docs/protocol.md explains it);
- `session`: one player's connection as plain asyncio code, with its
  `transport`, `message_rate`, `room_view`, `scoring` of drawings and
  `timers`;
- the state transitions in the database, each locking its room: `rooms`
  (a room itself: create, find, lock, settings, closing idle ones), `seats`
  (joining, leaving, removals, heartbeats), `rounds` (games, rounds and their
  deadlines), `guesses` (drawings and `done`), `finishing` (a player's round
  ends: points, the drawing kept); and the reads `snapshots` (the messages
  that show a room) and `lobby` (the open rooms);
- `database`: where that work runs (a thread pool of its own) and how a
  write outlasts a busy database;
- `rules`, `names`, `codes`, `clock`: pure rules without any I/O;
- `upkeep`: the per-process task that ends rounds whose players went quiet;
- `models`, `migrations`, `admin`, `player_data`, `retention`: the data;
- `client`, `simulation`: the protocol as a program speaks it, and simulated
  players playing whole games with it (for benchmarks and tests; the site
  does not use them).

The package itself imports nothing, so Django can load the app before its
models are ready.
"""
