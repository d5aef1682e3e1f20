"""Game rules and state transitions, without any server or socket."""

import asyncio
import importlib
import math
import random
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.utils import timezone

from digitsite.game import clock, codes, guesses, rooms, rules, seats, snapshots
from digitsite.game import lobby as game_lobby
from digitsite.game import rounds as game_rounds
from digitsite.game.models import Room, RoundProgress, Seat
from digitsite.game.rules import GameError
from recognizer import ratelimit
from recognizer.inference import Prediction
from recognizer.models import Drawing
from tests.tables import rows_containing

# -- pure rules ---------------------------------------------------------------


def test_score_rewards_probability_and_speed_only_once_reached():
    assert rules.score(0.0, False, 0, 20) == 0
    assert rules.score(0.42, False, 15, 20) == 42  # no bonus below the threshold
    assert rules.score(1.0, True, 20, 20) == 150
    assert rules.score(0.9, True, 10, 20) == 115
    assert rules.score(0.95, True, 0, 20) == 95
    # Out-of-range inputs are clamped, not trusted.
    assert rules.score(1.7, True, 99, 20) == 150
    assert rules.score(-1, True, -5, 20) == 0
    assert rules.score(0.5, True, 5, 0) == 50


def test_scoring_rule_sentence_states_the_numbers():
    assert str(rules.ACCURACY_POINTS) in rules.SCORING_RULE
    assert str(rules.SPEED_POINTS) in rules.SCORING_RULE


def test_targets_do_not_repeat_until_all_digits_were_used():
    rng = random.Random(3)
    for rounds in (1, 5, 10):
        targets = rules.pick_targets(rounds, rng)
        assert len(targets) == rounds and len(set(targets)) == rounds
        assert all(0 <= t <= 9 for t in targets)
    for seed in range(50):
        targets = rules.pick_targets(20, random.Random(seed))
        assert sorted(targets) == sorted(list(range(10)) * 2)
        assert all(a != b for a, b in zip(targets, targets[1:], strict=False))


def test_leaderboard_ranks_players_present_and_ties_share_a_rank():
    rows = rules.leaderboard([
        {"player": "a", "name": "A", "score": 50, "gone": False},
        {"player": "b", "name": "B", "score": 90, "gone": True},
        {"player": "c", "name": "C", "score": 50, "gone": False},
        {"player": "d", "name": "D", "score": 10, "gone": False},
    ])
    # B left: still listed with the score, but unranked, after those present.
    assert [(r["player"], r["rank"]) for r in rows] == [
        ("a", 1), ("c", 1), ("d", 3), ("b", None)]


def test_names_are_trimmed_and_checked():
    assert rules.clean_name("  Ada   Lovelace ") == "Ada Lovelace"
    for bad, fragment in (("", "pick"), ("   ", "pick"), ("x" * 25, "24"),
                          ("a\x00b", "cannot be shown"), (42, "string")):
        with pytest.raises(GameError) as caught:
            rules.clean_name(bad)
        assert caught.value.code == "bad_name" and fragment in caught.value.message


def test_room_settings_are_validated():
    good = dict(rounds=5, seconds=20.0, results_seconds=5, max_players=8,
                target_confidence=0.9, solo=False)
    assert rules.room_settings(**good).max_players == 8
    assert rules.room_settings(**{**good, "solo": True}).max_players == 1
    assert rules.room_settings(**{**good, "rounds": 3.0}).rounds == 3
    for change, fragment in (({"rounds": 0}, "rounds"), ({"rounds": True}, "rounds"),
                             ({"rounds": 2.5}, "rounds"), ({"max_players": 9}, "max players"),
                             ({"seconds": math.nan}, "round seconds"),
                             ({"seconds": "20"}, "round seconds"),
                             ({"target_confidence": 1.5}, "target confidence")):
        with pytest.raises(GameError) as caught:
            rules.room_settings(**{**good, **change})
        assert fragment in caught.value.message


