"""A scored drawing written as a player's latest for the round in one
conditional UPDATE, its SQL written once per database (guesses.record_guess's
common case: a later drawing that does not reach the target), and a first
drawing of the round in one conditional INSERT (insert_first).

Why not the ORM statement: Django builds and compiles the statement again on
every call, and nests its filter in two subqueries over three joined tables
(its answer to an UPDATE filtered across relations); here the two related
tables are asked once each. Measured in the game's process
(bench/bench_guess_write.py, CPU a write, the two in turns), the ORM's
statement cost 5.7-6.7x this one's on SQLite and 4.1x on PostgreSQL; at one
write per five guesses (digitsite.game.drawing_writes) that was about a
tenth of a guess's server CPU.

What it changes is what the ORM statement changes: `update_with_orm` is
that statement, kept as the reference the tests compare this one with, case
by case, on SQLite and on PostgreSQL, and used on any other database. Values
are converted for the database by the model fields themselves
(`get_db_prep_save`, `get_db_prep_value`), as the ORM converts them. One
difference shows only under concurrency on PostgreSQL, and it is this
statement's to keep: where an UPDATE waits for a row another transaction
holds (a `done`, a round's end), PostgreSQL checks the row's new version
against the statement's own conditions only. The ORM's statement keeps
`finished = false` inside its subquery, read before the wait, so it could
still write a drawing over a round that had just finished; here the
condition is on the row itself, and such a row is left alone.
"""

from django.db import connections, router, transaction
from django.db.models import F, FloatField, Value
from django.db.models.functions import Greatest

from digitsite.game.models import Room, RoundProgress, Seat

# The columns a scored drawing sets as they are, in the order of the SQL's
# parameters.
PLAIN_COLUMNS = ("drawing", "input_image", "prediction", "probabilities", "model_version",
                 "target_probability")

# Django's own spelling of Greatest, which the ORM statement uses: SQLite's
# MAX() of two values, PostgreSQL's GREATEST(). The column is NOT NULL, so
# their difference on NULL never shows.
_GREATEST = {"sqlite": "MAX", "postgresql": "GREATEST"}

_statements = {}


def plain_values(prediction, target_probability, drawing, input_bytes):
    """The columns a scored drawing sets as they are."""
    return {
        "drawing": drawing,
        "input_image": bytes(input_bytes),
        "prediction": prediction.digit,
        "probabilities": [float(p) for p in prediction.probabilities],
        "model_version": prediction.version or "",
        "target_probability": target_probability,
    }


def orm_updates(values, *, drawings, best):
    """The ORM's form of a scored drawing's write: `values` (plain_values),
    `drawings` more guesses, and the round's best raised to `best` (None:
    left as it is)."""
    updates = dict(values, guesses=F("guesses") + drawings)
    if best is not None:
        updates["best_target_probability"] = Greatest(
            "best_target_probability", Value(best, output_field=FloatField()))
    return updates


