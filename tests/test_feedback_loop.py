"""The feedback loop: collected drawings, split by player and weighted, make a better model.

Unit tests of the split (by player, fixed, statuses) and the weighting, then
the whole loop on small data: simulated players with a strong slant play the
game over WebSockets, their stored drawings are approved the way the admin
approves them, `finetune` trains on them, and the held-out players' drawings
are read better afterwards.
"""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from digitsite.asgi import application
from digitsite.game.client import CommunicatorClient
from digitsite.game.database import db
from digitsite.game.simulation import play_room
from recognizer import versions
from recognizer.collection import review
from recognizer.models import Drawing, ModelVersion
from tests.support import require
from trainer import drawings
from trainer.datasets import DigitData
from trainer.evaluation import compare
from trainer.simulation import STYLES, make_players, styled_drawing

ORIGIN = b"http://localhost"
# The loop on small data: eight players, twenty drawings each, three of them
# held out; a thousand MNIST digits, each collected drawing weighing ten (the
# default), one epoch of 32 steps at a peak rate above finetune's default,
# which is made for a whole MNIST epoch. The players turn their digits by 45
# degrees, further than the `tilted` style's 35: on this little data a
# milder habit can leave the held-out players' few misread digits unchanged.
PLAYERS, GAMES, HELD_OUT = 8, 2, 3
TILT = 45.0
FINETUNE_LIMIT = 1000
DRAWINGS_WEIGHT = 10
FINETUNE_LR = 1e-3


def add_drawing(player, label=3, status="approved", user=None, number=0, fill=200):
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 10 + label:14 + label] = fill
    return Drawing.objects.create(
        label=label, strokes={"width": 100, "height": 100, "strokes": [[[1, 2], [3, 4]]]},
        input_image=image.tobytes(), prediction=label, probabilities=[0.1] * 10,
        player_id=player, player_name=player, user=user, game_id=f"game-{player}",
        round_number=number, status=status,
    )


# -- the split -------------------------------------------------------------------


@pytest.mark.django_db
def test_split_keeps_each_player_on_one_side_and_never_moves_anyone():
    players = [f"seat{i:02d}" for i in range(30)]
    for player in players:
        for number in range(3):
            add_drawing(player, label=number, number=number)
    first = drawings.load_collected(holdout_fraction=0.25)

    expected = {f"seat:{p}" for p in players if drawings.is_heldout(f"seat:{p}", 0.25)}
    assert set(first.heldout_players) == expected
    assert 0 < len(expected) < len(players)
    assert set(first.train_players) == {f"seat:{p}" for p in players} - expected
    assert len(first.heldout) == 3 * len(expected) == len(first.heldout_ids)
    assert len(first.train) == 3 * (len(players) - len(expected))
    held_rows = Drawing.objects.filter(pk__in=first.heldout_ids)
    assert {f"seat:{d.player_id}" for d in held_rows} == expected
    # The images are the stored inputs, in id order.
    row = Drawing.objects.get(pk=first.train_ids[0])
    assert torch.equal(first.train.images[0], torch.from_numpy(
        np.frombuffer(bytes(row.input_image), dtype=np.uint8).reshape(28, 28).copy()))
    assert first.summary() == {
        "statuses": ["approved"], "holdout_fraction": 0.25,
        "drawings_train": len(first.train), "drawings_heldout": len(first.heldout),
        "players_train": len(first.train_players), "players_heldout": len(expected),
    }

    # New drawings arrive, from the same players and from new ones: nobody
    # changes sides, so nothing a model was trained on becomes test data.
    for player in players[:10] + ["late1", "late2", "late3"]:
        add_drawing(player, label=9, number=7)
    second = drawings.load_collected(holdout_fraction=0.25)
    assert set(first.heldout_players) <= set(second.heldout_players)
    assert set(first.train_players) <= set(second.train_players)
    assert set(first.heldout_ids) <= set(second.heldout_ids)
    assert set(first.train_ids) <= set(second.train_ids)
    assert set(second.train_players).isdisjoint(second.heldout_players)

    # A larger fraction only moves players from training to held-out.
    wider = drawings.load_collected(holdout_fraction=0.6)
    assert set(second.heldout_players) < set(wider.heldout_players)
    assert set(wider.train_players) < set(second.train_players)
    assert drawings.load_collected(holdout_fraction=0).heldout_players == []


