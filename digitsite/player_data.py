"""Everything stored about one player, found and deleted together.

A player is known by the display name they played under or by a player id.
The id belongs to one seat (a player gets a new one in every room they join);
collected drawings keep the id and the name of the seat that drew them, and
outlive the seat and its room. So a player's data is:

- their seats (matched by id or name) and the round progress of those seats
  (their drawings while a round runs, their points);
- the collected drawings with that player id or name (and the relabelling
  history of those drawings), approved training data included;
- the title of rooms they created, which is the creator's display name.

Names are matched exactly (after trimming): two people may share one, which
is why the admin shows the counts, the rooms and the names found before
anything is deleted. Sessions holding a display name are not searched (they
are signed blobs); they expire and `purge_old_data` deletes them.
"""

from dataclasses import dataclass, field

from django.db import transaction

from digitsite.models import Room, RoundProgress, Seat

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


def delete(by, value):
    """Delete one player's data; returns the counts of what was deleted."""
    from digitsite.game import rooms as game_rooms

    with transaction.atomic():
        data = find(by, value)
        hosted = list(Room.objects.filter(
            host_player__in=data.seats.values("player_id")).values_list("pk", flat=True))
        seat_ids = list(data.seats.values_list("pk", flat=True))
        deleted = dict(data.counts)
        # Label changes go with their drawings, progress with its seats.
        data.drawings.delete()
        data.titled_rooms.update(title="")
        Seat.objects.filter(pk__in=seat_ids).delete()
        # A room whose host was deleted hands the role on at once, so its
        # remaining players can still start a game.
        for room in Room.objects.select_for_update().filter(pk__in=hosted):
            game_rooms._ensure_host(room)
    return deleted