def test_token_bucket_allows_bursts_then_the_rate():
    now = [0.0]
    bucket = ratelimit.TokenBucket(rate=10, capacity=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.1
    assert bucket.take() is True and bucket.take() is False
    now[0] += 100
    assert sum(bucket.take() for _ in range(10)) == 3


async def test_the_manual_clock_wakes_sleepers_in_order_only_when_advanced():
    """Hostile uses: advancing from another thread, a sleep cancelled while
    waiting, a negative step."""
    manual = clock.ManualClock(start=1_000_000.0)
    assert manual.time() == 1_000_000.0 and manual.monotonic() == 0.0
    assert manual.now().timestamp() == 1_000_000.0 and manual.now().tzinfo is not None
    woken = []

    async def sleeper(name, seconds):
        await manual.sleep(seconds)
        woken.append((name, manual.monotonic()))

    tasks = [asyncio.ensure_future(sleeper(name, seconds))
             for name, seconds in (("late", 3.0), ("early", 1.0), ("cancelled", 2.0))]
    while manual.sleepers() < 3:
        await asyncio.sleep(0)
    tasks[2].cancel()
    manual.advance(0.5)
    await asyncio.sleep(0.05)
    assert woken == [] and manual.sleepers() == 1 + 1  # the cancelled one is not counted
    await asyncio.to_thread(manual.advance, 2.0)
    await asyncio.wait_for(tasks[1], 10)
    assert woken == [("early", 2.5)]
    manual.advance(0.5)
    await asyncio.wait_for(tasks[0], 10)
    assert woken == [("early", 2.5), ("late", 3.0)] and tasks[2].cancelled()
    assert manual.time() == 1_000_003.0
    with pytest.raises(ValueError):
        manual.advance(-1)


async def test_run_timers_fires_timers_in_order_and_never_past_its_window():
    manual = clock.ManualClock()
    fired = []

    async def chain():  # a timer that sets the next one, as the round timers do
        for _ in range(4):
            await manual.sleep(1.0)
            fired.append(manual.monotonic())

    task = asyncio.ensure_future(chain())

    async def two_fired():
        while len(fired) < 2:
            await asyncio.sleep(0.01)

    await manual.run_timers(two_fired(), within=2.5)
    assert fired == [1.0, 2.0] and manual.monotonic() == 2.0
    await manual.run_for(1.5)  # the third fires; the fourth (at 4.0) is past 3.5
    assert fired == [1.0, 2.0, 3.0] and manual.monotonic() == 3.5
    task.cancel()


def test_the_game_reads_the_installed_clock(manual_clock):
    before = clock.now()
    manual_clock.advance(3600)
    assert (clock.now() - before).total_seconds() == pytest.approx(3600)
    assert clock.time() == manual_clock.time() and clock.monotonic() == manual_clock.monotonic()


def test_room_codes_are_readable_and_normalised():
    for _ in range(200):
        code = codes.generate_code()
        assert len(code) == 6 and set(code) <= set(codes.ALPHABET)
    assert not set("IO01") & set(codes.ALPHABET)
    assert codes.normalise_code(" k7x-q2m ") == "K7XQ2M"
    assert codes.normalise_code("https://example.org/rooms/k7xq2m/?x=1#y") == "K7XQ2M"
    for bad in ("K7XQ2", "K7XQ2MM", "K0XQ2M", "KIXQ2M", "", None, 123456, "https://x/"):
        assert codes.normalise_code(bad) is None


# -- state transitions in the database ----------------------------------------

def prediction(target, p_target, version="v-test"):
    rest = (1.0 - p_target) / 9
    probabilities = [rest] * 10
    probabilities[target] = p_target
    digit = max(range(10), key=probabilities.__getitem__)
    return Prediction(digit, probabilities, version)


DRAWING = {"width": 100.0, "height": 100.0, "strokes": [[[10.0, 10.0, 0.0], [90.0, 90.0, 50.0]]]}
INPUT = bytes(range(256)) * 3 + bytes(16)


def seat(code, name, channel=None, **fields):
    result = seats.join(code, name=name, channel_name=channel or f"chan-{name}", **fields)
    return result


@pytest.fixture
def room(db, manual_clock):
    """A room whose rounds run in virtual time: 20 s rounds, 3 s results."""
    return rooms.create_room("Host", rounds=2, seconds=20, max_players=3, target_confidence=0.8,
                             results_seconds=3)


def play_out_round(clock):
    """Let the 20 s round run out, and its grace after it."""
    clock.advance(20 + rules.ROUND_GRACE_SECONDS)


def set_deadline_passed(room):
    """Move the round's deadline a second into the game clock's past."""
    Room.objects.filter(pk=room.pk).update(ends_at=clock.now() - timedelta(seconds=1))


def test_create_room_validates_and_get_room_finds_it(db):
    room = rooms.create_room("Ada", rounds=3, seconds=10)
    assert rooms.get_room(room.code.lower()) == room
    assert rooms.get_room("https://x/rooms/" + room.code + "/") == room
    assert rooms.get_room("nope") is None
    with pytest.raises(GameError):
        rooms.create_room("Ada", max_players=0)
    with pytest.raises(GameError):
        rooms.create_room("", rounds=0)
    solo = rooms.create_room("", solo=True, max_players=8)
    assert solo.max_players == 1 and solo.title == ""


def test_join_rejoin_and_full_room(room):
    ada = seat(room.code, "Ada")
    assert not ada.rejoined and ada.room.host_player == ada.seat.player_id
    bob = seat(room.code, "Bob")
    assert bob.room.host_player == ada.seat.player_id
    seat(room.code, "Cy")
    with pytest.raises(GameError) as caught:
        seat(room.code, "Dee")
    assert caught.value.code == "room_full"
    # The token reclaims the same seat and replaces the old connection.
    again = seat(room.code, "ignored", channel="chan-new", token=ada.token)
    assert again.rejoined and again.seat.pk == ada.seat.pk and again.seat.name == "Ada"
    assert again.replaced_channel == "chan-Ada"
    assert again.token != ada.token
    with pytest.raises(GameError) as caught:  # the old token is void: it asks for a new seat
        seat(room.code, "Ada2", token=ada.token)
    assert caught.value.code == "room_full"
    assert Seat.objects.get(pk=ada.seat.pk).token_hash == seats.hash_token(again.token)
    assert ada.token not in str(list(Seat.objects.values_list("token_hash", flat=True)))


def test_a_logged_in_user_plays_under_the_username_and_gets_the_seat_back(room):
    user = User.objects.create_user("grace", password="x")
    first = seat(room.code, "whatever", user=user)
    assert first.seat.name == "grace" and first.seat.user_id == user.pk
    seats.disconnect(first.seat.player_id, "chan-whatever")
    back = seat(room.code, "", channel="chan-2", user=user)
    assert back.rejoined and back.seat.pk == first.seat.pk


def test_host_moves_to_the_next_connected_player(room):
    ada, bob, cy = (seat(room.code, n) for n in ("Ada", "Bob", "Cy"))
    seats.disconnect(ada.seat.player_id, "chan-Ada")
    assert Room.objects.get(pk=room.pk).host_player == bob.seat.player_id
    seats.leave(bob.seat.player_id)
    assert Room.objects.get(pk=room.pk).host_player == cy.seat.player_id
    # A disconnect from a connection that no longer holds the seat changes nothing.
    assert seats.disconnect(cy.seat.player_id, "some-old-channel") == []
    assert Seat.objects.get(pk=cy.seat.pk).connected


def test_seats_expire_after_the_rejoin_window(room, settings, manual_clock):
    settings.GAME_REJOIN_SECONDS = 60
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    seats.disconnect(bob.seat.player_id, "chan-Bob")
    assert seats.expire_seats(room.code) == []
    manual_clock.advance(59.9)
    assert seats.expire_seats(room.code) == []
    manual_clock.advance(0.2)
    [snapshot] = seats.expire_seats(room.code)
    assert [p["gone"] for p in snapshot["players"]] == [False, True]
    late = seat(room.code, "Bob", channel="chan-late", token=bob.token)
    assert not late.rejoined
    assert ada.seat.player_id == Room.objects.get(pk=room.pk).host_player


def test_start_needs_the_host_and_no_game_on(room):
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    with pytest.raises(GameError) as caught:
        game_rounds.start_game(room.code, bob.seat.player_id)
    assert caught.value.code == "not_host"
    start, snapshot = game_rounds.start_game(room.code, ada.seat.player_id)
    assert start["type"] == "round_start" and start["round"] == 1 and start["rounds"] == 2
    assert snapshot["state"] == "playing" and snapshot["target"] == start["target"]
    assert start["ends_at"] - start["server_time"] == 20_000
    with pytest.raises(GameError) as caught:
        game_rounds.start_game(room.code, ada.seat.player_id)
    assert caught.value.code == "already_playing"


def test_reaching_the_target_finishes_once_and_stores_one_drawing(room):
    ada = seat(room.code, "Ada")
    seat(room.code, "Bob")  # still drawing when Ada finishes
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    accepted, events = guesses.record_guess(
        room.code, ada.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
        prediction=prediction(r.target, 0.5))
    assert accepted and events == []
    # Reaching the target is never a one-statement write: it finishes her round.
    accepted, events = guesses.record_guess(
        room.code, ada.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
        prediction=prediction(r.target, 0.9), target=r.target, pen_up=True)
    assert accepted
    finished = events[0]
    assert finished["type"] == "player_finished" and finished["reason"] == "reached"
    # 100 * 0.9 + 50 * (all of the 20 s left: the clock stood still)
    assert finished["points"] == 140 and finished["seconds"] == 0
    # Bob is still drawing: no round end yet, and no snapshot after a finish
    # (the finish counts the room's revision all the same).
    assert [m["type"] for m in events] == ["player_finished"]
    assert Room.objects.get(pk=room.pk).revision == r.revision + 1
    # Nothing more counts for her this round.
    accepted, _ = guesses.record_guess(
        room.code, ada.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
        prediction=prediction(r.target, 1.0))
    assert not accepted
    with pytest.raises(GameError) as caught:
        guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 1, "done")
    assert caught.value.code == "already_finished"
    [drawing] = Drawing.objects.all()
    assert drawing.label == r.target and drawing.strokes == DRAWING
    assert bytes(drawing.input_image) == INPUT and drawing.player_name == "Ada"
    assert drawing.game_id == r.game_id and drawing.round_number == 1
    assert Seat.objects.get(pk=ada.seat.pk).score == finished["points"]