def update_latest(*, code, player_id, game_id, round_number, target, ends_after, below,
                  values, drawings, best):
    """Write a scored drawing as the player's latest, only while the player's
    round is on. Returns the number of rows written: 1, or 0 when the round
    or the player's part in it is over (or, with `below`, when the drawing's
    target probability is not below the room's target confidence).

    `ends_after`: the round must end after this moment; `below`: the room's
    target confidence must be above it (None: no such condition); `values`:
    plain_values; `drawings`: guesses this write stands for; `best`: the
    round's best is raised to it (None: left as it is).
    """
    alias = router.db_for_write(RoundProgress)
    connection = connections[alias]
    sql = _statement(connection, below is not None, best is not None)
    if sql is None:
        return update_with_orm(
            code=code, player_id=player_id, game_id=game_id, round_number=round_number,
            target=target, ends_after=ends_after, below=below, values=values,
            drawings=drawings, best=best)
    params = [_field(RoundProgress, name).get_db_prep_save(values[name], connection)
              for name in PLAIN_COLUMNS]
    params.append(drawings)
    if best is not None:
        params.append(float(best))
    params += [
        _lookup(RoundProgress, "game_id", game_id, connection),
        _lookup(RoundProgress, "round_number", round_number, connection),
        _lookup(RoundProgress, "target", target, connection),
        _lookup(Seat, "player_id", player_id, connection),
        *_room_params(connection, code, game_id, round_number, ends_after),
    ]
    if below is not None:
        params.append(_lookup(Room, "target_confidence", below, connection))
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert_first(*, code, player_id, game_id, round_number, target, ends_after, below,
                 values, drawings, best):
    """Write a player's first scored drawing of the round as a new row, only
    while the round is on, with the conditions of update_latest (the room's
    target in place of the row's). Returns 1, or 0 when the player already
    has a row for the round (their round may be over), the round is not on
    or, with `below`, the drawing reaches the target; the caller's locked
    path then decides. Always 0 on a database without the game's SQL.

    One statement, where the locked path took four and a transaction (the
    room locked, the seat and the row read, the row inserted): a first
    drawing comes once a player and round, and in the load benchmark's short
    rounds that path was a fifth of the database thread's time. The row is
    the one the locked path inserts, field by field (its other columns get
    the model's defaults), which the tests check. The round's rows are
    otherwise made with the room locked (a `done`, a round's end), so on
    PostgreSQL the statement takes the room's row FOR KEY SHARE, which waits
    for the room's lock (FOR UPDATE, digitsite.game.rooms.lock_room) and for
    nothing else: one that waits for a round's end then finds it over (the
    row's new version is checked again), and a round's end never meets a
    row being inserted that it did not see. (The insert's foreign key check
    takes the same lock, but after the statement has read the room: without
    the lock in the statement, a first drawing that waited for a round's end
    went in after it, and the tests show it.) SQLite runs one writer at a
    time. A caller must not be inside a transaction of its own: the lock
    would then last until its commit. A row that exists already is left as it is (ON CONFLICT DO
    NOTHING, on the one-row-per-round constraint).
    """
    alias = router.db_for_write(RoundProgress)
    connection = connections[alias]
    sql = _insert_statement(connection, below is not None)
    if sql is None:
        return 0
    params = []
    for field in _insert_fields():
        if field.name in PLAIN_COLUMNS:
            params.append(field.get_db_prep_save(values[field.name], connection))
        elif field.name == "game_id":
            params.append(_lookup(RoundProgress, "game_id", game_id, connection))
        elif field.name == "round_number":
            params.append(_lookup(RoundProgress, "round_number", round_number, connection))
        elif field.name == "guesses":
            params.append(drawings)
        elif field.name == "best_target_probability":
            # The UPDATE's GREATEST(0.0, best): probabilities are not negative.
            params.append(0.0 if best is None else float(best))
        elif field.name not in _FROM_THE_ROOM:
            params.append(field.get_db_prep_save(field.get_default(), connection))
    params += [*_room_params(connection, code, game_id, round_number, ends_after),
               _lookup(Room, "target", target, connection)]
    if below is not None:
        params.append(_lookup(Room, "target_confidence", below, connection))
    params.append(_lookup(Seat, "player_id", player_id, connection))
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# The first row's columns taken from the room and the seat the statement reads.
_FROM_THE_ROOM = {"room": "r.{id}", "seat": "s.{id}", "target": "r.{target}"}


def _insert_fields():
    return [field for field in RoundProgress._meta.concrete_fields if not field.primary_key]


def _insert_statement(connection, with_below):
    return _cached(_build_insert, connection, with_below)


def _build_insert(connection, with_below):
    quote = connection.ops.quote_name

    def column(model, name):
        return _column(connection, model, name)

    fields = _insert_fields()
    selected = []
    for field in fields:
        if field.name in _FROM_THE_ROOM:
            selected.append(_FROM_THE_ROOM[field.name].format(
                id=column(Room, "id"), target=column(Room, "target")))
        else:
            selected.append("%s")
    conditions = _room_conditions(connection, "r.")
    conditions.append(f"r.{column(Room, 'target')} = %s")
    if with_below:
        conditions.append(f"r.{column(Room, 'target_confidence')} > %s")
    conditions.append(f"s.{column(Seat, 'player_id')} = %s")
    conditions.append(f"NOT s.{column(Seat, 'gone')}")
    lock = " FOR KEY SHARE OF r" if connection.vendor == "postgresql" else ""
    unique = ", ".join(column(RoundProgress, name)
                       for name in ("seat", "game_id", "round_number"))
    return (
        f"INSERT INTO {quote(RoundProgress._meta.db_table)}"
        f" ({', '.join(quote(field.column) for field in fields)})"
        f" SELECT {', '.join(selected)}"
        f" FROM {quote(Room._meta.db_table)} r INNER JOIN {quote(Seat._meta.db_table)} s"
        f" ON s.{column(Seat, 'room')} = r.{column(Room, 'id')}"
        f" WHERE {' AND '.join(conditions)}{lock}"
        f" ON CONFLICT ({unique}) DO NOTHING"
    )


