"""Everything stored about one player, found and deleted together.

A player is known by the display name they played under or by a player id.
The id belongs to one seat (a player gets a new one in every room they join);
collected drawings keep the id and the name of the seat that drew them, and
outlive the seat and its room. So a player's data is:

- their seats (matched by id or name) and the round progress of those seats
  (their drawings while a round runs, their points);
- the collected drawings with that player id or name (and the relabelling
  history of those drawings), approved training data included;
- the title of rooms they created, which is the creator's display name;
- what rooms keep about the clients that made them and the players their
  hosts removed: the creator's session hash (the seat's own session hash)
  and address, and the removed player's token hash, session hash and user id.

Names are matched exactly (after trimming): two people may share one, which
is why the admin shows the counts, the rooms and the names found before
anything is deleted. Sessions holding a display name are not searched (they
are signed blobs); they expire and `purge_old_data` deletes them.
"""

from dataclasses import dataclass, field

from django.db import transaction

from digitsite.game.models import Room, RoundProgress, Seat

BY_ID = "id"
BY_NAME = "name"


class PlayerDataError(ValueError):
    pass


@dataclass
class PlayerData:
    by: str
    value: str
    seats: object = None  # querysets
    round_progress: object = None
    drawings: object = None
    label_changes: object = None
    titled_rooms: object = None
    counts: dict = field(default_factory=dict)
    rooms: list = field(default_factory=list)  # codes of the rooms they sat in
    names: list = field(default_factory=list)  # the names found (by id: the seat's)

    @property
    def empty(self):
        return not any(self.counts.values())


def find(by, value):
    """The querysets of one player's data, with their counts."""
    from recognizer.models import Drawing, DrawingLabelChange

    value = value.strip() if isinstance(value, str) else ""
    if not value:
        raise PlayerDataError("give a player id or a name")
    if len(value) > 64:
        raise PlayerDataError("player ids and names are at most 64 characters")
    if by == BY_ID:
        seats = Seat.objects.filter(player_id=value)
        drawings = Drawing.objects.filter(player_id=value)
    elif by == BY_NAME:
        seats = Seat.objects.filter(name=value)
        drawings = Drawing.objects.filter(player_name=value)
    else:
        raise PlayerDataError("search by 'id' or 'name'")
    seat_rows = list(seats.values_list("pk", "name", "room__code", "room__title"))
    if by == BY_NAME:
        titled = Room.objects.filter(title=value)
    else:
        # The rooms this seat sat in that carry its name as their title.
        titled = Room.objects.filter(
            pk__in=seats.values("room_id"), title__in=[name for _, name, _, _ in seat_rows])
    data = PlayerData(
        by=by, value=value,
        seats=seats,
        round_progress=RoundProgress.objects.filter(seat__in=seats),
        drawings=drawings,
        label_changes=DrawingLabelChange.objects.filter(drawing__in=drawings),
        titled_rooms=titled,
    )
    data.counts = {
        "seats": len(seat_rows),
        "round_progress": data.round_progress.count(),
        "drawings": drawings.count(),
        "label_changes": data.label_changes.count(),
        "room_titles": titled.count(),
    }
    data.rooms = sorted({code for _, _, code, _ in seat_rows})
    names = {name for _, name, _, _ in seat_rows}
    names |= set(drawings.values_list("player_name", flat=True).distinct()[:50])
    data.names = sorted(names)
    return data


def _without_deleted_seats(entries, token_hashes, session_hashes, user_ids):
    """A room's kicked list less the entries of the deleted seats: a kicked
    player's token hash, session hash and user id are that player's data too."""
    return [entry for entry in entries
            if entry.get("token") not in token_hashes
            and entry.get("session") not in session_hashes
            and entry.get("user") not in user_ids]


def delete(by, value):
    """Delete one player's data; returns the counts of what was deleted.

    Locks first every room the player's seats are in, in primary-key order
    (the order the game locks rooms in, one at a time), then deletes: a round
    ending meanwhile (rounds.end_round, which locks its room before storing
    the players' drawings) either finished before, and its drawings are
    deleted here, or waits and finds the seat gone. Deleting the drawings
    first let PostgreSQL keep one stored after the DELETE, and locking rooms
    after deleting seats took locks in the opposite order to the game's.
    """
    from digitsite.game import seats

    with transaction.atomic():
        data = find(by, value)
        seat_rows = list(data.seats.values_list(
            "pk", "player_id", "token_hash", "session_hash", "user_id", "room_id"))
        seat_ids = [row[0] for row in seat_rows]
        player_ids = {row[1] for row in seat_rows}
        tokens = {row[2] for row in seat_rows if row[2]}
        sessions = {row[3] for row in seat_rows if row[3]}
        users = {row[4] for row in seat_rows if row[4] is not None}
        # Every room changed here: those the seats are in, those the player
        # created (the creator's session hash is the seat's: both are
        # hash_session of one key) and those whose host removed the player
        # (any room, not only those with a seat still kept). Rooms with a
        # kicked list are few (a host removes a player now and then), so they
        # are read whole rather than searched inside their JSON, which SQLite
        # and PostgreSQL do differently.
        room_ids = {row[5] for row in seat_rows}
        if sessions:
            room_ids |= set(Room.objects.filter(creator_session__in=sessions)
                            .values_list("pk", flat=True))
        if tokens or sessions or users:
            room_ids |= {pk for pk, entries in Room.objects.exclude(kicked=[])
                         .values_list("pk", "kicked").iterator()
                         if _without_deleted_seats(entries or [], tokens, sessions, users)
                         != (entries or [])}
        locked = list(Room.objects.select_for_update().filter(pk__in=room_ids).order_by("pk"))
        deleted = dict(data.counts)
        # Label changes go with their drawings, progress with its seats.
        data.drawings.delete()
        data.titled_rooms.update(title="")
        Seat.objects.filter(pk__in=seat_ids).delete()
        for room in locked:
            changes = {}
            if sessions and room.creator_session in sessions:
                # The address was kept beside the session hash for the same
                # per-client limit; without it, it only says who made the room.
                changes.update(creator_session="", creator_ip=None)
            kept = _without_deleted_seats(room.kicked or [], tokens, sessions, users)
            if kept != (room.kicked or []):
                changes["kicked"] = kept
            if changes:
                Room.objects.filter(pk=room.pk).update(**changes)
            # A room whose host was deleted hands the role on at once, so its
            # remaining players can still start a game.
            if room.host_player in player_ids:
                seats.ensure_host(room)
    return deleted
