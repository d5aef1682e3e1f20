"""The lobby: the open rooms a visitor can join, listed newest first.

The home page polls it every 4 s for every visitor, so it is read through
the partial index of open rooms and closes idle rooms now and then as it is
read (digitsite.game.rooms), keeping the rows it reads to the rooms in use.
"""

import time
from datetime import timedelta

from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from digitsite.game import clock
from digitsite.game.models import Room, Seat
from digitsite.game.rooms import close_idle_rooms

# A room nobody has connected to yet is listed for this long after creation.
NEW_ROOM_LISTED = timedelta(minutes=10)
# The lobby closes idle rooms at most this often per process: the sweep reads
# the open rooms, cheap but not free, and the lobby is polled every 4 s by
# every visitor of the home page.
SWEEP_EVERY_SECONDS = 30.0
# The time the lobby's sweep may take.
SWEEP_BUDGET_SECONDS = 0.2

_last_sweep = [float("-inf")]


def _sweep_now_and_then():
    stamp = time.monotonic()
    if stamp - _last_sweep[0] >= SWEEP_EVERY_SECONDS:
        _last_sweep[0] = stamp
        close_idle_rooms(budget_seconds=SWEEP_BUDGET_SECONDS)


MAX_LOBBY_ROOMS = 100


def lobby_query(limit=50):
    """The lobby's query (see open_rooms), at most MAX_LOBBY_ROOMS rows."""
    limit = max(1, min(int(limit), MAX_LOBBY_ROOMS))
    fresh = clock.now() - NEW_ROOM_LISTED
    # Counted per room in correlated subqueries rather than one JOIN and GROUP
    # BY: grouping made the database count the seats of every open room and
    # sort them all before the LIMIT; this way it walks room_open_idx newest
    # first and stops once `limit` rooms qualify.
    seats = Seat.objects.filter(room=OuterRef("pk"), gone=False)
    return (
        Room.objects.filter(closed_at__isnull=True, solo=False, private=False)
        .annotate(
            players=_count(seats),
            online=_count(seats.filter(connected=True)),
        )
        .filter(Q(online__gt=0) | Q(created__gte=fresh, players=0))
        .filter(players__lt=F("max_players"))
        .order_by("-created")[:limit]
    )


def _count(queryset):
    """COUNT(*) of `queryset` as a scalar subquery (0, not NULL, when empty)."""
    return Coalesce(Subquery(queryset.order_by().values("room").annotate(n=Count("pk"))
                             .values("n"), output_field=IntegerField()), 0)


def open_rooms(limit=50):
    """Rooms a visitor can join: open, listed, not solo, someone there (or just
    created), a seat free. Newest first, at most `limit` (capped at MAX_LOBBY_ROOMS).

    The rooms are read newest first through the partial index of open rooms
    (room_open_idx), and idle rooms are closed as the lobby is polled, so the
    rows read follow the rooms in use, not every room ever made.
    """
    _sweep_now_and_then()
    rooms = lobby_query(limit)
    return [
        {"code": room.code, "title": room.title, "players": room.players,
         "max_players": room.max_players, "state": room.state}
        for room in rooms
    ]
