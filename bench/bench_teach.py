"""Teach benchmark: "Teach" to "after" on a real Daphne server, alone and 30 at once.

Starts Daphne on loopback (SQLite, the shipped model active, the teach
settings at their defaults unless --workers is given: one training at a time,
300 steps, 3,000 MNIST digits replayed, 2,000 measured) and measures, through
the teach API the way the page uses it (POST the examples, then ask for the
job when each answer's `poll_after` says, 0.4 s while it runs or is next in
line and 2 s further back, until it is done):

    alone     one learner's 30 examples (MNIST train 1s written with a long
              flag and turned 20-30 degrees, trainer/styles.py: the shipped
              model reads about 80% of them), --runs times: the time from the
              POST to the first answer that says "done". The first job of a
              process also computes the replayed and measured digits'
              features (once per model version), so it is reported apart.
    together  --learners learners, each its own browser session, press Teach
              at the same moment: when each is served (its job done), the
              longest wait and the queue positions they were told.
    game      beside them, one player in a solo room (a process of its own)
              sends a drawing every 100 ms and times each guess
              (digitsite/game/client.py): for 10 s before the learners press
              Teach (alone) and while they are served.

Plus the forward pass at batch 1 in this process (eager, the shipped
weights, one thread) at the start and the end, and every 5 s during each
scenario with the load average: a yardstick of the machine's speed during
the run (other work shares it). Run it with `nice`, as everything on the shared
machine: `nice -n 10 python bench/bench_teach.py`. Results go to
bench/results/teach.json.

    python bench/bench_teach.py                    # 30 learners, 3 runs alone
    python bench/bench_teach.py --learners 10 --runs 2
"""

import argparse
import asyncio
import http.cookiejar
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BASE_DIR,
    forward_yardstick,
    machine_summary,
    percentile,
    setup_django,
    write_results,
)

POLL_SECONDS = 0.4  # the page's pace
GUESS_INTERVAL = 0.1  # the game page sends a drawing at most every 100 ms
JOB_TIMEOUT = 600.0


class Learner:
    """One browser session speaking the teach API."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data,
                                         method="GET" if data is None else "POST")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def open_page(self):
        with self.opener.open(self.base + "/learn/teach/", timeout=60) as response:
            assert response.status == 200

    def teach(self, examples, steps):
        """POST the examples and follow the job to its end: a dict of what happened."""
        started = time.perf_counter()
        status, answer = self.call("/learn/teach/api/jobs", {"examples": examples,
                                                             "steps": steps, "store": False})
        if status != 202:
            return {"error": f"{status}: {answer}", "seconds": time.perf_counter() - started}
        positions = [answer.get("position", 0)] if answer["state"] == "queued" else []
        deadline = started + JOB_TIMEOUT
        while time.perf_counter() < deadline:
            # As the page: when the answer says (0.4 s running or next, 2 s further back).
            time.sleep(answer.get("poll_after") or POLL_SECONDS)
            status, answer = self.call(f"/learn/teach/api/jobs/{answer['job']}")
            if status != 200:
                return {"error": f"{status}: {answer}", "seconds": time.perf_counter() - started}
            if answer["state"] == "queued":
                positions.append(answer["position"])
            if answer["state"] not in ("queued", "running"):
                return {"state": answer["state"], "seconds": time.perf_counter() - started,
                        "result": answer.get("result"), "error": answer.get("error"),
                        "first_position": positions[0] if positions else None}
        return {"error": "timed out", "seconds": time.perf_counter() - started}


def examples_of(count, mnist_dir):
    """`count` examples: MNIST train 1s with a long flag, turned."""
    import numpy as np

    from trainer import mnist, styles
    from trainer.canvas_eval import redraw_on_canvas, trace_strokes

    images, labels = mnist.load_split("train", data_dir=mnist_dir, download=False)
    examples = []
    for index in np.nonzero(labels == 1)[0]:
        rng = np.random.default_rng([11, int(index)])
        strokes = trace_strokes(images[index])
        if not strokes:
            continue
        styled = styles.apply_style("turned", styles.apply_style("one_flag", strokes, rng), rng)
        drawn, width, height = redraw_on_canvas(styled, rng)
        examples.append({"label": 1, "drawing": {
            "width": width, "height": height,
            "strokes": [[list(point) for point in stroke] for stroke in drawn]}})
        if len(examples) == count:
            return examples
    raise RuntimeError("not enough 1s")


def one_thread_yardstick(repeats=300):
    """The median ms of the shipped model's eager forward pass at batch 1, one thread."""
    import torch

    torch.set_num_threads(1)
    return forward_yardstick(repeats)


