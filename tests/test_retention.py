"""Data retention: `manage.py purge_old_data` deletes rooms nobody has used for
the retention period (with their seats and round progress) and expired
sessions, keeps everything else, and a dry run changes nothing.

Ages are made by moving the stored times back, not by waiting."""

import io
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.utils import timezone

from digitsite.game import guesses, rooms, rounds
from digitsite.game.models import Room, RoundProgress, Seat
from recognizer.inference import Prediction
from recognizer.models import Drawing

DRAWING = {"width": 100.0, "height": 100.0, "strokes": [[[10.0, 10.0, 0.0], [90.0, 90.0, 50.0]]]}
INPUT = bytes(range(256)) * 3 + bytes(16)


def guess(target, p_target):
    probabilities = [(1.0 - p_target) / 9] * 10
    probabilities[target] = p_target
    return Prediction(target, probabilities, "v-test")


def play_one_round(code, names, *, end=True):
    """Seat `names`, start a game and have each draw; end the round unless not `end`."""
    from digitsite.game import seats as game_seats

    seats = [game_seats.join(code, name=name, channel_name=f"chan-{name}").seat for name in names]
    rounds.start_game(code, seats[0].player_id)
    room = Room.objects.get(code=code)
    for seat in seats:
        guesses.record_guess(code, seat.player_id, room.game_id, 1, drawing=DRAWING,
                             input_bytes=INPUT, prediction=guess(room.target, 0.4))
    if end:
        Room.objects.filter(code=code).update(ends_at=timezone.now() - timedelta(seconds=5))
        rounds.advance(code)
    return seats


def age(code, days):
    """Move every time of the room and its seats `days` back."""
    then = timezone.now() - timedelta(days=days)
    room = Room.objects.filter(code=code)
    room.update(created=then)
    room.exclude(round_started_at=None).update(round_started_at=then,
                                               ends_at=then + timedelta(seconds=20))
    seats = Seat.objects.filter(room__code=code)
    seats.update(joined=then)
    seats.exclude(last_seen=None).update(last_seen=then)
    seats.exclude(disconnected_at=None).update(disconnected_at=then)


@pytest.fixture
def data(db):
    """Rooms of every kind, 40 days old unless said otherwise, and sessions."""
    made = {}
    made["finished"] = rooms.create_room("Old game", rounds=1, seconds=20)
    play_one_round(made["finished"].code, ["Ada", "Bob"])
    made["empty"] = rooms.create_room("Nobody came")
    # A round left open: its process stopped and nobody came back.
    made["open"] = rooms.create_room("Left open", rounds=1, seconds=20)
    play_one_round(made["open"].code, ["Cy"], end=False)
    # Made long ago but played yesterday.
    made["reused"] = rooms.create_room("Still used", rounds=1, seconds=20)
    play_one_round(made["reused"].code, ["Di"])
    # Being played now.
    made["active"] = rooms.create_room("Playing now", rounds=1, seconds=20)
    play_one_round(made["active"].code, ["Ed", "Flo"], end=False)
    for key in ("finished", "empty", "open", "reused"):
        age(made[key].code, 40)
    Seat.objects.filter(room=made["reused"]).update(last_seen=timezone.now() - timedelta(days=1))
    Drawing.objects.update(created=timezone.now() - timedelta(days=400))

    expired, valid = SessionStore(), SessionStore()
    for store in (expired, valid):
        store["display_name"] = "Ada"
        store.create()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - timedelta(days=1))
    made["sessions"] = (expired.session_key, valid.session_key)
    return made


def table_rows():
    """Every row of every table, as comparable values."""
    return {
        model._meta.label: sorted(
            tuple(str(field.value_from_object(row)) for field in model._meta.concrete_fields)
            for row in model._base_manager.all())
        for model in apps.get_models(include_auto_created=True)
    }


def purge(*args):
    out = io.StringIO()
    call_command("purge_old_data", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_counts_and_changes_nothing(data):
    before = table_rows()
    output = purge("--dry-run")
    assert table_rows() == before
    # Old: the finished game (2 seats, 2 progress rows), the empty room, the
    # round left open (1 seat, 1 row).
    assert "would delete 3 rooms, 3 seats, 3 round progress rows" in output
    assert "Expired sessions: would delete 1." in output


def test_old_rooms_go_with_their_seats_and_progress_and_the_rest_stays(data):
    def active_rows():
        return (list(Room.objects.filter(pk=data["active"].pk).values()),
                list(Seat.objects.filter(room=data["active"]).values()),
                list(RoundProgress.objects.filter(room=data["active"]).values()))

    active_before = active_rows()
    kept_drawings = set(Drawing.objects.values_list("pk", flat=True))
    output = purge()
    assert "deleted 3 rooms, 3 seats, 3 round progress rows" in output
    assert "Closed 1 rounds left open first" in output
    assert set(Room.objects.values_list("code", flat=True)) == {
        data["reused"].code, data["active"].code}
    assert set(Seat.objects.values_list("name", flat=True)) == {"Di", "Ed", "Flo"}
    assert set(RoundProgress.objects.values_list("seat__name", flat=True)) == {"Di", "Ed", "Flo"}
    # The room being played is untouched: its round still runs, drawings in hand.
    assert active_rows() == active_before
    assert active_before[0][0]["state"] == Room.State.PLAYING
    assert [p["drawing"] for p in active_before[2]] == [DRAWING, DRAWING]
    # Training data stays, 400 days old or not; the open round's drawing was
    # stored before its room went.
    drawings = Drawing.objects.all()
    assert kept_drawings <= set(drawings.values_list("pk", flat=True))
    assert sorted(drawings.values_list("player_name", flat=True)) == [
        "Ada", "Bob", "Cy", "Di"]
    expired, valid = data["sessions"]
    assert list(Session.objects.values_list("session_key", flat=True)) == [valid]
    # Nothing more to do the next time.
    assert "deleted 0 rooms, 0 seats, 0 round progress rows" in purge()


def test_the_retention_comes_from_the_setting_or_the_option(data, settings):
    settings.DATA_RETENTION_DAYS = 50
    assert "would delete 0 rooms" in purge("--dry-run")
    assert "deleted 0 rooms" in purge()
    assert Room.objects.count() == 5
    assert "would delete 3 rooms" in purge("--dry-run", "--days", "39.5")
    for bad in ("0", "-1", "nan", "inf", "1e9", "thirty"):
        with pytest.raises(CommandError):
            purge("--days", bad)
    assert Room.objects.count() == 5


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf", "thirty"])
def test_a_bad_retention_setting_stops_the_site_with_a_clear_error(tmp_path, value):
    """Every process reads the setting at start-up: a value that would delete
    everything (0, negative) or nothing ever (inf, text) is refused."""
    from tests.test_deploy_check import manage

    result = manage(tmp_path, {"DATA_RETENTION_DAYS": value}, "check")
    assert result.returncode != 0
    assert f"DATA_RETENTION_DAYS must be a number of days above 0 and at most 36500, " \
           f"not {value!r}" in result.stderr
