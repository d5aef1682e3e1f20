"""A scored drawing's conditional UPDATE, as the game's own SQL, changes
exactly what Django's ORM statement changes.

Each case starts from the same playing room and writes one drawing both ways
(each inside a transaction rolled back afterwards), then compares the rows
written and the whole progress table after. The cases are the conditions the
statement carries: the round on, the player's part in it not over, the
target, the room's target confidence for a drawing with the pen up, the
round's best raised and never lowered. This file also runs on PostgreSQL
(tests/test_scaleout.py's PERSISTENCE_TESTS).
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from digitsite.game import clock, guess_update, guesses, rooms, snapshots
from digitsite.game import rounds as game_rounds
from digitsite.game.models import Room, RoundProgress
from tests.support import wait_until
from tests.test_game_logic import DRAWING, INPUT, prediction, seat

# A drawing with what JSON makes of it: floats, nesting, text beyond ASCII.
ODD_DRAWING = {"width": 333.5, "height": 1e-3, "strokes": [[[0.1, 2e10, -3.0], [4.25, 5.0, 6.0]]],
               "note": "ünï ✓"}


@pytest.fixture
def playing(db, manual_clock):
    """A room of two playing round 1 (target confidence 0.8), and a second room."""
    room = rooms.create_room("Host", rounds=2, seconds=20, max_players=3, target_confidence=0.8,
                             results_seconds=3)
    ada, bob = seat(room.code, "Ada"), seat(room.code, "Bob")
    game_rounds.start_game(room.code, ada.seat.player_id)
    other = rooms.create_room("Other", rounds=2, seconds=20, target_confidence=0.8)
    cy = seat(other.code, "Cy")
    game_rounds.start_game(other.code, cy.seat.player_id)
    # A first drawing each, through the locked path, makes the rows the
    # conditional UPDATE then writes.
    for where, player in ((room, ada), (room, bob), (other, cy)):
        where = Room.objects.get(pk=where.pk)
        accepted, _ = guesses.record_guess(
            where.code, player.seat.player_id, where.game_id, 1, drawing=DRAWING,
            input_bytes=INPUT, prediction=prediction(where.target, 0.1))
        assert accepted
    RoundProgress.objects.filter(room=room).update(best_target_probability=0.7)
    return {"room": Room.objects.get(pk=room.pk), "ada": ada, "bob": bob,
            "other": Room.objects.get(pk=other.pk), "cy": cy}


def write_args(playing, p_target=0.5, drawing=DRAWING):
    room = playing["room"]
    return {
        "code": room.code, "player_id": playing["ada"].seat.player_id, "game_id": room.game_id,
        "round_number": room.round, "target": room.target,
        "ends_after": clock.now() - game_rounds.GRACE, "below": None,
        "values": guess_update.plain_values(prediction(room.target, p_target), p_target,
                                            drawing, INPUT),
        "drawings": 1, "best": None,
    }


def table():
    return list(RoundProgress.objects.order_by("pk").values())


def both_ways(args):
    """(rows written, the table after) through the game's SQL, then through the ORM."""
    results = []
    for update in (guess_update.update_latest, guess_update.update_with_orm):
        with transaction.atomic():
            results.append((update(**args), table()))
            transaction.set_rollback(True)
    return results


def _finished(p):
    RoundProgress.objects.filter(seat=p["ada"].seat).update(finished=True)


def _results_shown(p):
    Room.objects.filter(pk=p["room"].pk).update(state=Room.State.RESULTS)


# (name, changes to the write, changes to the room before it, rows written)
CASES = [
    ("pen down", {}, None, 1),
    ("several held drawings", {"drawings": 4}, None, 1),
    ("pen up below the target confidence", {"below": 0.5, "best": 0.5}, None, 1),
    ("pen up at the target confidence", {"below": 0.8, "best": 0.8}, None, 0),
    ("a best that raises the round's", {"best": 0.75}, None, 1),
    ("a best below the round's", {"best": 0.3}, None, 1),
    ("the player's round is over", {}, _finished, 0),
    ("the room shows results", {}, _results_shown, 0),
    ("another target", {"target": "next"}, None, 0),
    ("another round", {"round_number": 2}, None, 0),
    ("another game", {"game_id": "another-game"}, None, 0),
    ("the round closed", {"ends_after": "round end"}, None, 0),
    ("another room's code", {"code": "other room"}, None, 0),
    ("a player of another room", {"player_id": "cy"}, None, 0),
    ("an unknown player", {"player_id": "nobody"}, None, 0),
]


