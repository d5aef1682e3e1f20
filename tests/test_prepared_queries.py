"""Queries compiled once and run again with new values
(recognizer/prepared_queries.py) return what the ORM returns.

Each hot read the game prepares is held to its ORM queryset on the same rows,
for values that match and values that do not, on SQLite here and on the real
PostgreSQL (in a process of its own). What was tried against the compiling:
values of other types than the first call's, a value the field converts, a
value the SQL does not carry, a value used twice, an empty `__in` (Django
answers it without asking the database), and a lock outside a transaction.
"""

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from digitsite.game import finishing, guesses, rooms, rounds, snapshots
from digitsite.game.models import Room, RoundProgress, Seat
from recognizer.collection import store
from recognizer.models import ModelVersion
from recognizer.prepared_queries import PreparedQuery
from tests.support import run_race_script


def _fields(instance):
    if instance is None:
        return None
    return {field.attname: getattr(instance, field.attname)
            for field in type(instance)._meta.concrete_fields}


def _make_rows():
    """Two rooms (one a class with its teacher), their seats, some finished."""
    made = {}
    for code, classroom in (("PQAAAA", False), ("PQBBBB", True)):
        room = Room.objects.create(
            code=code, rounds=3, round_seconds=20.0, results_seconds=3.0, max_players=8,
            target_confidence=0.8, classroom=classroom, state=Room.State.PLAYING,
            game_id=f"game-{code}", round=2, target=7, kicked=["x"], targets=[7, 1],
            host_player=f"{code}-p0")
        seats = [Seat.objects.create(room=room, player_id=f"{code}-p{i}", name=f"P{i}",
                                     token_hash=f"{code}-t{i}", gone=(i == 3))
                 for i in range(4)]
        for i, seat in enumerate(seats[:3]):
            RoundProgress.objects.create(
                room=room, seat=seat, game_id=room.game_id, round_number=2, target=7,
                finished=(i != 1), drawing={"width": 1, "height": 1, "strokes": [[[0, 0, 0]]]},
                probabilities=[0.1] * 10, points=i)
        made[code] = (room, seats)
    ModelVersion.objects.create(version="pq-version", path="pq.pt", sha256="0" * 64)
    return made


def _finish_everyone_but(room, seats, keep):
    RoundProgress.objects.filter(room=room).exclude(seat=keep).update(finished=True)