def test_the_round_ends_once_and_the_game_runs_its_rounds(room, manual_clock):
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    # He had it better a moment ago, pen up; the last drawing counts. The
    # second write takes the one-statement path (the caller knows the target).
    for p_target, target in ((0.6, None), (0.3, r.target)):
        accepted, _ = guesses.record_guess(
            room.code, bob.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
            prediction=prediction(r.target, p_target), target=target, pen_up=True)
        assert accepted
    assert RoundProgress.objects.get(seat=bob.seat).guesses == 2
    assert game_rounds.end_round(room.code, r.game_id, 1) == []  # not due yet
    assert game_rounds.advance(room.code) == []
    manual_clock.advance(20)
    assert game_rounds.advance(room.code) == []  # the round's end, but not its grace yet
    manual_clock.advance(rules.ROUND_GRACE_SECONDS)
    ended = game_rounds.advance(room.code)
    assert [m["type"] for m in ended] == ["round_end", "room"]
    assert game_rounds.end_round(room.code, r.game_id, 1) == []  # a second process loses
    assert game_rounds.advance(room.code) == []  # the results pause is not over
    results = {res["name"]: res for res in ended[0]["results"]}
    assert results["Bob"]["points"] == 30 and results["Bob"]["reason"] == "time"
    assert results["Bob"]["best_target_probability"] == pytest.approx(0.6)
    assert results["Ada"]["drawing"] is None and results["Ada"]["reason"] == "absent"
    assert ended[0]["next_round_at"] is not None and not ended[0]["final"]
    assert Drawing.objects.count() == 1
    # Drawing after the round ended is refused, whichever way it is written.
    for target in (None, r.target):
        accepted, _ = guesses.record_guess(room.code, bob.seat.player_id, r.game_id, 1,
                                           drawing=DRAWING, input_bytes=INPUT,
                                           prediction=prediction(r.target, 0.1), target=target)
        assert not accepted
    assert RoundProgress.objects.get(seat=bob.seat, round_number=1).target_probability == 0.3

    manual_clock.advance(2.9)
    assert game_rounds.advance(room.code) == []
    manual_clock.advance(0.1)
    started = game_rounds.advance(room.code)
    assert [m["type"] for m in started] == ["round_start", "room"]
    assert started[0]["round"] == 2 and started[0]["target"] != r.target
    assert game_rounds.next_round(room.code, r.game_id, 1) == []
    for player in (ada, bob):
        events = guesses.finish_player(room.code, player.seat.player_id, r.game_id, 2, "done")
    assert [m["type"] for m in events] == ["player_finished", "round_end", "game_over", "room"]
    assert events[1]["final"] and events[3]["state"] == "finished"
    board = events[2]["leaderboard"]
    assert [(row["name"], row["score"], row["rank"]) for row in board] == [
        ("Bob", 30, 1), ("Ada", 0, 2)]
    assert RoundProgress.objects.filter(finished=False).count() == 0