def case_args(playing, changes, before):
    """A case's write: the room changed by `before`, then write_args with the
    case's `changes` (named values resolved against the rooms)."""
    if before is not None:
        before(playing)
    args = write_args(playing)
    room = playing["room"]
    named = {"next": (room.target + 1) % 10, "round end": room.ends_at,
             "other room": playing["other"].code, "cy": playing["cy"].seat.player_id}
    args.update({k: named.get(v, v) if isinstance(v, str) else v for k, v in changes.items()})
    return args


@pytest.mark.parametrize("changes, before, written", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_the_games_sql_writes_what_the_orm_writes(playing, changes, before, written):
    args = case_args(playing, changes, before)
    ours, django = both_ways(args)
    assert ours[0] == written, "the case does not test what it says"
    assert ours == django


def test_the_written_row_holds_the_drawing_and_the_counts(playing):
    args = write_args(playing, p_target=0.625, drawing=ODD_DRAWING)
    args.update(drawings=3, best=0.75, below=0.625)
    before = RoundProgress.objects.get(seat=playing["ada"].seat)
    ours, django = both_ways(args)
    assert ours == django
    assert guess_update.update_latest(**args) == 1
    after = RoundProgress.objects.get(seat=playing["ada"].seat)
    assert after.drawing == ODD_DRAWING
    assert bytes(after.input_image) == INPUT
    assert after.target_probability == 0.625
    assert after.best_target_probability == 0.75
    assert after.guesses == before.guesses + 3
    assert after.model_version == "v-test" and after.prediction == prediction(
        playing["room"].target, 0.625).digit
    # Bob's row is untouched.
    assert RoundProgress.objects.get(seat=playing["bob"].seat).guesses == 1


def test_one_flat_statement_on_this_database(playing):
    """On SQLite and PostgreSQL the write is the game's one statement, not the
    ORM's (two nested subqueries over three joined tables)."""
    assert guess_update.has_statement(connection), connection.vendor
    with CaptureQueriesContext(connection) as queries:
        assert guess_update.update_latest(**write_args(playing)) == 1
    [query] = queries.captured_queries
    assert query["sql"].startswith('UPDATE "game_roundprogress" SET "drawing" = ')
    assert "U0" not in query["sql"] and "V0" not in query["sql"]


def test_a_round_past_its_grace_is_not_written(playing):
    """The game's clock moves past the round's end and its grace: no row matches."""
    room = playing["room"]
    args = write_args(playing)
    args["ends_after"] = room.ends_at + timedelta(microseconds=1)
    assert guess_update.update_latest(**args) == 0
    args["ends_after"] = room.ends_at - timedelta(microseconds=1)
    assert guess_update.update_latest(**args) == 1


def test_a_done_reads_the_players_rows_once_and_inserts_its_drawing_unread(playing):
    """A `done`'s change, before its commit: the room locked, the seat and
    the progress row read once each (the progress locked as it is read, and
    not read back after its write), the progress and the score written once
    each, the drawing inserted without a read first, and last one read of
    whether everyone has finished. 13 statements in all, nothing after the
    commit; 15 when a snapshot was read after it, 19 before that."""
    room, ada = playing["room"], playing["ada"]
    with CaptureQueriesContext(connection) as queries:
        messages = guesses.finish_player(room.code, ada.seat.player_id, room.game_id, 1, "done")
    sql = [q["sql"] for q in queries.captured_queries]
    commit = max(i for i, statement in enumerate(sql) if statement.startswith("RELEASE"))
    *change, everyone = sql[:commit]
    assert everyone.startswith("SELECT") and 'FROM "game_seat"' in everyone
    assert '"game_roundprogress"' in everyone

    def reads(table):
        return [s for s in change if s.startswith("SELECT") and f'FROM "{table}"' in s]

    def writes(verb, table):
        return [s for s in change if s.startswith(f'{verb} "{table}"')
                or s.startswith(f'{verb} INTO "{table}"')]

    assert len(reads("game_room")) == 1 and len(reads("game_seat")) == 1
    [progress_read] = reads("game_roundprogress")
    if connection.features.has_select_for_update:  # PostgreSQL; SQLite locks the database
        assert progress_read.endswith("FOR UPDATE"), progress_read
    assert not reads("recognizer_drawing")
    assert len(writes("UPDATE", "game_roundprogress")) == 1
    assert len(writes("UPDATE", "game_seat")) == 1
    assert len(writes("INSERT", "recognizer_drawing")) == 1
    assert len(sql) == 13 and commit == len(sql) - 1, sql  # with the test's SAVEPOINT and RELEASE
    finished = messages[0]
    assert finished["type"] == "player_finished" and finished["reason"] == "done"
    seat = ada.seat.__class__.objects.get(pk=ada.seat.pk)
    assert finished["score"] == seat.score == finished["points"] > 0
    progress = RoundProgress.objects.get(seat=seat, round_number=1)
    assert progress.finished and progress.reason == "done"
    assert progress.points == finished["points"]


def test_a_done_announces_itself_alone_and_the_last_one_ends_the_round(playing):
    """After a `done` is committed nothing is read: its `player_finished` is
    all it announces, its count is the room's revision, and a snapshot read
    later shows it. The last player's `done` ends the round."""
    room, ada, bob = playing["room"], playing["ada"], playing["bob"]
    before = Room.objects.get(pk=room.pk).revision
    with CaptureQueriesContext(connection) as queries:
        messages = guesses.finish_player(room.code, ada.seat.player_id, room.game_id, 1, "done")
    assert [m["type"] for m in messages] == ["player_finished"]
    sql = [q["sql"] for q in queries.captured_queries]
    assert sql[-1].startswith("RELEASE SAVEPOINT"), sql[-1]
    assert Room.objects.get(pk=room.pk).revision == before + 1
    snapshot = snapshots.catch_up(room.code)[0]
    assert {p["id"]: p["finished"] for p in snapshot["players"]} == {
        ada.seat.player_id: True, bob.seat.player_id: False}

    messages = guesses.finish_player(room.code, bob.seat.player_id, room.game_id, 1, "done")
    assert "round_end" in [m["type"] for m in messages]
    assert Room.objects.get(pk=room.pk).state == Room.State.RESULTS


FINISH_FIELDS = ("finished", "finished_at", "reason", "points", "seconds")


def first_write_row(room, player, *, pen_up, p_target, drawings, best, through_orm):
    """The player's row after a first drawing of the round (the row removed
    before): written by record_guess, or as it wrote it before (get_or_create
    with the defaults, then the ORM's UPDATE)."""
    seat_row = player.seat.__class__.objects.get(pk=player.seat.pk)
    RoundProgress.objects.filter(seat=seat_row, round_number=1).delete()
    guess = prediction(room.target, p_target)
    if through_orm:
        progress, _ = RoundProgress.objects.get_or_create(
            seat=seat_row, game_id=room.game_id, round_number=1,
            defaults={"room": room, "target": room.target})
        updates = guesses._progress_updates(guess, p_target, DRAWING, INPUT, pen_up=pen_up,
                                            drawings=drawings, best=best)
        if pen_up and p_target >= room.target_confidence:
            updates["reached_at"] = clock.now()
        RoundProgress.objects.filter(pk=progress.pk).update(**updates)
    else:
        accepted, _ = guesses.record_guess(
            room.code, seat_row.player_id, room.game_id, 1, drawing=DRAWING,
            input_bytes=INPUT, prediction=guess, target=room.target, pen_up=pen_up,
            drawings=drawings, best=best)
        assert accepted
    row = RoundProgress.objects.filter(seat=seat_row, round_number=1).values().get()
    # Compared whole but for its key, and, where the drawing reaches the
    # target (which record_guess then finishes), for the finishing fields.
    reached = pen_up and p_target >= room.target_confidence
    return {key: value for key, value in row.items()
            if key != "id" and not (reached and key in FINISH_FIELDS)}


@pytest.mark.parametrize("pen_up, p_target, drawings, best", [
    (False, 0.5, 1, None),  # pen down
    (True, 0.5, 1, None),  # pen up, below the target confidence
    (False, 0.3, 4, 0.6),  # held drawings replaced, one of them finished
    (True, 0.2, 3, 0.75),  # a finished one held at a better reading than this one
    (True, 0.95, 2, None),  # reaching the target: the round's end follows
])
def test_a_first_drawing_is_inserted_as_get_or_create_and_update_wrote_it(
        playing, pen_up, p_target, drawings, best):
    """A player's first drawing of the round is one INSERT with its values;
    the row is the one the two statements before it made, field by field
    (the finishing fields aside: a drawing that reaches the target finishes
    the round either way)."""
    room, ada = playing["room"], playing["ada"]
    rows = []
    for through_orm in (False, True):
        with transaction.atomic():
            rows.append(first_write_row(room, ada, pen_up=pen_up, p_target=p_target,
                                        drawings=drawings, best=best, through_orm=through_orm))
            transaction.set_rollback(True)
    assert rows[0] == rows[1]
    assert rows[0]["guesses"] == drawings and rows[0]["drawing"] == DRAWING
    if "finished" in rows[0]:
        assert rows[0]["finished"] is False


def test_a_first_drawing_of_the_round_takes_two_statements_outside_a_transaction(playing):
    """The conditional UPDATE finds no row; the conditional INSERT makes it,
    without the room's transaction and its lock (four statements before)."""
    room, ada = playing["room"], playing["ada"]
    RoundProgress.objects.filter(seat__player_id=ada.seat.player_id).delete()
    with CaptureQueriesContext(connection) as queries:
        accepted, _ = guesses.record_guess(
            room.code, ada.seat.player_id, room.game_id, 1, drawing=DRAWING, input_bytes=INPUT,
            prediction=prediction(room.target, 0.3), target=room.target)
    assert accepted
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == 2, sql
    assert sql[0].startswith('UPDATE "game_roundprogress"')
    assert sql[1].startswith('INSERT INTO "game_roundprogress"')
    assert "ON CONFLICT" in sql[1]
    if connection.vendor == "postgresql":
        assert "FOR KEY SHARE OF r" in sql[1]
    row = RoundProgress.objects.get(seat__player_id=ada.seat.player_id)
    assert (row.guesses, row.drawing, row.finished) == (1, DRAWING, False)


def _gone(p):
    p["ada"].seat.__class__.objects.filter(pk=p["ada"].seat.pk).update(gone=True)


# (name, changes to the write, changes to the room before it, keep Ada's row,
# rows written)
INSERT_CASES = [
    ("pen down", {}, None, False, 1),
    ("several held drawings", {"drawings": 4, "best": 0.3}, None, False, 1),
    ("pen up below the target confidence", {"below": 0.5, "best": 0.5}, None, False, 1),
    ("pen up at the target confidence", {"below": 0.8, "best": 0.8}, None, False, 0),
    ("a row for the round already", {}, None, True, 0),
    ("the player's round is over", {}, _finished, True, 0),
    ("the room shows results", {}, _results_shown, False, 0),
    ("another target", {"target": "next"}, None, False, 0),
    ("another round", {"round_number": 2}, None, False, 0),
    ("another game", {"game_id": "another-game"}, None, False, 0),
    ("the round closed", {"ends_after": "round end"}, None, False, 0),
    ("another room's code", {"code": "other room"}, None, False, 0),
    ("a player of another room", {"player_id": "cy"}, None, False, 0),
    ("an unknown player", {"player_id": "nobody"}, None, False, 0),
    ("a player who left", {}, _gone, False, 0),
]


@pytest.mark.parametrize("changes, before, keep_row, written", [c[1:] for c in INSERT_CASES],
                         ids=[c[0] for c in INSERT_CASES])
def test_a_first_drawings_insert_makes_a_row_only_while_the_players_round_is_on(
        playing, changes, before, keep_row, written):
    """The INSERT's conditions are the UPDATE's, the room's target for the
    row's; where it writes nothing the table is as it was, and the locked
    path decides."""
    if not keep_row:
        RoundProgress.objects.filter(seat=playing["ada"].seat).delete()
    args = case_args(playing, changes, before)
    rows_before = table()
    assert guess_update.insert_first(**args) == written
    rows_after = table()
    if not written:
        assert rows_after == rows_before
        return
    [new] = [row for row in rows_after if row["id"] not in {r["id"] for r in rows_before}]
    room = playing["room"]
    assert new["seat_id"] == playing["ada"].seat.pk and new["room_id"] == room.pk
    assert (new["target"], new["guesses"], new["finished"]) == (room.target, args["drawings"],
                                                                 False)
    assert new["best_target_probability"] == (args["best"] or 0.0)


@pytest.mark.django_db(transaction=True)
def test_a_first_drawing_meeting_a_round_end_under_way_waits_and_finds_it_over(manual_clock):
    """PostgreSQL: while a round's end holds the room's row, a first drawing's
    INSERT waits for it (it takes the row FOR KEY SHARE), then finds the
    round over and writes nothing. Without the wait the row went in beside
    the round's end, whose own row for the player then broke the
    one-row-per-round constraint."""
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's: SQLite runs one writer at a time")
    room = rooms.create_room("Host", rounds=2, seconds=20, target_confidence=0.8)
    ada = seat(room.code, "Ada")
    game_rounds.start_game(room.code, ada.seat.player_id)
    playing = {"room": Room.objects.get(pk=room.pk), "ada": ada}
    args = write_args(playing)
    written = []

    backend = []

    def first_drawing():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend.append(cursor.fetchone()[0])
            written.append(guess_update.insert_first(**args))
        finally:
            connections.close_all()

    with transaction.atomic():
        rooms.lock_room(room.code)
        writer = threading.Thread(target=first_drawing)
        writer.start()

        def waiting_for_a_lock():
            if not backend:
                return False
            with connections["default"].cursor() as cursor:
                # pg_locks is read live; pg_stat_activity keeps one view a transaction.
                cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted",
                               [backend[0]])
                return cursor.fetchone()[0] >= 1

        wait_until(waiting_for_a_lock, timeout=60, what="the first drawing's INSERT waiting")
        Room.objects.filter(pk=room.pk).update(state=Room.State.RESULTS)
    writer.join()
    assert written == [0]
    assert not RoundProgress.objects.filter(seat=ada.seat).exists()
