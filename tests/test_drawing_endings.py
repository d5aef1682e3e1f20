"""How a player's round ended, kept with the drawing: stored through
store_drawing, "unknown" for drawings stored before (the migration), shown
and filtered in the drawings' admin list, and carried by the exports."""

import csv
import importlib
import io

import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from recognizer.collection import store_drawing
from recognizer.models import Drawing
from tests.test_admin_review import CHANGELIST, changelist_ids, make_drawing, post_action
from tests.test_store_drawing import round_of

MIGRATION = "0008_drawing_ending"


@pytest.mark.django_db
def test_store_drawing_keeps_the_ending_and_refuses_one_it_does_not_know():
    for n, ending in enumerate(Drawing.Ending.values):
        drawing, created = store_drawing(**round_of(round_number=n, ending=ending))
        assert created and Drawing.objects.get(pk=drawing.pk).ending == ending
    # Callers that do not say: "unknown".
    drawing, _ = store_drawing(**round_of(round_number=99))
    assert drawing.ending == Drawing.Ending.UNKNOWN
    with pytest.raises(ValueError, match="absent"):
        store_drawing(**round_of(round_number=100, ending="absent"))
    assert not Drawing.objects.filter(round_number=100).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_drawings_the_unknown_ending():
    """A database with drawings from before endings were kept: migrating
    keeps every row and reads each one's ending as "unknown"."""
    before = [("recognizer", "0007_modelversion_last_activated")]
    after = [("recognizer", MIGRATION)]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("recognizer", "Drawing")
        assert "ending" not in {field.name for field in old._meta.get_fields()}
        for n in range(3):
            old.objects.create(label=n, strokes={"width": 1, "height": 1, "strokes": []},
                               input_image=bytes(784), prediction=n, probabilities=[0.1] * 10,
                               player_id=f"p{n}", player_name=f"P{n}", game_id="old",
                               round_number=n)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps.get_model("recognizer", "Drawing")
        assert sorted(new.objects.values_list("round_number", "ending")) == [
            (0, "unknown"), (1, "unknown"), (2, "unknown")]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    migration = importlib.import_module(f"recognizer.migrations.{MIGRATION}")
    assert migration.Migration.operations[0].field.default == "unknown"


@pytest.fixture
def ended(db):
    """One drawing per ending, by name."""
    drawings = {}
    for ending in Drawing.Ending.values:
        drawing = make_drawing(player=f"by-{ending}")
        Drawing.objects.filter(pk=drawing.pk).update(ending=ending)
        drawings[ending] = drawing.pk
    return drawings


def test_the_admin_lists_and_filters_drawings_by_how_the_round_ended(admin_client, ended):
    for ending, pk in ended.items():
        assert changelist_ids(admin_client, ending=ending) == [pk]
    assert set(changelist_ids(admin_client, ending="complete")) == {ended["reached"],
                                                                   ended["done"]}
    assert set(changelist_ids(admin_client)) == set(ended.values())
    assert changelist_ids(admin_client, ending="absent") == []  # no such ending: nothing
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "round ended by" in html.lower()
    for label in ("Time ran out", "Reached the target, pen lifted", "Complete (reached or done)"):
        assert label in html
    # A drawing's own page says it too.
    page = admin_client.get(reverse("admin:recognizer_drawing_change", args=[ended["time"]]))
    assert "Time ran out" in page.content.decode()


def test_the_exports_carry_the_ending(admin_client, ended):
    drawings = list(Drawing.objects.order_by("id"))
    response = post_action(admin_client, "export_csv", drawings)
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["id"]: row["ending"] for row in rows} == {
        str(pk): ending for ending, pk in ended.items()}
    response = post_action(admin_client, "export_npz", drawings)
    arrays = np.load(io.BytesIO(b"".join(response.streaming_content)), allow_pickle=False)
    by_id = dict(zip(arrays["ids"].tolist(), arrays["endings"].tolist(), strict=True))
    assert by_id == {pk: ending for ending, pk in ended.items()}
