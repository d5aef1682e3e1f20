"""Storing a player's drawing of a round: every field the game hands over is
kept as given, the rest take the values a new drawing has, and a second
attempt for the same round changes nothing."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from recognizer.collection import store_drawing
from recognizer.models import Drawing, ModelVersion

STROKES = {"width": 200, "height": 200,
           "strokes": [[[100, 30, 0], [100, 100, 40], [100, 170, 80]]]}
INPUT = bytes(range(256)) * 3 + bytes(16)  # 784 bytes
PROBABILITIES = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.62, 0.05, 0.05]


def round_of(**changes):
    """What the game knows when a player's round is over."""
    values = {
        "game_id": "game-1", "round_number": 3, "player_id": "player-abc",
        "player_name": "Ada", "user_id": None, "room_code": "QWER", "label": 7,
        "strokes": STROKES, "input_image": memoryview(INPUT), "prediction": 7,
        "probabilities": PROBABILITIES, "model_version": "",
    }
    values.update(changes)
    return values


@pytest.mark.django_db
def test_every_field_is_stored_as_the_game_gives_it():
    user = User.objects.create_user("ada")
    version = ModelVersion.objects.create(version="digitcnn-test", path="x.pt", sha256="0" * 64)
    drawing, created = store_drawing(**round_of(user_id=user.pk, model_version=version.version))
    assert created
    drawing = Drawing.objects.get(pk=drawing.pk)
    assert drawing.game_id == "game-1"
    assert drawing.round_number == 3
    assert drawing.player_id == "player-abc"
    assert drawing.player_name == "Ada"
    assert drawing.user == user
    assert drawing.room_code == "QWER"
    assert drawing.label == 7
    assert drawing.strokes == STROKES
    assert bytes(drawing.input_image) == INPUT
    assert drawing.prediction == 7
    assert drawing.probabilities == PROBABILITIES
    assert drawing.model_version == version
    assert drawing.source == "game"
    assert drawing.status == Drawing.Status.PENDING
    # What the game does not give: derived, or left for review.
    assert drawing.confidence == pytest.approx(0.62)
    assert drawing.created is not None
    assert drawing.reviewed_by is None
    assert drawing.reviewed_at is None
    assert not drawing.label_changes.exists()


@pytest.mark.django_db
def test_the_label_is_the_target_even_when_the_guess_differs():
    drawing, _ = store_drawing(**round_of(label=4, prediction=9))
    drawing.refresh_from_db()
    assert (drawing.label, drawing.prediction) == (4, 9)
    assert drawing.confidence == pytest.approx(PROBABILITIES[9])


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", None, "no-such-version"])
def test_an_unknown_or_missing_model_version_is_stored_as_none(name):
    ModelVersion.objects.create(version="digitcnn-test", path="x.pt", sha256="0" * 64)
    drawing, _ = store_drawing(**round_of(model_version=name))
    drawing.refresh_from_db()
    assert drawing.model_version is None


@pytest.mark.django_db
def test_a_player_without_an_account_has_no_user():
    drawing, _ = store_drawing(**round_of(user_id=None))
    drawing.refresh_from_db()
    assert drawing.user is None


@pytest.mark.django_db
def test_the_source_can_be_named():
    drawing, _ = store_drawing(**round_of(source="practice"))
    drawing.refresh_from_db()
    assert drawing.source == "practice"


@pytest.mark.django_db
def test_a_second_attempt_for_the_same_round_changes_nothing():
    first, created = store_drawing(**round_of())
    again, created_again = store_drawing(**round_of(label=2, prediction=2, player_name="Bob",
                                                    room_code="ZZZZ"))
    assert created and not created_again
    assert again.pk == first.pk
    assert Drawing.objects.count() == 1
    stored = Drawing.objects.get()
    assert (stored.label, stored.prediction, stored.player_name, stored.room_code) == (
        7, 7, "Ada", "QWER")


@pytest.mark.django_db
def test_a_second_attempt_inside_a_transaction_leaves_it_usable():
    """The insert comes first and a conflict is undone to its savepoint: on
    PostgreSQL a failed statement outside one aborts the whole transaction,
    and the round's end that stores the drawing goes on writing after it."""
    with transaction.atomic():
        first, _ = store_drawing(**round_of())
        again, created = store_drawing(**round_of(label=2))
        assert not created and again.pk == first.pk
        stored = store_drawing(**round_of(player_id="player-xyz"))[0]
    assert Drawing.objects.count() == 2
    assert Drawing.objects.get(pk=stored.pk).label == 7