class MachineWatch:
    """Every 5 s while it runs: the load average and the yardstick (50 passes): how
    busy the shared machine was during a scenario, not only before and after."""

    def __init__(self):
        self.samples = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(5.0):
            self.samples.append((os.getloadavg()[0], one_thread_yardstick(50)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join(timeout=30)

    def summary(self):
        if not self.samples:
            return {}
        loads, passes = zip(*self.samples, strict=True)
        return {"load_average_median": round(statistics.median(loads), 2),
                "load_average_max": round(max(loads), 2),
                "forward_pass_batch1_ms_median": round(statistics.median(passes), 3),
                "samples": len(self.samples)}


# -- the game player --------------------------------------------------------------------
#
# In a process of its own: the learners' 30 polling threads in this one would
# otherwise hold the interpreter while a guess arrives, and their wait would
# be counted as the game's.

ALONE, DURING = 1, 2


def play(ws_url, origin, code, phase, stop, results):
    """A player in a solo room drawing a 7 every 100 ms; (phase, seconds) of each guess
    timed while `phase` is not 0, put on `results` once `stop` is set."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    from digitsite.game.client import GameClient
    from tests.support import SEVEN

    async def run():
        timed, errors = [], 0
        client = await GameClient.open(ws_url, code, name="Player", origin=origin)
        await client.join()
        await client.start()
        round_number = (await client.expect("round_start"))["round"]
        seq = 0
        while not stop.is_set():
            seq += 1
            sent = time.perf_counter()
            # The pen is never up: the round goes on whatever the guess.
            await client.draw(round_number, SEVEN, seq=seq, pen_up=False)
            try:
                await client.expect("guess", where=lambda m, s=seq: m.get("seq") == s,
                                    timeout=30)
            except Exception:
                errors += 1
                continue
            if phase.value:
                timed.append((phase.value, time.perf_counter() - sent))
            await asyncio.sleep(max(0.0, GUESS_INTERVAL - (time.perf_counter() - sent)))
        await client.close()
        return timed, errors

    results.put(asyncio.run(run()))


class Player:
    """The player's process, and what it measured."""

    def __init__(self, server, code):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.phase = context.Value("i", 0)
        self.stop = context.Event()
        self.results = context.Queue()
        self.process = context.Process(target=play, args=(
            server.ws_url, server.url, code, self.phase, self.stop, self.results), daemon=True)

    def __enter__(self):
        self.process.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        try:
            self.timed, self.errors = self.results.get(timeout=60)
        except Exception:
            self.timed, self.errors = [], None
        self.process.join(timeout=30)

    def summary(self, phase):
        return summary_ms([seconds for which, seconds in self.timed if which == phase])


def summary_ms(values):
    if not values:
        return {"count": 0}
    return {"count": len(values), "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p95_ms": round(percentile(values, 95) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1)}


# -- the scenarios ------------------------------------------------------------------------


def alone(server, examples, runs, steps):
    learner = Learner(server.url)
    learner.open_page()
    cold = learner.teach(examples, steps)
    warm = [learner.teach(examples, steps) for _ in range(runs)]
    seconds = [run["seconds"] for run in warm if "state" in run and run["state"] == "done"]
    return {
        "cold_seconds": round(cold["seconds"], 2),
        "cold_state": cold.get("state"),
        "runs_seconds": [round(s, 2) for s in seconds],
        "median_seconds": round(statistics.median(seconds), 2) if seconds else None,
        "server_training_seconds": [run["result"]["seconds"] for run in warm
                                    if run.get("result")],
        "result": warm[-1].get("result"),
        "errors": [run["error"] for run in [cold, *warm] if run.get("error")],
    }


def together(server, examples, learners, steps, player):
    people = [Learner(server.url) for _ in range(learners)]
    for person in people:
        person.open_page()
    time.sleep(2.0)
    player.phase.value = ALONE
    time.sleep(10.0)  # the game alone first
    barrier = threading.Barrier(learners)
    outcomes = [None] * learners

    def press(index):
        barrier.wait()
        outcomes[index] = people[index].teach(examples, steps)

    player.phase.value = DURING
    started = time.perf_counter()
    threads = [threading.Thread(target=press, args=(i,)) for i in range(learners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_served = time.perf_counter() - started
    player.phase.value = 0
    served = sorted(o["seconds"] for o in outcomes if o.get("state") == "done")
    # What the server spent on each job (training and measuring), as its result says.
    trained = sorted(o["result"]["seconds"] for o in outcomes if o.get("result"))
    positions = [o["first_position"] for o in outcomes if o.get("first_position") is not None]
    return {
        "learners": learners,
        "done": len(served),
        "all_served_seconds": round(all_served, 1),
        "served_seconds_p50": round(percentile(served, 50), 1) if served else None,
        "served_seconds_max": round(max(served), 1) if served else None,
        "longest_queue_position": max(positions) if positions else None,
        "server_seconds_per_job_p50": round(percentile(trained, 50), 2) if trained else None,
        "server_seconds_per_job_max": round(max(trained), 2) if trained else None,
        "errors": [o["error"] for o in outcomes if o.get("error")][:5],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=None,
                        help="TEACH_WORKERS of the server (default: the setting's default, 1)")
    args = parser.parse_args()
    if not 1 <= args.learners <= 64 or not 1 <= args.runs <= 20:
        parser.error("1..64 learners and 1..20 runs")

    setup_django()
    from tests.live import LiveServer

    mnist_dir = BASE_DIR.parent / "shared" / "data" / "mnist"
    env = {"MNIST_DATA_DIR": str(mnist_dir), "DEBUG": "0"}
    if args.workers:
        env["TEACH_WORKERS"] = str(args.workers)
    examples = examples_of(args.examples, mnist_dir)
    results = {
        "benchmark": "teach",
        "settings": {"learners": args.learners, "runs": args.runs, "examples": args.examples,
                     "steps": args.steps, "workers": args.workers or 1,
                     "examples_style": "MNIST train 1s, one_flag then turned"},
        "machine": machine_summary(),
        "forward_pass_batch1_ms_start": one_thread_yardstick(),
    }
    server = LiveServer(Path(tempfile.mkdtemp(prefix="bench-teach-")), env=env)
    try:
        server.start()
        print("alone", flush=True)
        with MachineWatch() as watch:
            results["alone"] = alone(server, examples, args.runs, args.steps)
        results["alone"]["machine"] = watch.summary()
        print("together", flush=True)
        code = server.create_room("Player", solo=True, rounds=20, seconds=300.0,
                                  target_confidence=1.0)
        with Player(server, code) as player, MachineWatch() as watch:
            results["together"] = together(server, examples, args.learners, args.steps,
                                           player)
        results["together"].update(game_alone=player.summary(ALONE),
                                   game_while_teaching=player.summary(DURING),
                                   game_errors=player.errors, machine=watch.summary())
    finally:
        server.stop()
    results["forward_pass_batch1_ms_end"] = one_thread_yardstick()
    path = write_results("teach", results)
    print(json.dumps(results, indent=2))
    print(f"written to {path}")
    return 1 if results["alone"]["errors"] or results["together"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
