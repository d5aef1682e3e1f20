"""A round ends by reaching the target only with the pen up, and every stored
drawing says how its player's round ended.

A stroke still being drawn often reads as another digit for a moment (a 6
begins as a 1, a 7 as a "¬"): a drawing sent mid-stroke is scored and kept as
the player's latest, but never ends the round, however sure the model is.
First the game's database moves without a server (virtual time), then the
same over the protocol, through the real ASGI application.
"""

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from digitsite.game import database, finishing, guesses, protocol, rooms, seats
from digitsite.game import rounds as game_rounds
from digitsite.game.models import Room, RoundProgress, Seat
from digitsite.game.scoring import DrawingScorer
from recognizer.models import Drawing
from tests.test_game_consumers import join, new_room, one, seven, stored_drawings
from tests.test_game_logic import (
    DRAWING,
    INPUT,
    play_out_round,
    prediction,
    seat,
    set_deadline_passed,
)

# A first stroke that reads as the target, and the finished digit: the two
# drawings a player sends while drawing and once the pen is lifted.
FRAGMENT = {"width": 100.0, "height": 100.0, "strokes": [[[50.0, 10.0, 0.0], [50.0, 60.0, 40.0]]]}
FINISHED = {"width": 100.0, "height": 100.0,
            "strokes": [[[50.0, 10.0, 0.0], [50.0, 90.0, 80.0]], [[30.0, 30.0, 300.0],
                                                                   [50.0, 10.0, 340.0]]]}


@pytest.fixture
def room(db, manual_clock):
    """A room whose rounds run in virtual time: 20 s rounds, target confidence 0.8."""
    return rooms.create_room("Host", rounds=2, seconds=20, max_players=3, target_confidence=0.8,
                             results_seconds=3)


def started(room):
    """Ada (host) and Bob seated, round 1 on; their seats and the playing room."""
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    return ada, bob, Room.objects.get(pk=room.pk)


def draw(room, player, drawing, p_target, **fields):
    r = Room.objects.get(pk=room.pk)
    return guesses.record_guess(room.code, player.seat.player_id, r.game_id, r.round,
                                drawing=drawing, input_bytes=INPUT,
                                prediction=prediction(r.target, p_target), **fields)


# -- the rule, without a server ---------------------------------------------------


@pytest.mark.parametrize("known_target", [False, True], ids=["locked", "one-statement"])
def test_a_drawing_above_the_target_ends_the_round_only_with_the_pen_up(room, known_target):
    """The room's target confidence is 0.8; the fragment reads 95% as the
    target. Sent with the pen down (or without saying, as older pages do) it
    is kept as the player's latest and the round goes on; the same drawing
    with the pen up ends it, and is the drawing stored."""
    ada, _, r = started(room)
    target = {"target": r.target} if known_target else {}
    for pen in ({}, {"pen_up": False}):
        accepted, events = draw(room, ada, FRAGMENT, 0.95, **target, **pen)
        assert accepted and events == []
    progress = RoundProgress.objects.get(seat=ada.seat)
    assert not progress.finished and progress.reached_at is None
    assert progress.drawing == FRAGMENT and progress.target_probability == pytest.approx(0.95)
    assert Drawing.objects.count() == 0

    accepted, events = draw(room, ada, FRAGMENT, 0.95, pen_up=True, **target)
    assert accepted
    assert events[0]["type"] == "player_finished" and events[0]["reason"] == "reached"
    # 95 for the probability, the whole 50 for speed: the clock stood still.
    assert events[0]["points"] == 145
    [stored] = Drawing.objects.all()
    assert stored.strokes == FRAGMENT and stored.ending == "reached"


def test_the_drawing_kept_is_the_one_that_reached_the_target_not_a_fragment_before(room):
    """A fragment reads 95% as the target mid-stroke; the finished digit,
    pen lifted, reads 90%: the finished one ends the round and is stored."""
    ada, _, r = started(room)
    assert draw(room, ada, FRAGMENT, 0.95, target=r.target) == (True, [])
    accepted, events = draw(room, ada, FINISHED, 0.9, pen_up=True, target=r.target)
    assert accepted and events[0]["reason"] == "reached"
    stored = Drawing.objects.get()
    assert stored.strokes == FINISHED and stored.ending == "reached"
    assert stored.probabilities[r.target] == pytest.approx(0.9)
    # Nothing drawn after it counts, pen up or not.
    assert draw(room, ada, FRAGMENT, 1.0, pen_up=True) == (False, [])
    assert Drawing.objects.get().strokes == FINISHED