@pytest.mark.django_db
def test_an_account_is_one_player_across_seats():
    ada = User.objects.create_user("ada")
    # Two rooms, two seats, one person.
    for seat in ("room1-seat", "room2-seat"):
        for number in range(4):
            add_drawing(seat, user=ada, number=number)
    add_drawing("anonymous", number=0)
    for fraction in (0.0, 0.3, 0.5, 0.7, 0.99):
        split = drawings.load_collected(holdout_fraction=fraction)
        side = split.heldout_players if drawings.is_heldout(f"user:{ada.pk}", fraction) \
            else split.train_players
        assert f"user:{ada.pk}" in side
        ada_ids = set(Drawing.objects.filter(user=ada).values_list("id", flat=True))
        assert ada_ids <= set(split.heldout_ids if side is split.heldout_players
                              else split.train_ids)


@pytest.mark.django_db
def test_pending_only_when_asked_and_rejected_never():
    approved = add_drawing("a", status="approved", number=1).pk
    pending = add_drawing("b", status="pending", number=2).pk
    add_drawing("c", status="rejected", number=3)

    def used(**options):
        split = drawings.load_collected(holdout_fraction=0.0, **options)
        return sorted(split.train_ids + split.heldout_ids), split.statuses

    assert used() == ([approved], ("approved",))
    assert used(include_pending=True) == ([approved, pending], ("approved", "pending"))


def test_split_point_is_fixed_by_the_key_alone():
    points = [drawings.split_point(f"seat:{i}") for i in range(2000)]
    assert points == [drawings.split_point(f"seat:{i}") for i in range(2000)]
    assert all(0 <= p < 1 for p in points)
    # Spread evenly: about a fifth of the players fall under 0.2.
    assert 0.17 < np.mean(np.array(points) < 0.2) < 0.23
    with pytest.raises(ValueError):
        drawings.check_fraction(1.0)
    with pytest.raises(ValueError):
        drawings.check_fraction(float("nan"))


def test_split_rows_refuses_a_damaged_input():
    with pytest.raises(ValueError, match="drawing 7 has a stored input of 3 bytes"):
        drawings.split_rows([(7, "seat:x", 1, b"abc")])


# -- the weighting ---------------------------------------------------------------


def test_weight_repeats_each_drawing_that_many_times():
    mnist = DigitData.from_arrays(np.zeros((100, 28, 28), dtype=np.uint8), [0] * 100)
    images = np.stack([np.full((28, 28), 10 * (k + 1), dtype=np.uint8) for k in range(5)])
    collected = DigitData.from_arrays(images, [1, 2, 3, 4, 5])

    data, from_drawings = drawings.mix(mnist, collected, weight=3)
    assert (len(data), from_drawings) == (115, 15)
    assert data.counts() == [100, 3, 3, 3, 3, 3, 0, 0, 0, 0]
    for k in range(5):
        copies = (data.images[:, 0, 0] == 10 * (k + 1)).sum()
        assert int(copies) == 3
    # Drawings are 15 of 115 samples: each one weighs 3 MNIST digits.
    assert drawings.mix(mnist, collected, weight=0)[1] == 0
    assert drawings.mix(mnist, collected, weight=1)[1] == 5


def test_a_fractional_weight_is_right_on_average_and_repeatable():
    counts = drawings.repeat_counts(20_000, 2.5, seed=4)
    assert set(counts.unique().tolist()) == {2, 3}
    assert abs(float(counts.float().mean()) - 2.5) < 0.02
    assert torch.equal(counts, drawings.repeat_counts(20_000, 2.5, seed=4))
    assert not torch.equal(counts, drawings.repeat_counts(20_000, 2.5, seed=5))
    for bad in (-1, float("nan"), float("inf"), True, "3"):
        with pytest.raises(ValueError):
            drawings.repeat_counts(3, bad)


# -- the gate and the options -------------------------------------------------------


def test_gate_allows_the_mnist_tolerance_but_no_loss_on_held_out_drawings():
    baseline = {"mnist_test": {"accuracy": 0.9900}, "heldout_drawings": {"accuracy": 0.70}}
    tolerances = {"mnist_test": 0.2}

    def gate(mnist, heldout):
        candidate = {"mnist_test": {"accuracy": mnist}, "heldout_drawings": {"accuracy": heldout}}
        return compare(candidate, baseline, ["mnist_test", "heldout_drawings"], tolerances)

    ok, reasons = gate(0.9885, 0.90)
    assert ok and reasons == [
        "mnist_test: 98.8500% vs 99.0000% (within the 0.2-point tolerance)",
        "heldout_drawings: 90.0000% vs 70.0000% (not worse)",
    ]
    assert gate(0.9880, 0.90)[0]  # exactly 0.2 points
    assert not gate(0.9879, 0.90)[0]
    ok, reasons = gate(0.9950, 0.69)
    assert not ok and reasons[1] == "heldout_drawings: 69.0000% vs 70.0000% (worse)"