def test_a_drawing_received_in_time_but_written_late_is_still_kept(room, manual_clock):
    """An overloaded server scores a drawing (the player sees a guess) and
    writes it after the round closed: the drawing is kept, once."""
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    received = Room.objects.get(pk=room.pk).ends_at - timedelta(milliseconds=200)
    play_out_round(manual_clock)
    assert [m["type"] for m in game_rounds.advance(room.code)] == ["round_end", "room"]
    assert Drawing.objects.count() == 0  # the round closed before any write landed

    # Sent after the round ended: refused, nothing kept.
    accepted, _ = guesses.record_guess(
        room.code, ada.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
        prediction=prediction(r.target, 0.3), target=r.target,
        received_at=received + timedelta(seconds=1))
    assert not accepted
    # Received while the round was on: kept, with its model reading.
    for _ in range(2):  # a retry does not store it twice
        accepted, _ = guesses.record_guess(
            room.code, bob.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
            prediction=prediction(r.target, 0.3), target=r.target, received_at=received)
    [drawing] = Drawing.objects.all()
    assert drawing.player_id == bob.seat.player_id and drawing.label == r.target
    assert drawing.strokes == DRAWING and bytes(drawing.input_image) == INPUT
    assert drawing.probabilities[r.target] == pytest.approx(0.3)


