"""The draw-the-digit game app (label `game`): rooms, seats, rounds and the
WebSocket that plays them.

The modules, from the outside in:
- `views`, `urls`, templates: the pages (home and lobby, rooms, practice);
- `consumers`, `routing`: the WebSocket, which only carries messages between
  the socket and a `session`;
- `session`: one player's connection as plain asyncio code;
- `rooms`: the state transitions in the database;
- `rules`, `names`, `codes`, `clock`: pure rules without any I/O;
- `upkeep`: the per-process task that ends rounds whose players went quiet;
- `models`, `migrations`, `admin`, `player_data`, `retention`: the data;
- `client`, `simulation`: the protocol as a program speaks it, and simulated
  players playing whole games with it (for benchmarks and tests; the site
  does not use them).

The package itself imports nothing, so Django can load the app before its
models are ready.
"""
