"""The end-of-game gallery and a player's correction of their own drawing.

First the rules on the database without a server (virtual time): what the
gallery holds, who may correct what and how often, and what the reviewers
see in the admin. Then the same over the protocol, through the real ASGI
application: every player gets the gallery after `game_over`, a class's
student only their own drawings, and `correct` is answered `corrected`.
"""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from digitsite.game import gallery, guesses, protocol, retention, seats
from digitsite.game import rounds as game_rounds
from digitsite.game.models import Room
from digitsite.game.rooms import create_room
from digitsite.game.rules import GameError
from recognizer.collection.corrections import CorrectionError, record_player_label
from recognizer.models import Drawing
from tests.test_admin_review import CHANGELIST, changelist_ids
from tests.test_game_consumers import join, new_room, one, seven
from tests.test_game_logic import DRAWING, prediction, seat

# A real 28x28 input: a diagonal line (what the gallery shows as a PNG).
INPUT = bytes(255 if row == col else 0 for row in range(28) for col in range(28))


@pytest.fixture
def room(db, manual_clock):
    """Two rounds of 20 s in virtual time; a target confidence of 0.8."""
    return create_room("Host", rounds=2, seconds=20, max_players=3, target_confidence=0.8,
                       results_seconds=3)


def draw(room, player, p_target, *, done=True):
    """The player draws (pen up) and, below the target confidence, says done."""
    r = Room.objects.get(pk=room.pk)
    accepted, events = guesses.record_guess(
        room.code, player.seat.player_id, r.game_id, r.round, drawing=DRAWING,
        input_bytes=INPUT, prediction=prediction(r.target, p_target), target=r.target,
        pen_up=True)
    assert accepted
    if done and not events:
        events = guesses.finish_player(room.code, player.seat.player_id, r.game_id, r.round,
                                       "done")
    return events


def play_game(room, manual_clock):
    """Ada draws in both rounds (read right in round 1 at 90%, wrong in round 2
    at 5%); Bob, opted out, draws in round 1 only; Cy never draws. The game
    ends; the room's row after it."""
    ada, bob, cy = seat(room.code, "Ada"), seat(room.code, "Bob"), seat(room.code, "Cy")
    seats.set_opt_out(bob.seat.player_id, True)
    game_rounds.start_game(room.code, ada.seat.player_id)
    draw(room, ada, 0.9)
    draw(room, bob, 0.5)
    guesses.finish_player(room.code, cy.seat.player_id, Room.objects.get(pk=room.pk).game_id,
                          1, "done")
    manual_clock.advance(3)  # the results pause
    game_rounds.advance(room.code)
    draw(room, ada, 0.05)  # below the other nine (0.106 each): read wrong whatever the target
    r = Room.objects.get(pk=room.pk)
    for player in (bob, cy):
        guesses.finish_player(room.code, player.seat.player_id, r.game_id, 2, "done")
    r = Room.objects.get(pk=room.pk)
    assert r.state == Room.State.FINISHED
    return ada, bob, cy, r


# -- the gallery, without a server -------------------------------------------------


def test_the_gallery_holds_every_drawing_of_the_game_round_by_round(room, manual_clock):
    """Ada's two drawings with what the model saw and read, Bob's (opted out)
    with nothing kept, and nothing for Cy, who drew nothing. Everyone in
    the room gets the same gallery."""
    ada, bob, cy, r = play_game(room, manual_clock)
    message = gallery.gallery_message(room.code, r.game_id, ada.seat.player_id)
    protocol.check(message)
    assert message["game"] == r.game_id and message["rounds"] == 2
    rows = [(d["round"], d["name"], d["target"], d["kept"], d["drawing_deleted"])
            for d in message["drawings"]]
    assert rows == [(1, "Ada", r.targets[0], True, False), (1, "Bob", r.targets[0], False, True),
                    (2, "Ada", r.targets[1], True, False)]
    first, bobs, second = message["drawings"]
    assert first["input"].startswith("data:image/png;base64,")
    assert first["digit"] == r.targets[0] and first["probability"] == pytest.approx(0.9)
    assert second["digit"] != r.targets[1] and second["target_probability"] == pytest.approx(0.05)
    # Deleted at the round's end: what the model saw and its probabilities;
    # the digit it read stays, as on the scoreboard.
    assert bobs["input"] is None and bobs["probability"] is None
    assert first["correction"] is None
    for viewer in (bob, cy):
        assert gallery.gallery_message(room.code, r.game_id, viewer.seat.player_id) == message
    assert gallery.gallery_message(room.code, "no-such-game", ada.seat.player_id) is None
    assert gallery.gallery_message("ZZZZZZ", r.game_id, ada.seat.player_id) is None