def update_with_orm(*, code, player_id, game_id, round_number, target, ends_after, below,
                    values, drawings, best):
    """update_latest as the ORM states it: every condition is in the WHERE
    clause, so a round that ended or a player who finished meanwhile simply
    matches no row."""
    conditions = {"room__target_confidence__gt": below} if below is not None else {}
    return RoundProgress.objects.filter(
        seat__player_id=player_id, game_id=game_id, round_number=round_number,
        target=target, finished=False,
        room__code=code, room__state=Room.State.PLAYING, room__game_id=game_id,
        room__round=round_number, room__ends_at__gt=ends_after, **conditions,
    ).update(**orm_updates(values, drawings=drawings, best=best))


def has_statement(connection):
    """Whether update_latest writes through its own SQL on `connection`'s database."""
    return connection.vendor in _GREATEST


def _statement(connection, with_below, with_best):
    return _cached(_build, connection, with_below, with_best)


def _cached(build, connection, *options):
    """`build(connection, *options)`'s SQL, built once per database; None on a
    database without the game's SQL."""
    key = (build.__name__, connection.vendor, *options)
    if key not in _statements:
        _statements[key] = build(connection, *options) if has_statement(connection) else None
    return _statements[key]


def _column(connection, model, name):
    return connection.ops.quote_name(_field(model, name).column)


# The room's conditions both statements share, in the order of _room_params.
_ROOM_EQUALS = ("code", "state", "game_id", "round")


def _room_conditions(connection, prefix=""):
    """The round on: the room's code, state, game and round, its end after a moment."""
    conditions = [f"{prefix}{_column(connection, Room, name)} = %s" for name in _ROOM_EQUALS]
    conditions.append(f"{prefix}{_column(connection, Room, 'ends_at')} > %s")
    return conditions


def _room_params(connection, code, game_id, round_number, ends_after):
    """_room_conditions' parameters."""
    values = (code, Room.State.PLAYING, game_id, round_number)
    return [*(_lookup(Room, name, value, connection) for name, value in zip(_ROOM_EQUALS, values,
                                                                              strict=True)),
            _lookup(Room, "ends_at", ends_after, connection)]


def _build(connection, with_below, with_best):
    def column(model, name):
        return _column(connection, model, name)

    def table(model):
        return connection.ops.quote_name(model._meta.db_table)

    guesses = column(RoundProgress, "guesses")
    assignments = [f"{column(RoundProgress, name)} = %s" for name in PLAIN_COLUMNS]
    assignments.append(f"{guesses} = {guesses} + %s")
    if with_best:
        best = column(RoundProgress, "best_target_probability")
        assignments.append(f"{best} = {_GREATEST[connection.vendor]}({best}, %s)")
    room_conditions = _room_conditions(connection)
    if with_below:
        room_conditions.append(f"{column(Room, 'target_confidence')} > %s")
    return (
        f"UPDATE {table(RoundProgress)} SET {', '.join(assignments)}"
        f" WHERE NOT {column(RoundProgress, 'finished')}"
        f" AND {column(RoundProgress, 'game_id')} = %s"
        f" AND {column(RoundProgress, 'round_number')} = %s"
        f" AND {column(RoundProgress, 'target')} = %s"
        f" AND {column(RoundProgress, 'seat')} IN"
        f" (SELECT {column(Seat, 'id')} FROM {table(Seat)}"
        f" WHERE {column(Seat, 'player_id')} = %s)"
        f" AND {column(RoundProgress, 'room')} IN"
        f" (SELECT {column(Room, 'id')} FROM {table(Room)}"
        f" WHERE {' AND '.join(room_conditions)})"
    )


def _field(model, name):
    return model._meta.get_field(name)


def _lookup(model, name, value, connection):
    """`value` as the ORM hands it to the database in a filter on the field."""
    return _field(model, name).get_db_prep_value(value, connection, prepared=False)
