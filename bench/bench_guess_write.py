"""Guess write benchmark: what one scored drawing's write costs the game's
process, as Django's ORM statement and as the game's own SQL
(digitsite.game.guess_update).

A playing room of 8 whose players each have their round's progress row; one
write is a player's drawing of 150 points and its 28x28 input written as the
latest of the round (guesses.record_guess's common case, with the pen down:
a pen-up drawing adds one condition and the round's best, the same for
both). The two ways are timed in turns in one run, each first in every
other turn, on SQLite (a scratch file, as the embedded setup) and, with
--postgres, on a fresh PostgreSQL database. The figure is the process's CPU
time a write (time.process_time: what the server pays; a PostgreSQL
server's own work is in another process), the median of --turns turns of
--repeats writes, with the forward pass at batch 1 as the yardstick.

    python bench/bench_guess_write.py [--postgres] [--repeats 500] [--turns 5]
"""

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import forward_yardstick, machine_summary, setup_django, write_results  # noqa: E402


def playing_room():
    """A room of 8 playing its first round, each player with a first drawing
    written; the arguments of a write for each of them."""
    from digitsite.game import clock, guess_update, guesses, rooms, rounds, seats
    from digitsite.game.models import Room
    from recognizer.inference import Prediction

    room = rooms.create_room("Host", rounds=2, seconds=300, max_players=8)
    players = [seats.join(room.code, name=f"P{i}", channel_name=f"chan-{i}") for i in range(8)]
    rounds.start_game(room.code, players[0].seat.player_id)
    room = Room.objects.get(pk=room.pk)
    drawing = {"width": 400.0, "height": 400.0,
               "strokes": [[[200 + i * 1.3, 150 + (i % 40) * 2.1, i * 16.0] for i in range(150)]]}
    probabilities = [0.05] * 10
    probabilities[room.target] = 0.55
    prediction = Prediction(room.target, probabilities, "v1")
    writes = []
    for player in players:
        accepted, _ = guesses.record_guess(
            room.code, player.seat.player_id, room.game_id, 1, drawing=drawing,
            input_bytes=bytes(784), prediction=prediction)
        assert accepted
        writes.append({
            "code": room.code, "player_id": player.seat.player_id, "game_id": room.game_id,
            "round_number": 1, "target": room.target,
            "ends_after": clock.now() - rounds.GRACE, "below": None,
            "values": guess_update.plain_values(prediction, 0.55, drawing, bytes(784)),
            "drawings": 5, "best": None,
        })
    return writes


def cpu_per_write_us(update, writes, repeats):
    start = time.process_time()
    for index in range(repeats):
        assert update(**writes[index % len(writes)]) == 1
    return (time.process_time() - start) / repeats * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true",
                        help="on a fresh PostgreSQL database ($BENCH_POSTGRES_URL)")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.postgres:
            from tests.services import fresh_postgres_database

            os.environ["DATABASE_URL"] = stack.enter_context(
                fresh_postgres_database(args.postgres_url, prefix="digitsite_bench"))
        setup_django(tempfile.mkdtemp(prefix="bench-var-"))
        from django.db import connection

        from digitsite.game import guess_update

        writes = playing_room()
        ways = {"orm": guess_update.update_with_orm, "game_sql": guess_update.update_latest}
        yardstick_before = forward_yardstick()
        runs = {name: [] for name in ways}
        for turn in range(args.turns):
            # Each goes first in every other turn.
            for name, update in list(ways.items())[::1 if turn % 2 == 0 else -1]:
                runs[name].append(cpu_per_write_us(update, writes, args.repeats))
        yardstick_after = forward_yardstick()
        medians = {name: round(statistics.median(values), 1) for name, values in runs.items()}
        vendor = connection.vendor
        connection.close()
    ratio = round(medians["orm"] / medians["game_sql"], 2)
    print(f"{vendor}: CPU a write: ORM {medians['orm']:.1f} us, the game's SQL "
          f"{medians['game_sql']:.1f} us ({ratio}x)")
    print(f"forward pass at batch 1: {yardstick_before:.3f} / {yardstick_after:.3f} ms")
    path = write_results(args.output or f"guess_write_{vendor}", {
        "benchmark": "guess_write", "database": vendor, "repeats": args.repeats,
        "turns": args.turns, "cpu_us_per_write": medians, "runs_us": runs,
        "orm_over_game_sql": ratio, "forward_batch1_ms_before": round(yardstick_before, 3),
        "forward_batch1_ms_after": round(yardstick_after, 3), "machine": machine_summary()})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