def test_a_drawing_received_before_done_but_written_after_it_is_kept(room, manual_clock):
    """`done` overtakes the write of a drawing sent before it (the session waits
    for the write only so long): the drawing is kept, and a second late write
    for the same round does not replace it."""
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    received = clock.now()
    events = guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 1, "done")
    assert events[0]["reason"] == "done" and events[0]["points"] == 0
    assert Drawing.objects.count() == 0

    accepted, messages = guesses.record_guess(
        room.code, ada.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
        prediction=prediction(r.target, 0.4), target=r.target, received_at=received)
    assert accepted and messages == []
    [drawing] = Drawing.objects.all()
    assert drawing.player_id == ada.seat.player_id and drawing.strokes == DRAWING
    again, _ = guesses.record_guess(
        room.code, ada.seat.player_id, r.game_id, 1, drawing={**DRAWING, "width": 50.0},
        input_bytes=INPUT, prediction=prediction(r.target, 0.4), target=r.target,
        received_at=received)
    assert not again and Drawing.objects.get().strokes == DRAWING
    # Bob says done too; a drawing of his received after that is not kept,
    # nor one whose receipt time is unknown.
    guesses.finish_player(room.code, bob.seat.player_id, r.game_id, 1, "done")
    manual_clock.advance(0.001)
    for received_at in (clock.now(), None):
        assert guesses.record_guess(
            room.code, bob.seat.player_id, r.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
            prediction=prediction(r.target, 0.4), target=r.target,
            received_at=received_at) == (False, [])
    assert Drawing.objects.count() == 1
    progress = RoundProgress.objects.get(seat__player_id=ada.seat.player_id)
    assert progress.finished and progress.reason == "done" and progress.points == 0


def test_a_disconnected_players_round_waits_for_them(room, settings, manual_clock):
    settings.GAME_REJOIN_SECONDS = 60
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    guesses.record_guess(room.code, bob.seat.player_id, r.game_id, 1, drawing=DRAWING,
                         input_bytes=INPUT, prediction=prediction(r.target, 0.4))
    # Bob's page drops (a reload): his part in the round is not over.
    events = seats.disconnect(bob.seat.player_id, "chan-Bob")
    assert [m["type"] for m in events] == ["room"]
    assert not RoundProgress.objects.get(seat=bob.seat).finished
    # Ada finishing does not end the round under him.
    events = guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 1, "done")
    assert "round_end" not in [m["type"] for m in events]
    # He comes back with his token: the same seat, his drawing, the round on.
    back = seat(room.code, "Bob", channel="chan-Bob-2", token=bob.token)
    assert back.rejoined and back.seat.pk == bob.seat.pk
    assert back.drawing == DRAWING
    assert Drawing.objects.count() == 0
    events = guesses.finish_player(room.code, bob.seat.player_id, r.game_id, 1, "done")
    assert events[0]["reason"] == "done" and events[0]["points"] == 40
    assert "round_end" in [m["type"] for m in events]
    assert Drawing.objects.get().player_id == bob.seat.player_id


