"""Lobby benchmark: the open-rooms query on a site with many old rooms.

Fills a scratch SQLite database with `--rooms` rooms made over the last 30
days (two players each, long gone) plus `--live` rooms with someone connected,
then reports medians side by side from one run:
- before: the lobby's earlier query (every room joined to its seats, grouped
  and sorted, no notion of a closed room), on the rooms as they are;
- the sweep that closes idle rooms: over the backlog, batch by batch (each
  batch one short write), then a steady-state run with nothing to close;
- after: the lobby's query now (open, listed rooms through a partial index,
  per-room seat counts, stops at its limit).

    python bench/bench_lobby.py [--rooms 200000] [--live 20] [--repeats 20]
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine_summary, median_ms, setup_django, timed, write_results  # noqa: E402


def fill(rooms_count, live_count, rng):
    from django.db import connection, transaction
    from django.utils import timezone

    from digitsite.game.codes import generate_code
    from digitsite.game.models import Room, Seat

    now = timezone.now()
    codes = set()
    while len(codes) < rooms_count + live_count:
        codes.add(generate_code())
    codes = sorted(codes)
    batch = 5000
    with transaction.atomic():
        for start in range(0, rooms_count + live_count, batch):
            rows, live_flags, times = [], [], []
            for index in range(start, min(start + batch, rooms_count + live_count)):
                live = index >= rooms_count
                live_flags.append(live)
                created = now - (timedelta(minutes=rng.uniform(0, 5)) if live
                                 else timedelta(days=rng.uniform(0.01, 30)))
                times.append(created)
                rows.append(Room(code=codes[index], title=f"Room {index}", rounds=5,
                                 round_seconds=20, results_seconds=5, max_players=8,
                                 target_confidence=0.9, created=created,
                                 state=Room.State.FINISHED if not live else Room.State.LOBBY))
            made = Room.objects.bulk_create(rows)
            # bulk_create stamps auto_now_add fields with "now" (on these very
            # objects): set the intended times afterwards.
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {Room._meta.db_table} SET created = %s WHERE id = %s",
                    [(created, room.pk) for room, created in zip(made, times, strict=True)])
            for room, created in zip(made, times, strict=True):
                room.created = created
            seats = []
            for room, live in zip(made, live_flags, strict=True):
                for n in range(2):
                    seen = now if live else room.created + timedelta(minutes=rng.uniform(1, 9))
                    seats.append(Seat(room=room, player_id=f"{room.pk:x}p{n}",
                                      token_hash=f"{room.pk:x}t{n}", name=f"P{n}",
                                      connected=live, gone=not live, last_seen=seen,
                                      disconnected_at=None if live else seen))
            Seat.objects.bulk_create(seats)


def old_lobby_query(limit=50):
    """The lobby's query before rooms could be closed or private (for "before")."""
    from django.db.models import Count, F, Q
    from django.utils import timezone

    from digitsite.game.lobby import NEW_ROOM_LISTED
    from digitsite.game.models import Room

    fresh = timezone.now() - NEW_ROOM_LISTED
    return list(
        Room.objects.filter(solo=False)
        .annotate(
            players=Count("seats", filter=Q(seats__gone=False)),
            online=Count("seats", filter=Q(seats__gone=False, seats__connected=True)),
        )
        .filter(Q(online__gt=0) | Q(created__gte=fresh, players=0))
        .filter(players__lt=F("max_players"))
        .order_by("-created")[:limit]
    )


def fill_and_analyze(args):
    """Fill the database, then let it gather statistics; the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    fill(args.rooms, args.live, random.Random(1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def sweep_backlog():
    """Close the backlog of idle rooms, one batch (one short write) at a time:
    each batch's seconds."""
    from digitsite.game import rooms

    batches = []
    while True:
        begun = time.perf_counter()
        closed = rooms.close_idle_rooms(budget_seconds=0)
        batches.append(time.perf_counter() - begun)
        if not closed:
            break
    return batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=200_000)
    parser.add_argument("--live", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output", default="lobby")
    args = parser.parse_args()

    setup_django()
    from django.db import connection

    from digitsite.game import lobby, rooms

    fill_seconds = fill_and_analyze(args)
    before = timed(old_lobby_query, args.repeats)
    listed_before = len(old_lobby_query())
    batches = sweep_backlog()
    sweep_steady = timed(rooms.close_idle_rooms, max(3, args.repeats // 4))

    lobby._last_sweep[0] = float("inf")  # time the query alone; the sweep is above
    after = timed(lobby.open_rooms, args.repeats)
    listed_after = len(lobby.open_rooms())
    plan = lobby.lobby_query().explain()

    results = {
        "rooms": args.rooms + args.live,
        "live_rooms": args.live,
        "database": connection.vendor,
        "fill_seconds": round(fill_seconds, 1),
        "before_median_ms": round(median_ms(before), 2),
        "before_rooms_listed": listed_before,
        "sweep_backlog_total_ms": round(sum(batches) * 1000, 1),
        "sweep_backlog_batches": len(batches),
        "sweep_batch_median_ms": round(median_ms(batches), 1),
        "sweep_batch_max_ms": round(max(batches) * 1000, 1),
        "sweep_steady_median_ms": round(median_ms(sweep_steady), 2),
        "after_median_ms": round(median_ms(after), 2),
        "after_p90_ms": round(statistics.quantiles(after, n=10)[-1] * 1000, 2),
        "after_rooms_listed": listed_after,
        "speedup": round(median_ms(before) / median_ms(after), 1),
        "after_plan": plan,
        "machine": machine_summary(),
    }
    for key, value in results.items():
        if key not in ("machine", "after_plan"):
            print(f"{key:>24}: {value}")
    print(plan)
    print("written to", write_results(args.output, results))


if __name__ == "__main__":
    main()