@pytest.mark.django_db
@pytest.mark.parametrize("option, value, message", [
    ("holdout_fraction", 1.0, "--holdout-fraction must be at least 0 and below 1"),
    ("holdout_fraction", -0.1, "--holdout-fraction must be at least 0 and below 1"),
    ("drawings_weight", -2.0, "--drawings-weight must be between 0 and 1000"),
    ("drawings_weight", float("nan"), "--drawings-weight must be between 0 and 1000"),
    ("tolerance", -1.0, "--tolerance must be between 0 and 100"),
])
def test_bad_loop_options_are_refused(option, value, message, model_dir, mnist_dir):
    with pytest.raises(CommandError, match=message):
        call_command("finetune", data_dir=str(mnist_dir), verbosity=0, **{option: value})


# -- the style -------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["tilted", "slanted"])
def test_a_styled_drawing_is_a_valid_game_drawing_and_leans(mnist_dir, style):
    from recognizer.payloads import parse_drawing
    from recognizer.preprocessing import strokes_to_input
    from trainer.datasets import mnist_split

    digits = mnist_split("train", mnist_dir, limit=200)
    ones = np.flatnonzero(digits.labels.numpy() == 1)[:8]
    rng = np.random.default_rng(0)
    player_style = STYLES[style].for_player(rng)
    leans = []
    for index in ones:
        payload = styled_drawing(digits.images[index].numpy(), 1, player_style, rng)
        drawing = parse_drawing(json.loads(json.dumps(payload)), max_points=5000)
        image = strokes_to_input(drawing.strokes, drawing.width, drawing.height)
        rows, cols = np.nonzero(image > 0.5)
        # Column against row: leaning forward puts the top (small rows) right.
        leans.append(-np.polyfit(rows, cols, 1)[0])
    # tan(35 degrees) = 0.70 and tan(45 degrees) = 1, less the redraw's own
    # wobble; MNIST's ones lean 0.2 on average.
    assert np.median(leans) > 0.5


# -- the loop, end to end ------------------------------------------------------------


def register_shipped_model():
    """The model in recognizer/weights/, active (as `migrate` registers it)."""
    manifest_path = versions.BUILTIN_DIR / "manifest.json"
    require(manifest_path.is_file(), "the shipped model (recognizer/weights/) is not there")
    manifest = json.loads(manifest_path.read_text())
    path = versions.BUILTIN_DIR / manifest["file"]
    row, _ = ModelVersion.objects.get_or_create(
        version=manifest["version"],
        defaults={"path": f"builtin:{manifest['file']}", "sha256": manifest["sha256"],
                  "size_bytes": path.stat().st_size},
    )
    return versions.activate_version(row)


def fraction_holding_out(keys, count):
    """A held-out fraction that puts exactly `count` of these players on the held-out side."""
    points = sorted(drawings.split_point(key) for key in keys)
    return (points[count - 1] + points[count]) / 2


