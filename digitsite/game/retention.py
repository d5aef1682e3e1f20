"""Data retention: what is deleted once nobody has used it for a while.

Rooms, their seats (display names, tokens' hashes) and their round progress
(drawings while a round runs, points afterwards) are only needed while people
play. A room nobody has used for DATA_RETENTION_DAYS (default 30) is deleted
with all of them. "Used" is the latest of: the room's creation, its last
round's start, and any seat's join, heartbeat or disconnect; a connected
player renews their seat every few seconds, so a room in use is never old.
Expired Django sessions (which hold a visitor's display name) go too, and
the teach page's taught copies past their TEACH_COPY_HOURS (recognizer.taught;
saving a copy also deletes the expired ones, so this only catches those of a
site where nobody has taught since).

Collected drawings (recognizer.Drawing) are training data: they are kept,
with the player's name and id, until staff delete them, or every piece of
data of their player at once (digitsite.game.player_data).

Deleting runs in batches of BATCH_ROOMS rooms, one short transaction each, so
a purge of many rooms never holds the database's write lock for long
(SQLite has one lock for the whole file).
"""

from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from digitsite.game.models import Room, RoundProgress, Seat

# 200 rooms hold at most 1,600 seats and their progress: about 0.1 s of
# deleting on SQLite here, short enough for a game's writes to wait for.
BATCH_ROOMS = 200


@dataclass
class PurgeCounts:
    rooms: int = 0
    seats: int = 0
    round_progress: int = 0
    sessions: int | None = 0  # None: the session engine cannot count them
    rounds_closed: int = 0
    taught_copies: int = 0


def cutoff(now=None, days=None):
    """The moment before which unused data is deleted."""
    days = settings.DATA_RETENTION_DAYS if days is None else days
    return (now or timezone.now()) - timedelta(days=days)


def old_rooms(before):
    """Rooms whose last use was before `before`: the ones retention deletes."""
    # Each term falls back to the creation time: GREATEST of anything with a
    # NULL is NULL on SQLite (PostgreSQL skips NULLs).
    created = "created"
    last_used = Greatest(
        created,
        Coalesce("round_started_at", created),
        Coalesce(Max("seats__joined"), created),
        Coalesce(Max("seats__last_seen"), created),
        Coalesce(Max("seats__disconnected_at"), created),
    )
    # `created` is indexed: only rooms older than the cutoff are looked at.
    return (Room.objects.filter(created__lt=before)
            .annotate(last_used=last_used).filter(last_used__lt=before))


def purge(*, now=None, days=None, dry_run=False):
    """Delete what retention allows (or, with `dry_run`, only count it)."""
    from digitsite.game import rounds

    now = now or timezone.now()
    before = cutoff(now, days)
    counts = PurgeCounts()
    ids = list(old_rooms(before).values_list("pk", flat=True).order_by("pk"))
    for start in range(0, len(ids), BATCH_ROOMS):
        batch = ids[start:start + BATCH_ROOMS]
        if dry_run:
            counts.rooms += len(batch)
            counts.seats += Seat.objects.filter(room_id__in=batch).count()
            counts.round_progress += RoundProgress.objects.filter(room_id__in=batch).count()
            continue
        # A round left open (its process stopped and nobody came back) is
        # ended first, so its drawings are stored like any round's.
        for room in Room.objects.filter(pk__in=batch, state=Room.State.PLAYING):
            if rounds.end_round(room.code, room.game_id, room.round):
                counts.rounds_closed += 1
        with transaction.atomic():
            # The rooms locked first, in key order, as the game locks a room
            # before its rows (digitsite.game.rooms.lock_room): a delete that
            # reached the rounds' rows first could deadlock with a round's end.
            list(Room.objects.select_for_update().filter(pk__in=batch).order_by("pk")
                 .values_list("pk", flat=True))
            # Re-checked inside the transaction: a player who came back since
            # the list was made keeps the room.
            still_old = old_rooms(before).filter(pk__in=batch).values_list("pk", flat=True)
            _, by_model = Room.objects.filter(pk__in=list(still_old)).delete()
        counts.rooms += by_model.get(Room._meta.label, 0)
        counts.seats += by_model.get(Seat._meta.label, 0)
        counts.round_progress += by_model.get(RoundProgress._meta.label, 0)
    counts.sessions = _purge_sessions(now, dry_run)
    counts.taught_copies = _purge_taught_copies(now, dry_run)
    return counts


def _purge_taught_copies(now, dry_run):
    from recognizer import taught
    from recognizer.models import TaughtCopy

    if dry_run:
        return TaughtCopy.objects.filter(expires_at__lte=now).count()
    return taught.purge_expired(now)


def _purge_sessions(now, dry_run):
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if issubclass(store, DatabaseSessionStore):
        expired = store.get_model_class().objects.filter(expire_date__lt=now)
        if dry_run:
            return expired.count()
        return expired.delete()[0]
    # Cache and cookie sessions expire by themselves (or cannot be listed).
    if not dry_run:
        try:
            store.clear_expired()
        except NotImplementedError:
            pass
    return None