def test_a_fragment_at_the_end_of_time_scores_without_the_bonus_and_says_time(room, manual_clock):
    """The pen was still down when time ran out: the fragment is what there
    is, kept as ending "time", scored 100 x p with no speed bonus; the
    results do not call it reached."""
    ada, bob, r = started(room)
    draw(room, bob, FRAGMENT, 0.95, target=r.target)
    play_out_round(manual_clock)
    [end, _] = game_rounds.advance(room.code)
    results = {res["name"]: res for res in end["results"]}
    assert results["Bob"]["reason"] == "time" and not results["Bob"]["reached"]
    assert results["Bob"]["points"] == 95 and results["Bob"]["drawing"] == FRAGMENT
    stored = Drawing.objects.get()
    assert stored.player_id == bob.seat.player_id and stored.ending == "time"


def end_by_done(room, ada, bob, r, clock):
    return guesses.finish_player(room.code, bob.seat.player_id, r.game_id, 1, "done")


def end_by_time(room, ada, bob, r, clock):
    set_deadline_passed(r)
    return game_rounds.advance(room.code)


def end_by_disconnect(room, ada, bob, r, clock):
    # The connection dropped and Bob did not come back within his rejoin
    # window; the round, which waited for him, ends when it runs out.
    events = seats.disconnect(bob.seat.player_id, "chan-Bob")
    guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 1, "done")
    clock.advance(settings.GAME_REJOIN_SECONDS + 1)
    return events + seats.expire_seats(room.code)


def end_by_leaving(room, ada, bob, r, clock):
    return seats.leave(bob.seat.player_id)


def end_by_kick(room, ada, bob, r, clock):
    return seats.kick(room.code, ada.seat.player_id, bob.seat.player_id).events


def end_by_reaching(room, ada, bob, r, clock):
    return draw(room, bob, DRAWING, 0.9, pen_up=True, target=r.target)[1]


@pytest.mark.parametrize("ending, end", [
    ("done", end_by_done), ("time", end_by_time), ("disconnected", end_by_disconnect),
    ("left", end_by_leaving), ("kicked", end_by_kick), ("reached", end_by_reaching),
])
def test_each_way_a_round_ends_is_the_stored_drawings_ending(room, ending, end, manual_clock,
                                                            settings):
    """Bob drew (pen down, above the target) and his round ends one of the
    ways it can: the drawing stored is his last one, with that ending, the
    same as the reason the game announced."""
    settings.GAME_REJOIN_SECONDS = 5  # a dropped player's window ends inside the 20 s round
    ada, bob, r = started(room)
    draw(room, bob, FRAGMENT, 0.95, target=r.target)
    events = end(room, ada, bob, r, manual_clock)
    reasons = [m["reason"] for m in events if m["type"] == "player_finished"]
    reasons += [res["reason"] for m in events if m["type"] == "round_end"
                for res in m["results"] if res["player"] == bob.seat.player_id]
    assert reasons and set(reasons) == {ending}
    stored = Drawing.objects.get(player_id=bob.seat.player_id)
    assert stored.ending == ending
    assert stored.strokes == (DRAWING if ending == "reached" else FRAGMENT)
    assert RoundProgress.objects.get(seat=bob.seat).reason == ending