def test_a_gallery_at_the_most_players_and_rounds_stays_small(db, manual_clock):
    """The bound: 8 players drawing in 20 rounds, 160 drawings with real
    inputs (each a different diagonal band, so no two PNGs alike), is one
    message under 100 kB."""
    room = create_room("Host", rounds=20, seconds=20, max_players=8, target_confidence=1.0,
                       results_seconds=3)
    players = [seat(room.code, f"P{i}") for i in range(8)]
    game_rounds.start_game(room.code, players[0].seat.player_id)
    for round_number in range(1, 21):
        r = Room.objects.get(pk=room.pk)
        for index, player in enumerate(players):
            band = bytes(255 if abs(row - col - index + round_number % 7) < 3 else 0
                         for row in range(28) for col in range(28))
            guesses.record_guess(room.code, player.seat.player_id, r.game_id, round_number,
                                 drawing=DRAWING, input_bytes=band,
                                 prediction=prediction(r.target, 0.5), target=r.target,
                                 pen_up=True)
            guesses.finish_player(room.code, player.seat.player_id, r.game_id, round_number,
                                  "done")
        manual_clock.advance(3)
        game_rounds.advance(room.code)
    r = Room.objects.get(pk=room.pk)
    assert r.state == Room.State.FINISHED
    message = gallery.gallery_message(room.code, r.game_id, players[0].seat.player_id)
    assert len(message["drawings"]) == 160
    size = len(protocol.encode(message).encode())
    assert size < 100_000, size


# -- corrections, without a server ---------------------------------------------------


def test_a_player_corrects_their_own_kept_drawing_once(room, manual_clock):
    """Ada says her round-2 drawing (read wrong) was an other digit: it is
    recorded on the stored drawing, for the reviewers, and the label is
    untouched. A second word on it, and one that names the model's own
    reading, are refused; so is a digit out of range."""
    ada, _, _, r = play_game(room, manual_clock)
    stored = Drawing.objects.get(player_id=ada.seat.player_id, round_number=2)
    said = next(d for d in range(10) if d != stored.prediction)
    answer = gallery.correct(room.code, ada.seat.player_id, r.game_id, 2, said)
    protocol.check(answer)
    assert answer == {"type": "corrected", "game": r.game_id, "round": 2, "digit": said}
    stored.refresh_from_db()
    assert stored.player_label == said and stored.player_label_at is not None
    assert stored.label == r.targets[1]  # the label waits for a reviewer
    again = next(d for d in range(10) if d not in (stored.prediction, said))
    with pytest.raises(GameError) as caught:
        gallery.correct(room.code, ada.seat.player_id, r.game_id, 2, again)
    assert caught.value.code == "already_corrected"
    assert Drawing.objects.get(pk=stored.pk).player_label == said

    first = Drawing.objects.get(player_id=ada.seat.player_id, round_number=1)
    with pytest.raises(GameError) as caught:
        gallery.correct(room.code, ada.seat.player_id, r.game_id, 1, first.prediction)
    assert caught.value.code == "bad_message" and "already" in caught.value.message
    with pytest.raises(CorrectionError) as refused:
        record_player_label(game_id=r.game_id, round_number=1,
                            player_id=ada.seat.player_id, digit=10)
    assert refused.value.code == "not_a_digit"
    assert Drawing.objects.get(pk=first.pk).player_label is None


@pytest.mark.parametrize("who, round_number, why", [
    ("Bob", 1, "opted out: nothing of his is kept"),
    ("Cy", 1, "drew nothing"),
    ("Cy", 3, "no such round"),
    ("Ada", 9, "no such round"),
])
def test_only_a_drawing_of_ones_own_that_is_kept_can_be_corrected(room, manual_clock, who,
                                                                  round_number, why):
    """The player is the connection's own seat, never named in the message:
    Bob and Cy cannot reach Ada's drawings, and have none of their own kept."""
    players = dict(zip(("Ada", "Bob", "Cy"), play_game(room, manual_clock)[:3], strict=True))
    r = Room.objects.get(pk=room.pk)
    with pytest.raises(GameError) as caught:
        gallery.correct(room.code, players[who].seat.player_id, r.game_id, round_number, 3)
    assert caught.value.code == "no_drawing", why
    assert not Drawing.objects.filter(player_label__isnull=False).exists()


def test_a_round_still_being_drawn_cannot_be_corrected(room, manual_clock):
    ada = seat(room.code, "Ada")
    seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    draw(room, ada, 0.5, done=False)
    r = Room.objects.get(pk=room.pk)
    with pytest.raises(GameError) as caught:
        gallery.correct(room.code, ada.seat.player_id, r.game_id, 1, 3)
    assert caught.value.code == "no_drawing" and "not over" in caught.value.message


