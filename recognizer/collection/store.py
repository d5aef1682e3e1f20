"""Storing a player's drawing of one round as training data.

The game calls store_drawing when a player's round is over and they have not
opted out (whether to store is the game's decision; opting out later deletes
the drawing again). The drawing waits for review as "pending", with how the
round ended for the player (Drawing.Ending): a drawing the timer or a
disconnect cut off may be unfinished, and reviewers can filter on it.
"""

import functools


@functools.cache
def version_key_query():
    """The key of a model version by its name, read at every player's round
    end: compiled once (recognizer/prepared_queries.py). Made on first use:
    this module is imported while Django loads its apps."""
    from recognizer.models import ModelVersion
    from recognizer.prepared_queries import PreparedQuery

    return PreparedQuery(ModelVersion, lambda version: ModelVersion.objects.filter(
        version=version).values_list("pk", flat=True))


def stored_version_name(model_version):
    """The ModelVersion name a drawing guessed by `model_version` is stored under.

    A class game under its taught copy (recognizer.taught) guesses with
    "<base>+taught", which no ModelVersion has: the drawing is stored under
    the copy's base version, so review and exports group it with the
    version the copy was taught from. Its prediction and probabilities stay
    the copy's (what the player saw); copies live hours and are deleted, so
    no row could point at one.
    """
    # Imported here: this module is imported while Django loads its apps.
    from recognizer.taught import TAUGHT_SUFFIX

    if model_version and model_version.endswith(TAUGHT_SUFFIX):
        return model_version[:-len(TAUGHT_SUFFIX)]
    return model_version


def store_drawing(*, game_id, round_number, player_id, player_name, user_id, room_code,
                  label, strokes, input_image, prediction, probabilities, model_version,
                  ending="unknown", source="game"):
    """Store one player's drawing of one round, once; return (drawing, created).

    - label: the digit the player was asked to draw (the round's target)
    - strokes: the canvas strokes as the game received them
    - input_image: the 28x28 network input, 784 bytes (any bytes-like value)
    - prediction, probabilities: the model's guess and its ten probabilities
    - model_version: the name of the model version that guessed ("" or None
      when unknown); a name no ModelVersion has is stored as no version,
      a taught copy's ("<base>+taught") as its base version
    - user_id: the signed-in player's user id, or None
    - ending: how the player's round ended, one of Drawing.Ending's values
      ("reached", "done", "time", "disconnected", "left", "kicked" or
      "unknown"); ValueError for any other

    The unique constraint (game, round, player) makes a second attempt a
    no-op: the drawing already stored is returned unchanged, with created
    False.
    """
    # Imported here: this module is imported while Django loads its apps.
    from django.db import IntegrityError, transaction

    from recognizer.models import Drawing

    if ending not in Drawing.Ending.values:
        raise ValueError(f"unknown ending {ending!r}: use one of "
                         + ", ".join(Drawing.Ending.values))
    name = stored_version_name(model_version)
    # Its key only: a version's row carries its metrics (confusion matrices,
    # per-style tables, its training history), JSON parsed on every read,
    # and every round end stores a drawing per player.
    version_id = version_key_query().value(version=name) if name else None
    key = {"game_id": game_id, "round_number": round_number, "player_id": player_id}
    values = {
        "label": label,
        "strokes": strokes,
        "input_image": bytes(input_image),
        "prediction": prediction,
        "probabilities": probabilities,
        "model_version_id": version_id,
        "player_name": player_name,
        "user_id": user_id,
        "room_code": room_code,
        "source": source,
        "ending": ending,
        "status": Drawing.Status.PENDING,
    }
    # Inserted first, read only if the row is there already: a round's
    # drawing is stored once, so the insert is what almost always happens.
    # get_or_create reads first, then inserts: one more statement on every
    # player's round end (`done` made 19 statements in a room of 8). The
    # insert skips a row that is there already (ON CONFLICT DO NOTHING)
    # rather than failing on it: a failed INSERT wrote an ERROR with the
    # statement to PostgreSQL's own log on every second attempt.
    drawing = Drawing(**key, **values)
    alias = _drawing_database()
    stored_rows = Drawing.objects.using(alias).filter(**key)
    for _ in range(2):
        try:
            with transaction.atomic(using=alias):
                inserted = _insert_unless_stored(drawing, alias)
                if inserted is _NO_STATEMENT:
                    drawing.save(force_insert=True, using=alias)
                    return drawing, True
        except IntegrityError:
            # Through the ORM (a database without the statement), the
            # round's row there already fails the insert; with the statement,
            # only another constraint does. Read after the failed insert: at
            # READ COMMITTED (PostgreSQL's default, which the site uses) this
            # sees a row another transaction committed meanwhile. None:
            # another constraint refused the drawing.
            stored = stored_rows.first()
            if stored is None:
                raise
            return stored, False
        if inserted is not None:
            return drawing, True
        stored = stored_rows.first()
        if stored is not None:
            return stored, False
        # The row the insert met is gone since (a purge, an opt-out): once more.
    raise IntegrityError(f"the drawing of {key} was stored and deleted twice while storing it")