def compare_hot_reads():
    """Each prepared read of the game against its ORM queryset: a report of
    {"compared": n, "mismatches": [...], "statements": [...]}."""
    made = _make_rows()
    report = {"compared": 0, "mismatches": []}

    def same(query, result, **values):
        ours = getattr(query, result)(**values)
        built = query.build(**values)
        if result == "first":
            ours, theirs = _fields(ours), _fields(built.first())
        else:
            theirs = built.exists() if result == "exists" else built.first()
        report["compared"] += 1
        if ours != theirs:
            report["mismatches"].append([result, repr(values), repr(ours), repr(theirs)])

    with transaction.atomic():
        for code in ("PQAAAA", "PQBBBB", "NOPE00", ""):
            same(rooms._ROOM_LOCKED, "first", code=code)
        for room, seats in made.values():
            for player in [s.player_id for s in seats] + ["nobody"]:
                same(guesses._SEAT, "first", player_id=player, room_id=room.pk)
            same(guesses._SEAT, "first", player_id=seats[0].player_id, room_id=room.pk + 100)
            for seat in seats:
                # Out of the column's range (a small integer): no row, as the ORM says.
                for game_id, round_number in ((room.game_id, 2), (room.game_id, 1), ("g", 2),
                                              (room.game_id, 40000), (room.game_id, -1),
                                              (room.game_id, 2**70)):
                    same(guesses._PROGRESS_LOCKED, "first", seat_id=seat.pk, game_id=game_id,
                         round_number=round_number)
            for teacher in ((), (seats[0].player_id,), (seats[1].player_id,)):
                extra = {"teacher": teacher[0]} if teacher else {}
                for game_id, round_number in ((room.game_id, 2), (room.game_id, 1)):
                    same(rounds._DRAWING_WITHOUT_FINISHING, "exists", room_id=room.pk,
                         game_id=game_id, round_number=round_number, **extra)
            # Everyone finished but the one still drawing, then everyone.
            _finish_everyone_but(room, seats, seats[1])
            Seat.objects.filter(pk=seats[2].pk).update(gone=True)
            for teacher in ((), (seats[1].player_id,)):
                extra = {"teacher": teacher[0]} if teacher else {}
                same(rounds._DRAWING_WITHOUT_FINISHING, "exists", room_id=room.pk,
                     game_id=room.game_id, round_number=2, **extra)
            RoundProgress.objects.filter(room=room).update(finished=True)
            same(rounds._DRAWING_WITHOUT_FINISHING, "exists", room_id=room.pk,
                 game_id=room.game_id, round_number=2)
        for name in ("pq-version", "no-such-version"):
            same(store.version_key_query(), "value", version=name)
        # The two counters a round's end adds to: the compiled UPDATE and the
        # ORM's change the same row by the same amount, and no row that is not there.
        for query, model, column, key, extra in (
                (snapshots._COUNT_CHANGE, Room, "revision", "room_id", {}),
                (finishing._ADD_POINTS, Seat, "score", "seat_id", {"points": 7})):
            row = model.objects.order_by("pk").first()
            before = getattr(row, column)
            ours = query.update(**{key: row.pk}, **extra)
            middle = model.objects.values_list(column, flat=True).get(pk=row.pk)
            built, changes = query.build(**{key: row.pk}, **extra)
            theirs = built.update(**changes)
            after = model.objects.values_list(column, flat=True).get(pk=row.pk)
            report["compared"] += 1
            step = extra.get("points", 1)
            if (ours, theirs, middle - before, after - middle) != (1, 1, step, step):
                report["mismatches"].append([column, ours, theirs, before, middle, after])
            missing = query.update(**{key: row.pk + 10_000}, **extra)
            if missing != 0:
                report["mismatches"].append([column, "missing row", missing])
        # The whole-room check the game asks, on a room read the game's way.
        for code in made:
            room = rooms.lock_room(code)
            report["compared"] += 1
            if rounds.all_finished(room) is not True:
                report["mismatches"].append(["all_finished", code])
        with CaptureQueriesContext(connection) as queries:
            rooms.lock_room("PQAAAA")
        report["statements"] = [q["sql"] for q in queries.captured_queries]
    # Each went the compiled way (none fell back to the ORM's) on this database.
    hot = {"lock_room": rooms._ROOM_LOCKED, "seat": guesses._SEAT,
           "progress": guesses._PROGRESS_LOCKED, "drawing": rounds._DRAWING_WITHOUT_FINISHING,
           "version": store.version_key_query(), "count_change": snapshots._COUNT_CHANGE,
           "add_points": finishing._ADD_POINTS}
    wrapper = connections[DEFAULT_DB_ALIAS]  # `connection` is a proxy of it
    report["unprepared"] = sorted(
        name for name, query in hot.items()
        if not query._plans.get(wrapper) or None in query._plans[wrapper].values())
    return report


@pytest.mark.django_db
def test_each_hot_read_returns_the_orms_rows_on_sqlite():
    report = compare_hot_reads()
    assert report["mismatches"] == []
    assert report["unprepared"] == []
    assert report["compared"] >= 60
    # One statement a read, the compiled SQL itself.
    assert len(report["statements"]) == 1
    assert report["statements"][0].startswith('SELECT "game_room"."id"')


PG_SCRIPT = r"""
from tests.test_prepared_queries import compare_hot_reads
print(json.dumps({"report": compare_hot_reads(), "vendor": connection.vendor}))
"""


@pytest.mark.services
def test_each_hot_read_returns_the_orms_rows_on_postgresql(own_postgres_database, tmp_path):
    result = run_race_script(PG_SCRIPT, database_url=own_postgres_database, tmp_path=tmp_path)
    assert result["vendor"] == "postgresql"
    report = result["report"]
    assert report["mismatches"] == []
    assert report["unprepared"] == []
    assert report["compared"] >= 60
    # The room's lock is taken: FOR UPDATE is in the compiled statement.
    assert len(report["statements"]) == 1 and "FOR UPDATE" in report["statements"][0]


# -- the compiling itself ----------------------------------------------------------


@pytest.fixture
def rows(db):
    return _make_rows()


def _room_by_code():
    return PreparedQuery(Room, lambda code: Room.objects.filter(code=code))


def test_a_query_is_compiled_once_per_connection_and_kind_of_values(rows):
    query = _room_by_code()
    for _ in range(20):
        assert query.first(code="PQAAAA").code == "PQAAAA"
        assert query.first(code="NOPE00") is None
    assert query.planned == 1
    with CaptureQueriesContext(connection) as queries:
        query.first(code="PQBBBB")
    assert len(queries.captured_queries) == 1
    assert "PQBBBB" in queries.captured_queries[0]["sql"]  # the value, not a stand-in


def test_a_value_of_another_type_is_planned_apart(rows):
    room = rows["PQAAAA"][0]
    query = PreparedQuery(Seat, lambda room_id: Seat.objects.filter(room_id=room_id))
    assert query.first(room_id=room.pk).room_id == room.pk
    # A string the field converts to an integer: the ORM's way, still right.
    assert query.first(room_id=str(room.pk)).room_id == room.pk
    assert query.planned == 2
    plans = list(query._plans.values())[0]
    assert sorted(plan is None for plan in plans.values()) == [False, True]