def test_corrections_last_as_long_as_the_room_is_kept(room, manual_clock, settings):
    """Once retention deletes the room (its seats and round progress), the
    drawing stays as training data but can no longer be corrected from the
    game: there is no seat to speak for it."""
    ada, _, _, r = play_game(room, manual_clock)
    assert gallery.gallery_message(room.code, r.game_id, ada.seat.player_id) is not None
    counts = retention.purge(now=timezone.now() + timedelta(days=31), days=30)
    assert counts.rooms == 1
    with pytest.raises(GameError) as caught:
        gallery.correct(room.code, ada.seat.player_id, r.game_id, 2, 3)
    assert caught.value.code == "not_joined"
    assert gallery.gallery_message(room.code, r.game_id, ada.seat.player_id) is None
    assert Drawing.objects.filter(player_id=ada.seat.player_id).count() == 2


def test_a_class_students_gallery_is_their_own_and_the_teacher_gets_none(db, manual_clock):
    klass = create_room("Teacher", classroom=True, rounds=1, seconds=20, results_seconds=3,
                        target_confidence=1.0)
    teacher = seat(klass.code, "Teacher")
    ada, bob = seat(klass.code, "Ada"), seat(klass.code, "Bob")
    game_rounds.start_game(klass.code, teacher.seat.player_id)
    draw(klass, ada, 0.4)
    draw(klass, bob, 0.6)
    r = Room.objects.get(pk=klass.pk)
    assert r.state == Room.State.FINISHED
    for student in (ada, bob):
        message = gallery.gallery_message(klass.code, r.game_id, student.seat.player_id)
        assert [d["player"] for d in message["drawings"]] == [student.seat.player_id]
    assert gallery.gallery_message(klass.code, r.game_id, teacher.seat.player_id) is None


@pytest.mark.django_db(transaction=True)
async def test_a_rooms_connections_share_one_read_of_its_gallery(manual_clock, monkeypatch):
    """Every connection asks for the gallery at once after game_over: an
    ordinary room's is read once for all of them, a class's per student."""
    room = await sync_to_async(create_room)("Host", rounds=2, seconds=20, max_players=3,
                                            target_confidence=0.8, results_seconds=3)
    ada, bob, cy, r = await sync_to_async(play_game)(room, manual_clock)
    expected = await sync_to_async(gallery.gallery_message)(room.code, r.game_id,
                                                            ada.seat.player_id)
    reads = []
    real = gallery.gallery_message

    def reads_of(room):
        return [args for args in reads if args[0] == room.code]

    def counting(*args, **kwargs):
        reads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(gallery, "gallery_message", counting)
    viewers = [p.seat.player_id for p in (ada, bob, cy)] * 3
    answers = await asyncio.gather(*(gallery.gallery_for(room.code, r.game_id, viewer)
                                     for viewer in viewers))
    assert answers == [expected] * len(viewers)
    # This room's reads: a gallery read of an earlier test's game may still
    # be running in the process.
    assert len(reads_of(room)) == 1
    # Nothing is kept once the read is done: a later ask reads again.
    assert await gallery.gallery_for(room.code, r.game_id, ada.seat.player_id) == expected
    assert len(reads_of(room)) == 2

    klass = await sync_to_async(create_room)("Teacher", classroom=True, rounds=1, seconds=20,
                                             results_seconds=3, target_confidence=1.0)
    teacher = await sync_to_async(seat)(klass.code, "Teacher")
    students = [await sync_to_async(seat)(klass.code, name) for name in ("Ada", "Bob")]
    await sync_to_async(game_rounds.start_game)(klass.code, teacher.seat.player_id)
    for student, p in zip(students, (0.4, 0.6), strict=True):
        await sync_to_async(draw)(klass, student, p)
    game = (await Room.objects.aget(pk=klass.pk)).game_id
    reads.clear()
    answers = await asyncio.gather(*(gallery.gallery_for(klass.code, game, s.seat.player_id)
                                     for s in [*students, teacher]))
    assert [[d["player"] for d in a["drawings"]] for a in answers[:2]] == [
        [s.seat.player_id] for s in students]
    assert answers[2] is None
    assert len(reads_of(klass)) == 3


# -- what the reviewers see ---------------------------------------------------------