def test_a_drawing_kept_after_the_players_round_ended_carries_that_ending(room, manual_clock):
    """Two drawings stored after the player's round ended: one that arrived
    before `done` but was written after it (an overloaded server), and one of
    a player who finished opted out and opted back in before the round's
    end. Each carries the ending the player's round had."""
    ada, bob, r = started(room)
    seat(room.code, "Cy")  # still drawing: the round goes on until the timer
    received = manual_clock.now()
    guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 1, "done")
    accepted, _ = draw(room, ada, FRAGMENT, 0.4, target=r.target, received_at=received)
    assert accepted
    assert Drawing.objects.get(player_id=ada.seat.player_id).ending == "done"

    seats.set_opt_out(bob.seat.player_id, True)
    draw(room, bob, FINISHED, 0.9, pen_up=True, target=r.target)
    assert not Drawing.objects.filter(player_id=bob.seat.player_id).exists()
    seats.set_opt_out(bob.seat.player_id, False)
    end_by_time(room, ada, bob, r, manual_clock)
    stored = Drawing.objects.get(player_id=bob.seat.player_id)
    assert stored.ending == "reached" and stored.strokes == FINISHED


@pytest.mark.parametrize("known_target", [False, True], ids=["locked", "one-statement"])
def test_the_best_of_the_round_counts_only_drawings_with_the_pen_up(room, manual_clock,
                                                                   known_target):
    """Mid-stroke the fragment reads 95% as the target (the room needs 80%);
    the finished digits, pen lifted, read 50% and then 30%. The results' best
    is 50%: the 95% was never a drawing the player finished. (Before, the
    best counted every reading, and said 95%.)"""
    ada, bob, r = started(room)
    target = {"target": r.target} if known_target else {}
    draw(room, bob, FRAGMENT, 0.95, **target)
    draw(room, bob, FINISHED, 0.5, pen_up=True, **target)
    draw(room, bob, FINISHED, 0.3, pen_up=True, **target)
    draw(room, bob, FRAGMENT, 0.9, pen_up=False, **target)
    assert RoundProgress.objects.get(seat=bob.seat).best_target_probability == pytest.approx(0.5)
    play_out_round(manual_clock)
    [end, _] = game_rounds.advance(room.code)
    results = {res["name"]: res for res in end["results"]}
    assert results["Bob"]["best_target_probability"] == pytest.approx(0.5)
    # The drawing kept is still the last one, pen down or not, as time cut it.
    assert results["Bob"]["target_probability"] == pytest.approx(0.9)
    assert results["Bob"]["drawing"] == FRAGMENT
    # Nothing finished: no best at all.
    assert results["Ada"]["best_target_probability"] == 0


def test_a_late_drawing_counts_for_the_best_only_with_the_pen_up(room, manual_clock):
    """Drawings that reached the server before the player's `done` but were
    written after it (an overloaded server) follow the same rule: Ada's, pen
    down at 70%, is kept but is no best; Bob's, pen up at 60%, is his best."""
    ada, bob, r = started(room)
    seat(room.code, "Cy")  # still drawing: the round goes on
    received = manual_clock.now()
    for player, drawing, p_target, pen_up in ((ada, FRAGMENT, 0.7, False),
                                              (bob, FINISHED, 0.6, True)):
        guesses.finish_player(room.code, player.seat.player_id, r.game_id, 1, "done")
        assert draw(room, player, drawing, p_target, target=r.target, received_at=received,
                    pen_up=pen_up)[0]
    assert RoundProgress.objects.get(seat=ada.seat).best_target_probability == 0
    assert RoundProgress.objects.get(seat=bob.seat).best_target_probability == pytest.approx(0.6)