def test_an_update_the_orm_would_refuse_or_split_goes_the_orms_way(rows):
    room = rows["PQAAAA"][0]
    # A float the field converts: the ORM's way, the same change.
    points = PreparedQuery(Seat, lambda seat_id, points: (
        Seat.objects.filter(room_id=seat_id), {"score": F("score") + points}))
    assert points.update(seat_id=room.pk, points=1.0) == 4
    assert sorted(Seat.objects.filter(room=room).values_list("score", flat=True)) == [1] * 4
    ordered = PreparedQuery(Seat, lambda room_id: (
        Seat.objects.filter(room_id=room_id).order_by("name"), {"gone": True}))
    assert ordered.update(room_id=room.pk) == 4
    for query in (points, ordered):
        assert all(plan is None for plans in query._plans.values() for plan in plans.values())


def test_values_the_field_converts_or_the_sql_drops_go_the_orms_way(rows):
    room = rows["PQAAAA"][0]
    converted = PreparedQuery(Room, lambda confidence: Room.objects.filter(
        target_confidence=confidence))
    assert converted.first(confidence=0.8).pk in {r.pk for r in Room.objects.all()}
    ignored = PreparedQuery(Room, lambda code, unused: Room.objects.filter(code=code))
    assert ignored.first(code="PQAAAA", unused="x").pk == room.pk
    empty = PreparedQuery(Seat, lambda room_id: Seat.objects.filter(room_id=room_id, pk__in=[]))
    assert empty.first(room_id=room.pk) is None and empty.exists(room_id=room.pk) is False
    # A value query that is not a flat list: its first() is a tuple, as the ORM's.
    pairs = PreparedQuery(Room, lambda code: Room.objects.filter(code=code).values_list("pk"))
    assert pairs.value(code="PQAAAA") == (room.pk,)
    for query in (converted, ignored, empty, pairs):
        assert all(plan is None for plans in query._plans.values() for plan in plans.values())


def test_a_lookup_that_changes_its_value_goes_the_orms_way(rows):
    """What the stand-ins are made to catch: a lookup that escapes LIKE's
    characters, one that changes the case, arithmetic on a value. Each goes
    the ORM's way and answers as it does, `%` included."""
    room, seats = rows["PQAAAA"]
    iexact = PreparedQuery(Room, lambda code: Room.objects.filter(code__iexact=code))
    assert iexact.first(code="pqaaaa").pk == room.pk
    assert iexact.first(code="%") is None and iexact.first(code="PQ%") is None
    contains = PreparedQuery(Seat, lambda part: Seat.objects.filter(player_id__contains=part))
    assert contains.first(part="_p") is None
    shifted = PreparedQuery(Seat, lambda a, b, c: Seat.objects.filter(
        room_id=a, score=b, pk=c + 1))
    assert _fields(shifted.first(a=room.pk, b=0, c=seats[1].pk - 1)) == _fields(seats[1])
    for query in (iexact, contains, shifted):
        assert all(plan is None for plans in query._plans.values() for plan in plans.values())


def test_a_value_used_twice_is_put_in_both_places(rows):
    room, seats = rows["PQAAAA"]
    query = PreparedQuery(Seat, lambda player: Seat.objects.filter(
        player_id=player).exclude(name=player))
    for seat in seats:
        assert _fields(query.first(player=seat.player_id)) == _fields(seat)
    Seat.objects.filter(pk=seats[0].pk).update(name=seats[0].player_id)
    assert query.first(player=seats[0].player_id) is None
    assert all(plan is not None for plans in query._plans.values() for plan in plans.values())


@pytest.mark.django_db(transaction=True)
def test_a_lock_outside_a_transaction_fails_where_the_orm_fails():
    """Compiled inside a transaction, then asked outside one: PostgreSQL's
    lock would end with its statement, and both ways refuse it; SQLite,
    which takes no row locks, reads the row both ways."""
    _make_rows()
    query = PreparedQuery(Room, lambda code: Room.objects.select_for_update().filter(code=code))
    with transaction.atomic():
        assert query.first(code="PQAAAA").code == "PQAAAA"
    assert query.planned == 1
    if connection.features.has_select_for_update:
        with pytest.raises(transaction.TransactionManagementError):
            query.first(code="PQAAAA")
        with pytest.raises(transaction.TransactionManagementError):
            Room.objects.select_for_update().filter(code="PQAAAA").first()
    else:
        assert query.first(code="PQAAAA").code == "PQAAAA"
        assert Room.objects.select_for_update().filter(code="PQAAAA").first().code == "PQAAAA"
    assert query.planned == 1