@pytest.mark.django_db
def test_a_drawing_another_constraint_refuses_is_an_error_not_a_second_attempt():
    """Only the round's own drawing already there makes the store a no-op:
    a value the table refuses (here no label) raises, and nothing is kept."""
    with pytest.raises(IntegrityError):
        store_drawing(**round_of(label=None))
    assert Drawing.objects.count() == 0
    drawing, created = store_drawing(**round_of())
    assert created and Drawing.objects.get().pk == drawing.pk


@pytest.mark.django_db
def test_other_rounds_games_and_players_are_stored_apart():
    store_drawing(**round_of())
    store_drawing(**round_of(round_number=4))
    store_drawing(**round_of(game_id="game-2"))
    store_drawing(**round_of(player_id="player-xyz"))
    assert Drawing.objects.count() == 4


def test_the_package_imports_before_django_loads_its_apps():
    code = ("import sys, recognizer.collection; "
            "assert callable(recognizer.collection.store_drawing); "
            "assert 'recognizer.models' not in sys.modules; "
            "assert 'django.db' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   cwd=Path(__file__).resolve().parent.parent)


@pytest.mark.django_db
def test_a_second_attempt_skips_the_row_there_without_a_failed_statement():
    """One insert that skips the row already there, then one read: no
    statement fails and nothing is rolled back (PostgreSQL logged each
    failed INSERT as an ERROR, with the statement; tests/test_scaleout.py
    runs this file again on PostgreSQL)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first, created = store_drawing(**round_of())
    with CaptureQueriesContext(connection) as queries:
        again, created_again = store_drawing(**round_of(label=2, player_name="Bob"))
    statements = [query["sql"] for query in queries.captured_queries]
    assert created and not created_again and again.pk == first.pk
    inserts = [sql for sql in statements if sql.startswith("INSERT")]
    assert len(inserts) == 1 and "ON CONFLICT" in inserts[0], statements
    assert not any("ROLLBACK" in sql for sql in statements), statements
    assert sum(sql.startswith("SELECT") for sql in statements) == 1, statements
    # The first attempt's row, as it was stored.
    stored = Drawing.objects.get()
    assert (stored.pk, stored.label, stored.player_name, stored.created) == (
        first.pk, 7, "Ada", first.created)
    assert stored.confidence == pytest.approx(0.62) and bytes(stored.input_image) == INPUT
    assert stored.strokes == STROKES


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


@pytest.mark.django_db
def test_through_the_orm_the_same_row_and_a_second_attempt_still_changes_nothing(monkeypatch):
    """Where the statement is not used (another database), save() stores the
    drawing: the same columns as the statement writes, and a second attempt
    returns the row there."""
    from recognizer.collection import store

    first, _ = store_drawing(**round_of())
    monkeypatch.setattr(store, "_UPSERT_VENDORS", set())
    other, created = store_drawing(**round_of(player_id="player-orm"))
    again, created_again = store_drawing(**round_of(player_id="player-orm", label=2))
    assert created and not created_again and again.pk == other.pk
    by_statement, by_orm = Drawing.objects.get(pk=first.pk), Drawing.objects.get(pk=other.pk)
    for field in Drawing._meta.concrete_fields:
        if field.name not in ("id", "player_id", "created"):
            assert (_plain(field.value_from_object(by_statement))
                    == _plain(field.value_from_object(by_orm))), field.name


@pytest.mark.django_db
def test_a_signal_listening_to_saves_hears_the_store():
    from django.db.models.signals import post_save

    heard = []

    def listener(sender, instance, created, **kwargs):
        heard.append((instance.pk, created))

    post_save.connect(listener, sender=Drawing, dispatch_uid="test-store-drawing")
    try:
        drawing, _ = store_drawing(**round_of())
    finally:
        post_save.disconnect(sender=Drawing, dispatch_uid="test-store-drawing")
    assert heard == [(drawing.pk, True)]


@pytest.mark.django_db
def test_a_row_gone_between_the_skipped_insert_and_the_read_is_stored_again(monkeypatch):
    """The round's row the insert met is deleted before the read (a purge,
    a player's opt-out): the drawing is inserted once more, as new."""
    from recognizer.collection import store

    store_drawing(**round_of())
    real = store._insert_unless_stored
    results = []

    def then_deleted(drawing, alias):
        results.append(real(drawing, alias))
        if len(results) == 1:
            Drawing.objects.all().delete()
        return results[-1]

    monkeypatch.setattr(store, "_insert_unless_stored", then_deleted)
    drawing, created = store_drawing(**round_of(label=2))
    assert results == [None, drawing.pk] and created
    assert Drawing.objects.get().label == 2