class ScoringSession:
    """What a DrawingScorer needs of its session: a place to run tasks, and
    the room and player its log lines name."""

    code = "AB12"
    player_id = 3

    def __init__(self):
        self.tasks = []

    def spawn(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self.tasks.append(task)
        return task


def submit(scorer, seq, pen_up):
    scorer.submit({"seq": seq}, seq, "g", 1, 7, 0.0, pen_up=pen_up)


async def test_a_pen_up_drawing_waiting_is_not_replaced_by_a_newer_one_with_the_pen_down():
    """While drawing 1 is being scored, four more arrive: 2 (pen down), 3 (pen
    up), 4 (pen down), 5 (pen down). Scored next: 3, the newest with the pen up
    (the only kind that can reach the target), then 5, the newest of all; 2 and
    4 are superseded. (Before, only 5 was scored: the digit finished in 3 was
    never scored with the pen up.) A newer pen-up drawing replaces both
    waiting."""
    scorer = DrawingScorer(ScoringSession())
    scored, busy, gate = [], asyncio.Event(), asyncio.Event()

    async def compute(item):
        """Rendering and recognising: recorded; None (nothing to write)."""
        scored.append((item.seq, item.pen_up))
        if item.seq == 1:
            busy.set()
            await gate.wait()
        return None

    scorer._compute = compute
    submit(scorer, 1, False)
    await asyncio.wait_for(busy.wait(), 60)  # drawing 1 is being scored
    assert scored == [(1, False)]
    for seq, pen_up in ((2, False), (3, True), (4, False), (5, False)):
        submit(scorer, seq, pen_up)
    gate.set()
    await scorer.drain()
    assert scored == [(1, False), (3, True), (5, False)]

    # A pen-up drawing newer than both waiting replaces them: it has all they had.
    scored.clear()
    gate.clear()
    busy.clear()
    submit(scorer, 1, False)
    await asyncio.wait_for(busy.wait(), 60)
    for seq, pen_up in ((2, True), (3, False), (4, True)):
        submit(scorer, seq, pen_up)
    gate.set()
    await scorer.drain()
    assert scored == [(1, False), (4, True)]


async def test_a_drain_that_gives_up_says_so(caplog):
    """`done` waits for the drawing in hand and the writes under way, then
    goes on: when they outlast the wait, a warning names the room, the player
    and what was left (before, nothing did, and a player's missing drawing or
    late round end had no trace). Tried: a scoring that never ends, then a
    write that never ends (neither can finish, whatever the machine's speed)."""
    scorer = DrawingScorer(ScoringSession())
    never = asyncio.Event()

    async def compute(item):
        await never.wait()

    scorer._compute = compute
    submit(scorer, 1, True)
    with caplog.at_level(logging.WARNING, logger="digitsite.game.scoring"):
        await scorer.drain(timeout=0.01)
    assert [r.getMessage() for r in caplog.records] == [
        "room AB12: player 3: its drawing in hand was not scored within 0.01 s; "
        "going on without waiting more"]
    scorer.task.cancel()

    caplog.clear()
    scorer.writes.add(asyncio.get_running_loop().create_future())
    with caplog.at_level(logging.WARNING, logger="digitsite.game.scoring"):
        await scorer.drain(timeout=0.01)
    assert [r.getMessage() for r in caplog.records] == [
        "room AB12: player 3: 1 drawing write(s) did not end within 0.01 s; "
        "going on without waiting more"]

    # Not per player: a stopping server's drain (it counts the unfinished
    # players in one line), and a write outlasting the wait while the
    # database refuses writes (the outage is logged once for the process).
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="digitsite.game.scoring"):
        await scorer.drain(timeout=0.01, report=False)
        database._refusals.failed("a write: database is locked")
        try:
            await scorer.drain(timeout=0.01)
        finally:
            database._refusals.reset()
    assert [r for r in caplog.records if r.name == "digitsite.game.scoring"] == []

    caplog.clear()
    scorer.writes.clear()
    with caplog.at_level(logging.WARNING, logger="digitsite.game.scoring"):
        await scorer.drain(timeout=0.01)  # nothing in hand: nothing to say
    assert caplog.records == []


def test_a_round_ending_the_drawings_do_not_know_is_stored_as_unknown(room, caplog):
    """A way of ending a round added to the game before the drawings know it
    must not fail the round's end: the drawing is kept, as "unknown"."""
    ada, bob, r = started(room)
    draw(room, bob, FRAGMENT, 0.5)
    progress = RoundProgress.objects.get(seat=bob.seat)
    progress.reason = "teleported"
    finishing.store_drawing(Room.objects.get(pk=room.pk), Seat.objects.get(pk=bob.seat.pk),
                            progress)
    assert Drawing.objects.get().ending == "unknown"
    assert "teleported" in caplog.text