@pytest.mark.django_db(transaction=True)
async def test_styled_players_play_and_the_finetuned_model_reads_their_style(
        mnist_dir, model_dir, settings, tmp_path):
    from digitsite.game.rooms import create_room
    from recognizer.inference import get_service
    from trainer.datasets import mnist_split

    settings.VAR_DIR = tmp_path / "var"
    shipped = await sync_to_async(register_shipped_model)()
    await sync_to_async(get_service().refresh)(force=True)

    # Players who turn every digit, each drawing every digit once a game from
    # their own MNIST train digits.
    train = await sync_to_async(mnist_split)("train", mnist_dir)
    style = dataclasses.replace(STYLES["tilted"], rotation=TILT)
    players = make_players(style, train.images.numpy(), train.labels.numpy(),
                           count=PLAYERS, per_digit=GAMES, seed=0)
    room = await sync_to_async(create_room)(
        "styled", rounds=10, seconds=30.0, results_seconds=0.0, target_confidence=1.0,
        max_players=PLAYERS)

    async def connect():
        communicator = WebsocketCommunicator(
            application, f"/ws/v1/rooms/{room.code}/",
            headers=[(b"origin", ORIGIN), (b"host", b"localhost")])
        connected, _ = await communicator.connect()
        assert connected
        return CommunicatorClient(communicator)

    # A round ends when every player has said `done`, and at the latest at
    # the room's deadline, 30 s (and a grace) after its start. A player
    # waits past it: a wait of exactly the round's length failed once on a
    # loaded machine, the host hearing nothing for 30 s after its first
    # guess (digitsite.game.simulation now reports what every player last
    # heard). A round ended by its deadline is reported as a warning; the
    # counts below still fail for any drawing not stored.
    await play_room(players, connect, games=GAMES, rounds=10, timeout=60)
    timed_out = sorted({key for p in players for key, entry in p.rounds.items()
                        if entry.get("result", {}).get("reason") == "time"})
    if timed_out:
        warnings.warn(f"rounds ended by their deadline, not by every player's done: "
                      f"{timed_out}", stacklevel=1)
    assert all(not p.errors for p in players), [p.errors for p in players]

    def approve_and_finetune():
        stored = list(Drawing.objects.filter(room_code=room.code))
        total = PLAYERS * GAMES * 10
        assert len(stored) == total and {d.status for d in stored} == {"pending"}
        sent = {(p.id, game, number): entry for p in players
                for (game, number), entry in p.rounds.items()}
        for row in stored:
            entry = sent[(row.player_id, row.game_id, row.round_number)]
            assert row.label == entry["label"] and row.strokes == entry["drawing"]
            assert row.model_version_id == shipped.pk
        assert sorted(d.label for d in stored) == sorted(list(range(10)) * PLAYERS * GAMES)

        # Pending drawings are not training data until someone approves them.
        keys = [f"seat:{p.id}" for p in players]
        fraction = fraction_holding_out(keys, HELD_OUT)
        assert drawings.load_collected(holdout_fraction=fraction).summary()[
            "drawings_train"] == 0
        assert review.set_status(Drawing.objects.filter(room_code=room.code),
                                 "approved") == total

        split = drawings.load_collected(holdout_fraction=fraction)
        assert len(split.heldout_players) == HELD_OUT
        assert len(split.train_players) == PLAYERS - HELD_OUT
        assert set(split.heldout_players).isdisjoint(split.train_players)
        held_ids = set(Drawing.objects.filter(
            player_id__in=[k[len("seat:"):] for k in split.heldout_players]
        ).values_list("id", flat=True))
        assert set(split.heldout_ids) == held_ids

        call_command("finetune", data_dir=str(mnist_dir), limit=FINETUNE_LIMIT, epochs=1,
                     batch_size=64, holdout_fraction=fraction, drawings_weight=DRAWINGS_WEIGHT,
                     lr=FINETUNE_LR, threads=1, seed=0, verbosity=0)
        return ModelVersion.objects.order_by("-id").first()

    # Through the game's own database pool, as the players' connections'
    # own work; the drawings it approves were stored before `game_over`.
    new = await db(approve_and_finetune)()
    assert new.parent_id == shipped.pk
    data = new.training["data"]
    trained = (PLAYERS - HELD_OUT) * GAMES * 10
    assert (data["collected"], data["heldout_drawings"]) == (trained, HELD_OUT * GAMES * 10)
    assert (data["players_train"], data["players_heldout"]) == (PLAYERS - HELD_OUT, HELD_OUT)
    assert data["collected_samples"] == trained * DRAWINGS_WEIGHT
    assert data["train_total"] == FINETUNE_LIMIT + trained * DRAWINGS_WEIGHT
    assert data["drawing_statuses"] == ["approved"]

    table = new.metrics["before_after"]
    # The three sets of the activation rule, and the styles set (as a whole and per style).
    from trainer.styles import STYLE_NAMES

    assert set(table) == {"mnist_test", "canvas", "heldout_drawings", "styles",
                          *(f"styles/{name}" for name in STYLE_NAMES)}
    heldout = table["heldout_drawings"]
    assert heldout["count"] == HELD_OUT * GAMES * 10
    assert new.metrics["baseline"]["version"] == shipped.version
    assert heldout["before"] == new.metrics["baseline"]["heldout_drawings"]["accuracy"]
    assert heldout["after"] == new.metrics["heldout_drawings"]["accuracy"]
    # The shipped model misreads many tilted digits; after seeing five tilted
    # players, it reads the three it never saw better.
    assert heldout["after"] > heldout["before"], heldout
    # A thousand MNIST digits and a rate made for tiny data shake the model a
    # little; the benchmark checks the 0.2-point bound on a whole epoch.
    mnist = table["mnist_test"]
    assert mnist["after"] >= mnist["before"] - 0.02, mnist
    decision = new.metrics["activation"]
    # The rule compares the three sets alone: the styles rows are shown, not
    # gated on.
    rule_sets = ["mnist_test", "canvas", "heldout_drawings"]
    assert [r.split(":")[0] for r in decision["reasons"]] == rule_sets
    expect_active = compare(
        {k: {"accuracy": table[k]["after"]} for k in rule_sets},
        {k: {"accuracy": table[k]["before"]} for k in rule_sets},
        rule_sets, {"mnist_test": 0.2, "canvas": 0.2})[0]
    assert decision["activated"] is expect_active

