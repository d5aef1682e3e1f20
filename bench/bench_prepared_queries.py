"""Prepared queries benchmark: what a player's `done` and its statements cost
the game's process, compiled once (recognizer/prepared_queries.py) and
compiled by the ORM on every call, as before.

A playing room of 8 whose players each have their round's progress row with
a drawing. One `done` is guesses.finish_player for one player (the room
locked, the seat and the row read, the round finished, the drawing stored,
the room asked whether everyone finished); seven of the eight finish, then
the transaction is rolled back, so every turn finds the same rows. The ORM's
way is the same code with every prepared query sent the ORM's way (as a
query that cannot be prepared goes). Each statement is also timed alone. The ways
are timed in turns in one run, each first in every other turn, on SQLite (a
scratch file, as the embedded setup) and, with --postgres, on a fresh
PostgreSQL database. The figures are the process's CPU time
(time.process_time), medians of --turns turns, with the forward pass at
batch 1 as the yardstick.

    python bench/bench_prepared_queries.py [--postgres] [--repeats 40] [--turns 7]
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
    in_turns,
    playing_room,
    setup_django_on_database,
    write_with_yardsticks,
)

PLAYERS = 8


@contextlib.contextmanager
def orm_way(enabled):
    """Every prepared query goes the ORM's way while `enabled`."""
    from recognizer.prepared_queries import PreparedQuery

    if not enabled:
        yield
        return
    plan = PreparedQuery._plan
    PreparedQuery._plan = lambda self, *args: None
    try:
        yield
    finally:
        PreparedQuery._plan = plan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser)
    parser.add_argument("--repeats", type=int, default=40, help="rooms of 7 `done`s a turn")
    parser.add_argument("--reads", type=int, default=500, help="reads a turn")
    parser.add_argument("--turns", type=int, default=7)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        setup_django_on_database(stack, args)
        from django.db import connection, transaction

        from digitsite.game import finishing, guesses, rooms, rounds, snapshots
        from recognizer.collection import store

        room, seats, _, _ = playing_room(PLAYERS)
        yardstick_before = forward_yardstick()

        def dones(orm):
            with orm_way(orm):
                start = time.process_time()
                for _ in range(args.repeats):
                    with transaction.atomic():
                        for seat in seats[1:]:
                            guesses.finish_player(room.code, seat.player_id, room.game_id, 1,
                                                  "done")
                        transaction.set_rollback(True)
                return (time.process_time() - start) / (args.repeats * (PLAYERS - 1)) * 1e3

        seat = seats[1]
        reads = {
            "lock_room": lambda: rooms.lock_room(room.code),
            "seat": lambda: guesses._SEAT.first(player_id=seat.player_id, room_id=room.pk),
            "progress_locked": lambda: guesses._PROGRESS_LOCKED.first(
                seat_id=seat.pk, game_id=room.game_id, round_number=1),
            "all_finished": lambda: rounds.all_finished(room),
            "version_key": lambda: store.version_key_query().value(version="v1"),
            "count_change": lambda: snapshots.count_change(room),
            "add_points": lambda: finishing._ADD_POINTS.update(seat_id=seat.pk, points=0),
        }

        def read(argument):
            name, orm = argument
            with orm_way(orm), transaction.atomic():
                start = time.process_time()
                for _ in range(args.reads):
                    reads[name]()
                return (time.process_time() - start) / args.reads * 1e6

        _, done_runs = in_turns([("orm", True), ("prepared", False)], args.turns, dones)
        read_us = {}
        for name in reads:
            medians, _ = in_turns([("orm", (name, True)), ("prepared", (name, False))],
                                  args.turns, read)
            read_us[name] = medians
        vendor = connection.vendor
        connection.close()
    done_ms = {name: round(statistics.median(runs), 3) for name, runs in done_runs.items()}
    ratio = round(done_ms["orm"] / done_ms["prepared"], 2)
    print(f"{vendor}: CPU a `done`: ORM {done_ms['orm']:.2f} ms, prepared "
          f"{done_ms['prepared']:.2f} ms ({ratio}x)")
    for name, medians in read_us.items():
        print(f"  {name}: ORM {medians['orm']:.1f} us, prepared {medians['prepared']:.1f} us "
              f"({medians['orm'] / medians['prepared']:.1f}x)")
    write_with_yardsticks(args.output or f"prepared_queries_{vendor}", {
        "benchmark": "prepared_queries", "database": vendor, "repeats": args.repeats,
        "reads": args.reads, "turns": args.turns, "cpu_ms_per_done": done_ms,
        "runs_ms_per_done": done_runs, "orm_over_prepared_done": ratio,
        "cpu_us_per_read": read_us}, yardstick_before)


if __name__ == "__main__":
    main()