def test_a_player_who_left_keeps_the_score_but_gets_no_rank(room):
    """Bob scores best and leaves before the game's end: the leaderboard ranks
    Ada first and lists Bob after her, gone, with no rank."""
    ada, bob, r = started(room)
    draw(room, bob, DRAWING, 1.0, pen_up=True, target=r.target)
    seats.leave(bob.seat.player_id)
    set_deadline_passed(r)
    game_rounds.advance(room.code)  # round 1 ends
    set_deadline_passed(Room.objects.get(pk=room.pk))
    game_rounds.advance(room.code)  # round 2 starts
    r = Room.objects.get(pk=room.pk)
    draw(room, ada, DRAWING, 0.5, target=r.target)
    events = guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 2, "done")
    over = next(m for m in events if m["type"] == "game_over")
    protocol.check(over)
    assert [(row["name"], row["score"], row["rank"], row["gone"])
            for row in over["leaderboard"]] == [("Ada", 50, 1, False), ("Bob", 150, None, True)]


# -- over the protocol ---------------------------------------------------------------


@sync_to_async
def progress_of(player_id):
    return RoundProgress.objects.get(seat__player_id=player_id)


@pytest.mark.django_db(transaction=True)
async def test_over_the_protocol_only_a_pen_up_drawing_reaches_the_target(active_model,
                                                                       manual_clock):
    """Any drawing reaches a target confidence of 0. Ada's drawings sent with
    the pen down (saying so, or saying nothing) get guesses that do not reach
    it and leave her drawing; the drawing she sends with the pen up ends her
    round and is the one stored, ending "reached". Bob's page says nothing
    about the pen (an older page): his round ends by `done`, and his
    drawing is stored with that ending, without the speed bonus. The game's
    clock stands still (`manual_clock`): a bonus is all or nothing."""
    game_room = await new_room(rounds=1, target_confidence=0.0)
    ada = await join(game_room.code, "Ada")
    bob = await join(game_room.code, "Bob")
    await ada.send("start")
    await ada.expect("round_start")
    await bob.expect("round_start")

    for seq, pen in ((1, {}), (2, {"pen_up": False})):
        await ada.send("draw", round=1, drawing=seven(offset=seq), seq=seq, **pen)
        guess = await ada.expect("guess", seq=seq)
        # Kept at once, or held and written within a second.
        assert guess["reached"] is False and (guess["kept"] or guess["held"])
    assert not (await progress_of(ada.you["id"])).finished
    await ada.send("draw", round=1, drawing=seven(), pen_up="yes")
    assert "pen_up" in (await ada.error("bad_message"))["message"]

    await ada.send("draw", round=1, drawing=seven(offset=3), seq=3, pen_up=True)
    guess = await ada.expect("guess", seq=3)
    assert guess["reached"] is True
    finished = await bob.expect("player_finished", player=ada.you["id"])
    assert finished["reason"] == "reached"
    assert finished["points"] == round(100 * guess["target_probability"] + 50)

    await bob.send("draw", round=1, drawing=one(), seq=1)
    assert (await bob.expect("guess", seq=1))["reached"] is False
    await bob.send("done", round=1)
    end = await bob.expect("round_end")
    results = {r["name"]: r for r in end["results"]}
    assert results["Ada"]["reason"] == "reached" and results["Ada"]["reached"]
    assert results["Bob"]["reason"] == "done" and not results["Bob"]["reached"]
    assert results["Bob"]["points"] == round(100 * results["Bob"]["target_probability"])
    stored = {d.player_name: d for d in await stored_drawings(room_code=game_room.code)}
    assert stored["Ada"].strokes == seven(offset=3) and stored["Ada"].ending == "reached"
    assert stored["Bob"].strokes == one() and stored["Bob"].ending == "done"
    await ada.close()
    await bob.close()


def test_the_protocol_declares_pen_up_and_a_null_rank():
    draw_fields = {field.name: field for field in protocol.CLIENT_MESSAGES["draw"]}
    assert draw_fields["pen_up"].kind == "boolean" and not draw_fields["pen_up"].required
    assert protocol.draw(1, DRAWING, seq=2, pen_up=True)["pen_up"] is True
    assert "pen_up" not in protocol.draw(1, DRAWING)
    row = {"rank": None, "player": "p", "name": "Bo", "score": 3, "gone": True}
    protocol.check(protocol.message("game_over", game="g", rounds=1, rule="r",
                                    leaderboard=[row]))