def test_the_admin_shows_and_filters_the_players_word(admin_client, room, manual_clock):
    ada, _, _, r = play_game(room, manual_clock)
    first = Drawing.objects.get(player_id=ada.seat.player_id, round_number=1)
    second = Drawing.objects.get(player_id=ada.seat.player_id, round_number=2)
    said = next(d for d in range(10) if d not in (second.prediction, second.label))
    gallery.correct(room.code, ada.seat.player_id, r.game_id, 2, said)
    assert changelist_ids(admin_client, player_says="any") == [second.pk]
    assert changelist_ids(admin_client, player_says="differs") == [second.pk]
    assert changelist_ids(admin_client, player_says="none") == [first.pk]
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert f"(player says {said})" in html and "player&#x27;s correction" in html
    page = admin_client.get(reverse("admin:recognizer_drawing_change", args=[second.pk]))
    assert "Player says" in page.content.decode()
    # The review queue's cards carry it too.
    batch = admin_client.get(reverse("admin:recognizer_drawing_review_batch")).json()
    words = {card["id"]: card["player_label"] for card in batch["drawings"]}
    assert words == {first.pk: None, second.pk: said}


# -- over the protocol ----------------------------------------------------------------


@sync_to_async
def stored(player_id, round_number):
    return Drawing.objects.get(player_id=player_id, round_number=round_number)


@pytest.mark.django_db(transaction=True)
async def test_over_the_protocol_everyone_gets_the_gallery_and_corrects_their_own(
        active_model, manual_clock):
    """A one-round game of Ada and Bob: after `game_over` both get the same
    gallery of both drawings. Ada's `correct` of her drawing is answered
    `corrected` (to her alone) and a second one `already_corrected`; Bob's
    `correct` of the round reaches his own drawing, never Ada's; a digit out
    of range is a bad message."""
    game_room = await new_room(rounds=1)
    ada = await join(game_room.code, "Ada")
    bob = await join(game_room.code, "Bob")
    await ada.send("start")
    for client in (ada, bob):
        await client.expect("round_start")
    for client, drawing in ((ada, seven()), (bob, one())):
        await client.send("draw", round=1, seq=1, drawing=drawing, pen_up=True)
        await client.expect("guess", seq=1)
        await client.send("done", round=1)
    over = {c.you["name"]: await c.expect("game_over") for c in (ada, bob)}
    galleries = {c.you["name"]: await c.expect("gallery") for c in (ada, bob)}
    protocol.check(galleries["Ada"])
    assert galleries["Ada"] == galleries["Bob"]
    assert galleries["Ada"]["game"] == over["Ada"]["game"]
    assert [d["name"] for d in galleries["Ada"]["drawings"]] == ["Ada", "Bob"]
    assert all(d["kept"] and d["input"] for d in galleries["Ada"]["drawings"])

    game_id = over["Ada"]["game"]
    mine = galleries["Ada"]["drawings"][0]
    said = (mine["digit"] + 1) % 10
    await ada.send("correct", game=game_id, round=1, digit=said)
    answer = await ada.expect("corrected")
    protocol.check(answer)
    assert (answer["round"], answer["digit"]) == (1, said)
    assert (await stored(ada.you["id"], 1)).player_label == said
    other = next(d for d in range(10) if d not in (mine["digit"], said))
    await ada.send("correct", game=game_id, round=1, digit=other)
    assert (await ada.error("already_corrected"))["for"] == "correct"
    await ada.send("correct", game=game_id, round=1, digit=10)
    assert "digit" in (await ada.error("bad_message"))["message"]
    await ada.send("correct", game="x" * 65, round=1, digit=1)
    assert "too long" in (await ada.error("bad_message"))["message"]

    bobs = galleries["Bob"]["drawings"][1]
    await bob.send("correct", game=game_id, round=1, digit=(bobs["digit"] + 1) % 10)
    await bob.expect("corrected")
    assert (await stored(bob.you["id"], 1)).player_label == (bobs["digit"] + 1) % 10
    assert (await stored(ada.you["id"], 1)).player_label == said
    # Nobody was told of another's correction.
    await bob.send("ping")
    await bob.expect("pong")
    assert [m for m in bob.seen if m["type"] == "corrected"] == [
        {"type": "corrected", "game": game_id, "round": 1, "digit": (bobs["digit"] + 1) % 10}]

    # Coming back to the finished room, the gallery comes again with the word in it.
    await ada.close()
    again = await join(game_room.code, "Ada", token=ada.you["token"])
    regallery = await again.expect("gallery")
    assert regallery["drawings"][0]["correction"] == said
    assert regallery["drawings"][1]["correction"] == (bobs["digit"] + 1) % 10
    await again.close()
    await bob.close()


def test_the_protocol_declares_correct_and_the_gallery():
    fields = {field.name: field for field in protocol.CLIENT_MESSAGES["correct"]}
    assert set(fields) == {"game", "round", "digit"} and all(f.required for f in fields.values())
    assert protocol.correct("g", 2, 4) == {"type": "correct", "game": "g", "round": 2, "digit": 4}
    with pytest.raises(GameError):
        protocol.read({"type": "correct", "game": "g", "round": 1, "digit": -1})
    with pytest.raises(GameError):
        protocol.read({"type": "correct", "game": "g", "round": 1, "digit": True})