def test_a_player_away_when_the_round_ends_keeps_their_drawing(room, settings, manual_clock):
    settings.GAME_REJOIN_SECONDS = 60
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    guesses.record_guess(room.code, bob.seat.player_id, r.game_id, 1, drawing=DRAWING,
                         input_bytes=INPUT, prediction=prediction(r.target, 0.4))
    seats.disconnect(bob.seat.player_id, "chan-Bob")
    guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 1, "done")
    # The round waits for Bob until his rejoin window ends, not longer.
    manual_clock.advance(10)
    assert game_rounds.advance(room.code) == []
    manual_clock.advance(51)
    events = seats.expire_seats(room.code)
    end = next(m for m in events if m["type"] == "round_end")
    bobs = next(row for row in end["results"] if row["player"] == bob.seat.player_id)
    assert bobs["reason"] == "disconnected" and bobs["points"] == 40
    assert Drawing.objects.get().player_id == bob.seat.player_id
    assert back_gets_no_drawing(room, bob.token)


def back_gets_no_drawing(room, token):
    """A join with an expired seat's token takes a new seat, with nothing to restore."""
    late = seats.join(room.code, name="Bob", token=token, channel_name="chan-late")
    return not late.rejoined and late.drawing is None


def test_a_stopping_server_finishes_its_players_rounds(room):
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    guesses.record_guess(room.code, bob.seat.player_id, r.game_id, 1, drawing=DRAWING,
                         input_bytes=INPUT, prediction=prediction(r.target, 0.4))
    events = seats.disconnect(bob.seat.player_id, "chan-Bob", finish_round=True)
    assert events[0]["reason"] == "disconnected" and events[0]["points"] == 40
    assert Drawing.objects.get().player_id == bob.seat.player_id


def test_opt_out_keeps_drawings_out(room):
    ada = seat(room.code, "Ada", opt_out=True)
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    guesses.record_guess(room.code, ada.seat.player_id, r.game_id, 1, drawing=DRAWING,
                         input_bytes=INPUT, prediction=prediction(r.target, 0.95), pen_up=True)
    assert Seat.objects.get(pk=ada.seat.pk).score > 0
    assert Drawing.objects.count() == 0


def private_drawing(mark):
    """A drawing, input and probabilities that only one player's are: `mark`
    (1 to 99) is in a coordinate, every input byte and the probabilities, so
    a search of every table finds any copy. Returns the needles too: the
    coordinate, the input and (from draw_private) a non-target probability."""
    x = 123.4567 + mark / 1e6
    drawing = {"width": 280.0, "height": 280.0,
               "strokes": [[[x, 40.0, 0.0], [200.0, 220.0, 350.0 + mark]]]}
    image = bytes([mark]) * 784
    return drawing, image, (x, image)


def draw_private(room, player, mark, p_target, **fields):
    r = Room.objects.get(pk=room.pk)
    drawing, image, needles = private_drawing(mark)
    guess = prediction(r.target, p_target)
    fields.setdefault("pen_up", True)  # a finished drawing
    accepted, events = guesses.record_guess(
        room.code, player.seat.player_id, r.game_id, r.round, drawing=drawing,
        input_bytes=image, prediction=guess, **fields)
    other = (r.target + 1) % 10
    return accepted, events, (*needles, guess.probabilities[other])


