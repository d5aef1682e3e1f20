"""The game app moved into digitsite/game/ under its old label: a database made
before the move upgrades with nothing to do.

What a database made before the move holds is fixed: its migration history
under the label `game` (the five names below) and tables named game_*. This
checks that the code still describes exactly that database.
"""

import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

# The history an existing database records for the game, from before the move.
RECORDED_GAME_MIGRATIONS = [
    "0001_initial",
    "0002_round_progress_best_probability",
    "0003_round_progress_drawing_deleted",
    "0004_room_privacy_limits_and_kicks",
    "0005_health_probe_and_round_deadline_index",
]


def test_the_game_app_lives_in_its_folder_under_its_old_label():
    config = apps.get_app_config("game")
    assert config.name == "digitsite.game"
    assert config.path.endswith("digitsite/game") or config.path.endswith("digitsite\\game")
    tables = {model._meta.db_table for model in config.get_models()}
    assert {"game_room", "game_seat", "game_roundprogress", "game_healthprobe"} <= tables


def test_the_collection_app_brings_the_drawings_admin_and_no_tables():
    # recognizer.collection is an app only so that the admin's discovery
    # imports its admin; the drawings stay the recognizer's models.
    from django.contrib import admin

    from recognizer.collection.admin import DrawingAdmin
    from recognizer.models import Drawing, ModelVersion

    config = apps.get_app_config("recognizer_collection")
    assert config.name == "recognizer.collection"
    assert list(config.get_models()) == []
    assert Drawing._meta.app_label == "recognizer"
    assert type(admin.site._registry[Drawing]) is DrawingAdmin
    assert ModelVersion in admin.site._registry


@pytest.mark.django_db
def test_a_database_with_the_old_history_has_nothing_to_apply():
    applied = {name for app, name in MigrationRecorder(connection).applied_migrations()
               if app == "game"}
    # Its history is the start of today's: later migrations only add to it.
    assert set(RECORDED_GAME_MIGRATIONS) <= applied
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    assert plan == []
    # and the models match the migrations: no new migration would be written
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