# The databases whose INSERT takes ON CONFLICT ... DO NOTHING and RETURNING
# (SQLite from 3.35, which Django 5.2 requires for RETURNING).
_UPSERT_VENDORS = {"postgresql", "sqlite"}
_NO_STATEMENT = object()
# (alias, vendor) -> (the statement, the fields it writes), or None where a
# column is one the database fills in itself; built on first use.
_insert_statements = {}


def _drawing_database():
    from django.db import router

    from recognizer.models import Drawing

    return router.db_for_write(Drawing)


def _insert_unless_stored(drawing, alias):
    """Insert `drawing` unless its round's drawing is stored: its new key, or
    None when the row is there; _NO_STATEMENT where the statement would not
    do what save() does (the caller saves through the ORM, which raises
    IntegrityError on the row): a database without the statement, a signal
    listening to a Drawing's save, a column the database fills in itself.
    Sets what save() would: the derived confidence, the created time, the
    key, and the instance's state as saved."""
    from django.db import connections
    from django.db.models.signals import post_save, pre_save

    from recognizer.models import Drawing

    connection = connections[alias]
    if (connection.vendor not in _UPSERT_VENDORS
            or not connection.features.can_return_columns_from_insert
            or pre_save.has_listeners(Drawing) or post_save.has_listeners(Drawing)):
        return _NO_STATEMENT
    key = (alias, connection.vendor)
    if key not in _insert_statements:
        _insert_statements[key] = _build_insert(connection)
    if _insert_statements[key] is None:
        return _NO_STATEMENT
    sql, fields = _insert_statements[key]
    drawing.fill_derived_fields()
    params = [field.get_db_prep_save(field.pre_save(drawing, True), connection)
              for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    drawing.pk = row[0]
    drawing._state.adding = False
    drawing._state.db = alias
    return drawing.pk


def _build_insert(connection):
    """(the statement, the fields it writes) for `connection`'s database; None
    if a column is generated or has a database default, which save() leaves
    to the database."""
    from django.db.models import NOT_PROVIDED

    from recognizer.models import Drawing

    fields = [field for field in Drawing._meta.concrete_fields if not field.primary_key]
    if any(getattr(field, "generated", False) or field.db_default is not NOT_PROVIDED
           for field in fields):
        return None
    quote = connection.ops.quote_name
    unique = ", ".join(quote(Drawing._meta.get_field(name).column)
                       for name in ("game_id", "round_number", "player_id"))
    sql = (f"INSERT INTO {quote(Drawing._meta.db_table)}"
           f" ({', '.join(quote(field.column) for field in fields)})"
           f" VALUES ({', '.join(['%s'] * len(fields))})"
           f" ON CONFLICT ({unique}) DO NOTHING"
           f" RETURNING {quote(Drawing._meta.pk.column)}")
    return sql, fields
