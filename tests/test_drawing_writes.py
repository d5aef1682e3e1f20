"""How often a player's live drawings are written, and that nothing the
player was told is kept gets lost.

Every statement that changes a row (INSERT, UPDATE, DELETE), from any thread
and connection, is counted while a player draws the way the page does (a
drawing every 100 ms of the game's virtual clock) and ends the round.
"""

import collections
import contextlib
import threading
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.db.backends.utils import CursorWrapper

from digitsite.game import clock, guesses, rooms
from digitsite.game import rounds as game_rounds
from digitsite.game.models import Room, RoundProgress
from tests.test_game_consumers import join, new_room, seven, stored_drawings
from tests.test_game_logic import DRAWING, INPUT, prediction, seat

pytestmark = pytest.mark.django_db(transaction=True)

WRITES = ("INSERT", "UPDATE", "DELETE")


@contextlib.contextmanager
def counting_writes():
    """Count the statements that change rows, per (verb, table)."""
    counts = collections.Counter()
    lock = threading.Lock()
    execute = CursorWrapper._execute

    def counted(self, sql, params, *args):
        words = sql.split(None, 3)
        if words and words[0].upper() in WRITES:
            table = words[2] if words[0].upper() != "UPDATE" else words[1]
            with lock:
                counts[(words[0].upper(), table.strip('"'))] += 1
        return execute(self, sql, params, *args)

    with mock.patch.object(CursorWrapper, "_execute", counted):
        yield counts


def total(counts, table=None):
    return sum(n for (_verb, name), n in counts.items() if table is None or name == table)


@sync_to_async
def progress_drawing(player_id):
    return RoundProgress.objects.get(seat__player_id=player_id).drawing


def growing(step):
    """The drawing after `step` updates of the pen: one more point each time."""
    drawing = seven()
    stroke = [[60 + 7 * i, 50 + 9 * i, 100 * i] for i in range(step + 1)]
    return dict(drawing, strokes=[stroke])


async def test_a_round_of_live_guesses_is_written_about_once_a_second(active_model,
                                                                      manual_clock):
    room = await new_room(rounds=1, solo=True)
    ada = await join(room.code, "Ada")
    await ada.send("start")
    await ada.expect("round_start")
    guesses = []
    with counting_writes() as drawing_writes:
        # Two seconds of drawing, a drawing every 100 ms, each sent when the
        # last one's guess is back (as the page does).
        for seq in range(1, 21):
            await ada.send("draw", round=1, seq=seq, drawing=growing(seq), pen_up=False)
            guesses.append(await ada.expect("guess", seq=seq))
            manual_clock.advance(0.1)
        # The last drawing is held (the last write was under a second ago).
        assert guesses[-1]["kept"] is False and guesses[-1]["held"] is True
    with counting_writes() as ending_writes:
        await ada.send("done", round=1)
        # Held drawings are written before the round ends for the player,
        # and the client is told.
        kept = await ada.expect("kept", seq=20)
        await ada.expect("player_finished")
        await ada.expect("round_end")
    writes = total(drawing_writes, "game_roundprogress")
    print(f"\n20 live guesses: {total(drawing_writes)} row writes "
          f"({writes} of round progress); the round's end: {total(ending_writes)}")
    # Drawings written at 0, 1.0 and 2.0 s: the first at once (its row made
    # then), then at most one a second. Writing each one made 22 statements.
    assert drawing_writes[("UPDATE", "game_roundprogress")] <= 3, drawing_writes
    assert writes <= 4, drawing_writes
    kept_now = [g["seq"] for g in guesses if g["kept"]]
    assert kept_now[0] == 1 and all(g["held"] for g in guesses if not g["kept"])
    assert kept["round"] == 1
    [stored] = await stored_drawings(room_code=room.code)
    assert stored.strokes == growing(20)
    await ada.close()


def test_a_late_write_of_a_held_drawing_counts_the_drawings_it_replaced(manual_clock):
    """A held drawing stands for every drawing scored since the last write
    (`drawings`); written after `done` overtook it, it still counts them all,
    as a write in time does."""
    room = rooms.create_room("Host", rounds=1, seconds=20, max_players=3,
                             target_confidence=0.8, results_seconds=3)
    ada = seat(room.code, "Ada")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    received = clock.now()
    guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 1, "done")
    accepted, _ = guesses.record_guess(
        room.code, ada.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
        prediction=prediction(r.target, 0.4), target=r.target, received_at=received,
        drawings=3)
    assert accepted
    progress = RoundProgress.objects.get(seat__player_id=ada.seat.player_id)
    assert progress.drawing == DRAWING and progress.guesses == 3


@sync_to_async
def round_best(player_id):
    return RoundProgress.objects.get(seat__player_id=player_id).best_target_probability


async def test_a_held_pen_up_drawing_replaced_before_its_write_counts_for_the_best(
        active_model, manual_clock):
    # A finished digit (pen up) that does not reach the target is held; the
    # player starts another stroke within the second, which replaces it
    # unwritten. The round's best is of finished drawings: that one's.
    room = await new_room(rounds=1, solo=True, target_confidence=1.0)
    ada = await join(room.code, "Ada")
    await ada.send("start")
    await ada.expect("round_start")
    await ada.send("draw", round=1, seq=1, drawing=growing(2), pen_up=False)
    assert (await ada.expect("guess", seq=1))["kept"] is True
    manual_clock.advance(0.1)
    await ada.send("draw", round=1, seq=2, drawing=growing(4), pen_up=True)
    finished = await ada.expect("guess", seq=2)
    assert finished["held"] is True and finished["target_probability"] > 0
    manual_clock.advance(0.1)
    await ada.send("draw", round=1, seq=3, drawing=growing(5), pen_up=False)
    assert (await ada.expect("guess", seq=3))["held"] is True
    assert await round_best(ada.you["id"]) == 0.0  # nothing pen-up written yet
    # A second after the first write, the newest drawing (pen down) is
    # written, and brings the held pen-up drawing's reading with it.
    manual_clock.advance(1.0)
    await ada.expect("kept", seq=3)
    assert await round_best(ada.you["id"]) == pytest.approx(finished["target_probability"])
    # Pen-down drawings alone never raise it.
    await ada.send("draw", round=1, seq=4, drawing=growing(12), pen_up=False)
    await ada.expect("guess", seq=4)
    await ada.send("done", round=1)
    await ada.expect("player_finished")
    assert await round_best(ada.you["id"]) == pytest.approx(finished["target_probability"])
    await ada.close()
