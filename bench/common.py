"""Shared pieces of the benchmarks: a throwaway Django setup and timing helpers."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = BASE_DIR / "bench" / "results"


def client_address(index):
    """A loopback address of its own for simulated player `index`, as
    `local_addr` for a connection (Linux routes all of 127.0.0.0/8 to this
    machine). The game counts its per-client bounds (sockets, drawings in the
    work, the recognizer's lanes) per address, as for people on their own
    devices; from one address 200 players would be one client."""
    return (f"127.1.{index // 250}.{index % 250 + 1}", 0)


def setup_django(var_dir=None):
    """Configure Django on a scratch var folder (SQLite), migrated, shipped model active."""
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    if not os.environ.get("DIGITSITE_VAR_DIR", "").strip():  # blank is unset to the site too
        os.environ["DIGITSITE_VAR_DIR"] = var_dir or tempfile.mkdtemp(prefix="bench-var-")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def add_database_arguments(parser):
    """--postgres and --postgres-url: the benchmarks that time database work."""
    parser.add_argument("--postgres", action="store_true",
                        help="on a fresh PostgreSQL database ($BENCH_POSTGRES_URL)")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"))


def setup_django_on_database(stack, args):
    """setup_django on SQLite (a scratch file, as the embedded setup) or, with
    --postgres, on a fresh PostgreSQL database dropped when `stack` closes."""
    if args.postgres:
        from tests.services import fresh_postgres_database

        os.environ["DATABASE_URL"] = stack.enter_context(
            fresh_postgres_database(args.postgres_url, prefix="digitsite_bench"))
    setup_django(tempfile.mkdtemp(prefix="bench-var-"))


def playing_room(players=8):
    """A room of `players` playing its first round, each player with a first
    drawing of 150 points written: (room, seats, drawing, prediction)."""
    from digitsite.game import guesses, rooms, rounds, seats
    from digitsite.game.models import Room
    from recognizer.inference import Prediction

    room = rooms.create_room("Host", rounds=2, seconds=300, max_players=players)
    joined = [seats.join(room.code, name=f"P{i}", channel_name=f"chan-{i}")
              for i in range(players)]
    rounds.start_game(room.code, joined[0].seat.player_id)
    room = Room.objects.get(pk=room.pk)
    drawing = {"width": 400.0, "height": 400.0,
               "strokes": [[[200 + i * 1.3, 150 + (i % 40) * 2.1, i * 16.0] for i in range(150)]]}
    probabilities = [0.05] * 10
    probabilities[room.target] = 0.55
    prediction = Prediction(room.target, probabilities, "v1")
    for player in joined:
        accepted, _ = guesses.record_guess(
            room.code, player.seat.player_id, room.game_id, 1, drawing=drawing,
            input_bytes=bytes(784), prediction=prediction)
        assert accepted
    return room, [player.seat for player in joined], drawing, prediction


def ensure_model():
    """The active version, or a seeded untrained one (same cost per forward pass)."""
    from django.conf import settings

    from recognizer.versions import active_version

    version = active_version()
    if version is not None:
        return version, "active"
    from tests.support import register_random_model

    Path(settings.RECOGNIZER_MODEL_DIR).mkdir(parents=True, exist_ok=True)
    version = register_random_model(settings.RECOGNIZER_MODEL_DIR, seed=0)
    return version, "untrained (no shipped model)"


def timed(fn, repeats):
    """Run fn `repeats` times; return the list of durations in seconds."""
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - start)
    return durations


def median_ms(durations):
    return statistics.median(durations) * 1000


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def snapshot(revision, dest):
    """The code at `revision`, unpacked in `dest` (git archive: nothing else is touched)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=BASE_DIR,
                             capture_output=True, check=True, timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=120)
    return dest


def revision(code, name):
    """`name` as a commit hash (and whether the checkout has changes, for this one)."""
    commit = subprocess.run(["git", "rev-parse", name], cwd=BASE_DIR, capture_output=True,
                            text=True, check=True).stdout.strip()
    if code != BASE_DIR:
        return commit
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=BASE_DIR,
                             capture_output=True, text=True, check=True).stdout.strip()
    return commit + (" with uncommitted changes" if changed else "")


def write_results(name, results):
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def machine_summary():
    import platform

    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


_yardstick_models = {}


def forward_yardstick(repeats=300, weights="digitcnn-v2-styles-seed1.pt"):
    """The median ms of a shipped model's eager forward pass at batch 1 on the
    threads torch has: the yardstick a benchmark's figures are read against."""
    import numpy as np
    import torch

    from recognizer.checkpoints import load_checkpoint

    if weights not in _yardstick_models:
        loaded = load_checkpoint(BASE_DIR / "recognizer/weights" / weights)
        _yardstick_models[weights] = (loaded[0] if isinstance(loaded, tuple) else loaded).eval()
    model = _yardstick_models[weights]
    x = torch.from_numpy(np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32))
    durations = []
    with torch.inference_mode():
        for _ in range(20):
            model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            durations.append(time.perf_counter() - start)
    return round(percentile(durations, 50) * 1000, 3)


def in_turns(ways, turns, measure):
    """`measure(argument)` for each of `ways` ((name, argument) pairs),
    `turns` times, in turns, each first in every other turn: (the medians by
    name, rounded to a tenth, and every measure by name)."""
    runs = {name: [] for name, _ in ways}
    for turn in range(turns):
        for name, argument in ways[::1 if turn % 2 == 0 else -1]:
            runs[name].append(measure(argument))
    medians = {name: round(statistics.median(values), 1) for name, values in runs.items()}
    return medians, runs


def write_with_yardsticks(name, results, yardstick_before):
    """The forward pass measured again; `results` written with it, the one
    measured before them (`yardstick_before`) and the machine. Returns the path."""
    yardstick_after = forward_yardstick()
    print(f"forward pass at batch 1: {yardstick_before:.3f} / {yardstick_after:.3f} ms")
    path = write_results(name, {**results, "forward_batch1_ms_before": yardstick_before,
                                "forward_batch1_ms_after": yardstick_after,
                                "machine": machine_summary()})
    print(f"written to {path}")
    return path
