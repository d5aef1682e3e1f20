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
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    add_database_arguments,
    forward_yardstick,
    machine_summary,
    playing_room,
    setup_django_on_database,
    write_results,
)


def writes_of_a_playing_room():
    """The arguments of a write for each player of a room of 8 playing its
    first round, each with a first drawing written (common.playing_room)."""
    from digitsite.game import clock, guess_update, rounds

    room, seats, drawing, prediction = playing_room()
    return [{
        "code": room.code, "player_id": seat.player_id, "game_id": room.game_id,
        "round_number": 1, "target": room.target,
        "ends_after": clock.now() - rounds.GRACE, "below": None,
        "values": guess_update.plain_values(prediction, 0.55, drawing, bytes(784)),
        "drawings": 5, "best": None,
    } for seat in seats]


def cpu_per_write_us(update, writes, repeats):
    start = time.process_time()
    for index in range(repeats):
        assert update(**writes[index % len(writes)]) == 1
    return (time.process_time() - start) / repeats * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        setup_django_on_database(stack, args)
        from django.db import connection

        from digitsite.game import guess_update

        writes = writes_of_a_playing_room()
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