def test_an_opted_out_players_drawing_leaves_no_trace_once_the_round_ends(room):
    """Ada opted out from the start; Cy reached the target (her drawing was
    stored) and opted out afterwards, still in the round. While the round is
    on, Ada's drawing is in her progress (the round's end scores it); once it
    ends, no strokes, input or probabilities of either remain in any table,
    the results and a late joiner's catch-up show only their points, and a
    drawing of Ada's received in time but written after the end (an
    overloaded server) is dropped. Bob, opted in, keeps his."""
    ada = seat(room.code, "Ada", opt_out=True)
    bob, cy = seat(room.code, "Bob"), seat(room.code, "Cy")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    _, _, ada_needles = draw_private(room, ada, 31, 0.4031)
    _, _, bob_needles = draw_private(room, bob, 32, 0.4032)
    _, events, cy_needles = draw_private(room, cy, 33, 0.9033)
    assert events[0]["type"] == "player_finished" and events[0]["reason"] == "reached"
    assert RoundProgress.objects.get(seat=ada.seat).drawing is not None
    assert ("recognizer.Drawing", Drawing.objects.get(player_id=cy.seat.player_id).pk,
            "strokes") in rows_containing(*cy_needles)
    seats.set_opt_out(cy.seat.player_id, True)
    received = clock.now()

    set_deadline_passed(r)
    ended = game_rounds.advance(room.code)
    assert [m["type"] for m in ended] == ["round_end", "room"]
    assert rows_containing(*ada_needles, *cy_needles) == []
    assert {label for label, _, _ in rows_containing(*bob_needles)} == {
        "recognizer.Drawing", "game.RoundProgress"}
    results = {res["name"]: res for res in ended[0]["results"]}
    for name, points, reason in (("Ada", 40, "time"), ("Cy", None, "reached")):
        result = results[name]
        assert result["drawing"] is None and result["input"] is None
        assert result["probabilities"] is None and result["drawing_deleted"] is True
        assert result["reason"] == reason and result["seconds"] is not None
        assert result["digit"] is not None
        assert result["points"] == (points if points is not None else result["points"]) > 0
    assert results["Cy"]["points"] > 100  # reached, with the time bonus
    assert results["Bob"]["drawing"] is not None and results["Bob"]["drawing_deleted"] is False
    assert Seat.objects.get(pk=cy.seat.pk).score == results["Cy"]["points"]
    late_view = snapshots.catch_up(room.code)
    assert late_view[1]["type"] == "round_end" and late_view[1]["results"] == ended[0]["results"]

    accepted, _, _ = draw_private(room, ada, 31, 0.4031, target=r.target, received_at=received)
    assert not accepted
    seats.set_opt_out(ada.seat.player_id, False)  # opting in later brings nothing back
    accepted, _, _ = draw_private(room, ada, 31, 0.4031, target=r.target, received_at=received)
    assert not accepted
    assert rows_containing(*ada_needles, *cy_needles) == []
    assert [d.player_id for d in Drawing.objects.all()] == [bob.seat.player_id]


def test_the_opt_out_in_force_when_the_round_ends_decides(room):
    """Round 1: Ada finishes (`done`) while opted out, then opts back in before
    the round ends; Bob joins opted out, draws, and opts in: both drawings are
    stored when the round ends. Ada opts out between rounds: her round-2
    drawing is deleted at its end, her round-1 drawing stays."""
    ada = seat(room.code, "Ada")
    bob = seat(room.code, "Bob", opt_out=True)
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    _, _, ada_round1 = draw_private(room, ada, 41, 0.3041)
    draw_private(room, bob, 42, 0.3042)
    seats.set_opt_out(ada.seat.player_id, True)
    guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 1, "done")
    assert Drawing.objects.count() == 0
    seats.set_opt_out(ada.seat.player_id, False)
    seats.set_opt_out(bob.seat.player_id, False)
    set_deadline_passed(r)
    ended = game_rounds.advance(room.code)
    assert not any(res["drawing_deleted"] for res in ended[0]["results"])
    assert sorted(d.player_name for d in Drawing.objects.all()) == ["Ada", "Bob"]

    seats.set_opt_out(ada.seat.player_id, True)
    set_deadline_passed(r)
    assert game_rounds.advance(room.code)[0]["type"] == "round_start"
    _, _, ada_round2 = draw_private(room, ada, 43, 0.3043)
    events = guesses.finish_player(room.code, ada.seat.player_id, r.game_id, 2, "done")
    events += guesses.finish_player(room.code, bob.seat.player_id, r.game_id, 2, "done")
    assert "game_over" in [m["type"] for m in events]
    assert rows_containing(*ada_round2) == []
    assert {label for label, _, _ in rows_containing(*ada_round1)} == {
        "recognizer.Drawing", "game.RoundProgress"}
    assert Drawing.objects.filter(player_id=ada.seat.player_id).get().round_number == 1


