"""Deleting a player's data while their round ends, on the real PostgreSQL.

A round's end (rounds.end_round) locks the room, then stores each player's
drawing and adds their points to their seat. Deleting a player's data must
take the room first too: when it deleted the drawings first, a drawing stored
by a round ending at that moment (not yet committed, so not seen by the
DELETE) survived the deletion; and when it deleted the seats before locking
the room the player hosted, a game action holding that room and then
touching the seat deadlocked with it. SQLite serialises writers itself, so
both only show on PostgreSQL.
"""

import pytest

from tests.support import run_race_script

pytestmark = pytest.mark.services

# Runs in its own process (after tests.support.RACE_PRELUDE) with DATABASE_URL
# naming a fresh PostgreSQL database. For each scenario: Ada (the host) and
# Bob play a round that is due to end and both have drawn in; one thread holds
# the room's lock as end_round does, another deletes Ada's data. The room holder waits until the
# deleter is blocked on a lock or done (asked of pg_stat_activity, not timed),
# then ends the round, and commits.
#  - "stored_first": end_round runs before waiting (Ada's drawing is stored,
#    not yet committed, while the deletion runs).
#  - "stored_after": the room is only locked before waiting; end_round runs
#    after (it then touches Ada's seat).
RACE_SCRIPT = r"""
import time
from datetime import timedelta
from django.db import transaction
from django.utils import timezone
from digitsite.game import player_data
from digitsite.game import guesses, rooms, rounds, seats
from digitsite.game.models import Room, Seat
from recognizer.inference import Prediction
from recognizer.models import Drawing

DRAWING = {"width": 100.0, "height": 100.0, "strokes": [[[10.0, 10.0, 0.0], [90.0, 90.0, 50.0]]]}
WAIT = 120

def game_due_to_end():
    room = rooms.create_room("Ada", rounds=1, seconds=20)
    ada = seats.join(room.code, name="Ada", channel_name=f"c-ada-{room.code}").seat
    bob = seats.join(room.code, name="Bob", channel_name=f"c-bob-{room.code}").seat
    rounds.start_game(room.code, ada.player_id)
    room.refresh_from_db()
    probabilities = [0.05] * 10
    probabilities[room.target] = 0.55
    for seat in (ada, bob):
        guesses.record_guess(room.code, seat.player_id, room.game_id, 1, drawing=DRAWING,
                             input_bytes=bytes(784),
                             prediction=Prediction(room.target, probabilities, "v-test"))
    Room.objects.filter(pk=room.pk).update(ends_at=timezone.now() - timedelta(seconds=60))
    room.refresh_from_db()
    return room, ada

def blocked_on_lock(pid):
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"

report = {}
for scenario in sys.argv[1:]:
    room, ada = game_due_to_end()
    host = room.host_player == ada.player_id
    connection.close()
    errors, seen = [], {"blocked": False}
    locked, deleter_pid, deleted = threading.Event(), [], threading.Event()

    def hold_room():
        try:
            with transaction.atomic():
                Room.objects.select_for_update().get(pk=room.pk)
                if scenario == "stored_first":
                    rounds.end_round(room.code, room.game_id, 1)
                locked.set()
                deadline = time.monotonic() + WAIT
                while not deleted.is_set() and time.monotonic() < deadline:
                    if deleter_pid and blocked_on_lock(deleter_pid[0]):
                        seen["blocked"] = True
                        break
                    time.sleep(0.02)
                if scenario == "stored_after":
                    rounds.end_round(room.code, room.game_id, 1)
        except Exception as exc:
            errors.append(f"room holder: {type(exc).__name__}: {exc}")
        finally:
            locked.set()
            connection.close()

    def delete():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                deleter_pid.append(cursor.fetchone()[0])
            locked.wait(WAIT)
            player_data.delete(player_data.BY_ID, ada.player_id)
        except Exception as exc:
            errors.append(f"deleter: {type(exc).__name__}: {exc}")
        finally:
            deleted.set()
            connection.close()

    workers = [threading.Thread(target=hold_room), threading.Thread(target=delete)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    report[scenario] = {
        "errors": errors, "ada_hosted": host, "deleter_waited": seen["blocked"],
        "drawings_left": Drawing.objects.filter(player_id=ada.player_id).count(),
        "seats_left": Seat.objects.filter(player_id=ada.player_id).count(),
        "bob_drawings": Drawing.objects.filter(room_code=room.code, player_name="Bob").count(),
    }
    connection.close()
print(json.dumps(report))
"""


def test_deleting_a_player_while_their_round_ends_leaves_nothing_and_never_deadlocks(
        own_postgres_database, tmp_path):
    """Hostile timing: the deletion runs while the round's end holds the room,
    with the player's drawing stored and uncommitted, or about to be stored
    and their seat's score about to change (the player hosts the room)."""
    report = run_race_script(RACE_SCRIPT, "stored_first", "stored_after",
                             database_url=own_postgres_database, tmp_path=tmp_path)
    for scenario, outcome in report.items():
        assert outcome["ada_hosted"], scenario
        assert outcome["errors"] == [], (scenario, outcome)
        # The deletion waited for the room, then removed what the round stored.
        assert outcome["deleter_waited"], (scenario, outcome)
        assert outcome["drawings_left"] == 0 and outcome["seats_left"] == 0, (scenario, outcome)
    # Bob's drawing, stored by the same round's end, stays.
    assert [outcome["bob_drawings"] for outcome in report.values()] == [1, 1]
