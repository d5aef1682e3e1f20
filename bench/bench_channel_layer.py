"""Channel layer benchmark: what one live drawing's broadcast costs the
embedded layer, as the process holds more players.

A process holds --players channels in rooms of 8. One broadcast is what a
live drawing makes: a `group_send` of the game's message for a 150-point
drawing (simplified, with its encoded text) to its room, then each of the
room's other 7 members receiving it. Timed side by side in one
run, in turns, with the forward pass at batch 1 as the yardstick:

- before: Channels' own sweep, every receive and broadcast walking every
  channel and group membership for expired messages (the layer with
  sweep_seconds=0), and the broadcast deep-copied with copy.deepcopy;
- swept once a second, still deep-copied;
- now: swept once a second and copied through pickle
  (digitsite.channel_layer's defaults).

    python bench/bench_channel_layer.py [--players 32,200,1000] [--repeats 2000]
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import forward_yardstick, machine_summary, setup_django, write_results  # noqa: E402

ROOM_SIZE = 8


def live_drawing(player):
    """What the game's consumer broadcasts for a live drawing (GameConsumer.broadcast):
    the message, and its text encoded once, of a drawing simplified as the
    live feed sends it (digitsite.game.classroom.simplify_drawing)."""
    from digitsite.game import protocol
    from digitsite.game.classroom import simplify_drawing

    drawing = simplify_drawing({"width": 400, "height": 400, "strokes": [
        [[200 + i * 1.3, 150 + (i % 40) * 2.1, i * 16] for i in range(150)]]})
    message = protocol.message(
        "live_drawing", round=1, player=player, drawing=drawing, digit=3, probability=0.5,
        target_probability=0.25, reached=False)
    return {"type": "game.event", "message": message, "text": protocol.encode(message)}


async def broadcast_costs(layer, players, repeats):
    """Median microseconds of one broadcast and its 7 receptions."""
    rooms = []
    for room in range(max(1, players // ROOM_SIZE)):
        members = [await layer.new_channel() for _ in range(ROOM_SIZE)]
        for name in members:
            await layer.group_add(f"room.R{room}", name)
        rooms.append(members)
    durations = []
    for index in range(repeats):
        room = index % len(rooms)
        members = rooms[room]
        sender = index % ROOM_SIZE
        message = live_drawing(sender)
        start = time.perf_counter()
        await layer.group_send(f"room.R{room}", message)
        for position, name in enumerate(members):
            if position != sender:
                await layer.receive(name)
        durations.append(time.perf_counter() - start)
        # The sender's own copy, which the game passes over.
        await layer.receive(members[sender])
    return statistics.median(durations) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", default="32,200,1000")
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--output", default="channel_layer")
    args = parser.parse_args()
    setup_django()
    from copy import deepcopy

    from digitsite import channel_layer
    from digitsite.channel_layer import BroadcastOnceChannelLayer

    pickled = channel_layer.copy_message

    def cost(players, sweep_seconds, copy):
        channel_layer.copy_message = copy
        try:
            layer = BroadcastOnceChannelLayer(sweep_seconds=sweep_seconds)
            return asyncio.run(broadcast_costs(layer, players, args.repeats))
        finally:
            channel_layer.copy_message = pickled

    yardstick_before = forward_yardstick()
    rows = []
    for players in (int(p) for p in args.players.split(",")):
        runs = {"before": [], "swept_once_a_second": [], "now": []}
        for _ in range(args.turns):
            runs["before"].append(cost(players, 0, deepcopy))
            runs["swept_once_a_second"].append(cost(players, 1.0, deepcopy))
            runs["now"].append(cost(players, 1.0, pickled))
        row = {"players": players}
        row.update({f"{name}_us": round(statistics.median(values), 1)
                    for name, values in runs.items()})
        row["before_over_now"] = round(row["before_us"] / row["now_us"], 2)
        rows.append(row)
        print(f"{players:5d} players: one broadcast and its 7 receptions: before "
              f"{row['before_us']:7.1f} us, swept once a second "
              f"{row['swept_once_a_second_us']:7.1f} us, now (also copied through pickle) "
              f"{row['now_us']:7.1f} us ({row['before_over_now']}x)")
    yardstick_after = forward_yardstick()
    print(f"forward pass at batch 1: {yardstick_before:.3f} / {yardstick_after:.3f} ms")
    path = write_results(args.output, {
        "benchmark": "channel_layer", "repeats": args.repeats, "turns": args.turns,
        "rows": rows, "forward_batch1_ms_before": round(yardstick_before, 3),
        "forward_batch1_ms_after": round(yardstick_after, 3), "machine": machine_summary()})
    print(f"written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