def test_the_migration_deletes_opted_out_drawings_of_rounds_already_over(room):
    """Rows written before drawings were deleted at a round's end: the
    migration deletes those of finished rounds and leaves the round being
    played (its end deletes them)."""
    migration = importlib.import_module(
        "digitsite.game.migrations.0003_round_progress_drawing_deleted")
    ada = seat(room.code, "Ada", opt_out=True)
    bob = seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    r = Room.objects.get(pk=room.pk)
    for player in (ada, bob):
        draw_private(room, player, 50, 0.5)
    set_deadline_passed(r)
    game_rounds.advance(room.code)
    _, _, old_needles = private_drawing(50)
    RoundProgress.objects.filter(seat=ada.seat).update(  # as an older version left it
        drawing=private_drawing(50)[0], input_image=old_needles[1], drawing_deleted=False)
    set_deadline_passed(r)
    game_rounds.advance(room.code)  # round 2 is on
    _, _, playing_needles = draw_private(room, ada, 51, 0.5)

    migration.forget_opted_out_drawings(django_apps, None)
    ada_rows = {p.round_number: p for p in RoundProgress.objects.filter(seat=ada.seat)}
    assert ada_rows[1].drawing is None and ada_rows[1].input_image is None
    assert ada_rows[1].drawing_deleted and ada_rows[1].points == 50
    assert ada_rows[2].drawing is not None and not ada_rows[2].drawing_deleted
    assert RoundProgress.objects.get(seat=bob.seat, round_number=1).drawing is not None


def test_open_rooms_lists_joinable_rooms_only(db):
    lobby = rooms.create_room("Ada", max_players=2)
    full = rooms.create_room("Bob", max_players=1)
    rooms.create_room("Solo", solo=True)
    stale = rooms.create_room("Old")
    Room.objects.filter(pk=stale.pk).update(created=timezone.now() - timedelta(hours=1))
    seat(lobby.code, "Ada")
    seat(full.code, "Bob")
    listed = game_lobby.open_rooms()
    assert listed == [{"code": lobby.code, "title": "Ada", "players": 1, "max_players": 2,
                       "state": "lobby"}]


def test_a_round_end_reads_the_stored_drawings_once_not_per_player(room):
    """The round's end finds the finished players whose drawing is not stored
    yet (one who finished while opted out, then opted back in: tests/
    test_pen_up.py) with one read of the round's drawings, not a store
    attempt (two reads) per finished player. And storing a drawing reads its
    model version's key, not the row with its metrics."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recognizer.models import ModelVersion

    ModelVersion.objects.create(version="v-test", path="v-test.pt", sha256="0" * 64,
                                size_bytes=1, metrics={"mnist_test": {"accuracy": 0.99}})
    players = [seat(room.code, name).seat for name in ("Ada", "Bob", "Cy")]
    game_rounds.start_game(room.code, players[0].player_id)
    r = Room.objects.get(pk=room.pk)
    for player in players:
        guesses.record_guess(room.code, player.player_id, r.game_id, 1, drawing=DRAWING,
                             input_bytes=INPUT, prediction=prediction(r.target, 0.5))
    for player in players[:2]:
        guesses.finish_player(room.code, player.player_id, r.game_id, 1, "done")
    with CaptureQueriesContext(connection) as queries:
        events = guesses.finish_player(room.code, players[2].player_id, r.game_id, 1, "done")
    assert [e["type"] for e in events] == ["player_finished", "round_end", "room"]
    sql = [q["sql"] for q in queries.captured_queries]
    drawing_reads = [s for s in sql if s.startswith("SELECT") and 'FROM "recognizer_drawing"' in s]
    # The round end's one read; Cy's own store inserts without reading first.
    assert len(drawing_reads) == 1, drawing_reads
    assert not [s for s in sql if '"recognizer_modelversion"."metrics"' in s]
    stored = Drawing.objects.filter(game_id=r.game_id)
    assert stored.count() == 3
    assert {d.model_version.version for d in stored} == {"v-test"}
