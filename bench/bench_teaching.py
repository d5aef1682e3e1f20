"""Teaching pages benchmark: a class of learners against a real Daphne server.

Starts Daphne on loopback (SQLite, the shipped model active) for this code
and, beside it in the same run, for an earlier revision of the code (the
"before", by default the commit the teaching changes started from, taken with
`git archive`), seeds both with the same approved drawings, and lets
--learners learners use the teaching pages the way the pages do, each from
its own thread and keep-alive connection, for --seconds per scenario:

    stages       "How it works": each learner draws its digit progressively,
                 the pen adding points; like the page, it sends the drawing at
                 most every 150 ms and only when the previous answer is in.
                 Before: every stage in every answer (the old page). After:
                 the stages of the two cards on screen (learner i looks at
                 cards i mod 6 and the next), then those the answer omitted.
                 Per request and per update (an update is complete when every
                 stage asked for is in): p50/p95 latency, bytes per answer.
    attention    "What the model looks at", two ways a class uses it:
                 `shared`: every learner opens the lesson's example digits and
                 MNIST samples (the same 12 inputs for the class, each for one
                 of 3 target digits), looking 1 s at each answer;
                 `own`: every learner sends its own drawing, a new one 2 s
                 after each answer (no two inputs alike: nothing to reuse).
    model        GET /learn/model/ by every learner, again a second after each
                 answer, with
                 --drawings approved drawings (the "before" with
                 --before-drawings, as 20,000 cost it about 22 s per view);
                 the first (cold) view after the data changed is reported
                 apart from the rest.
    neuron       "How it works", one value's arithmetic (POST /learn/api/neuron):
                 every learner clicks a random layer, map and position of
                 its own drawing, one a second; `first` (the drawing's
                 forward pass) and `repeat` reported apart.
    snapshots    "How it learned" (POST /learn/api/snapshots): every learner
                 sends a drawing no one sent before (`first`), then the same
                 drawing 5 more times, 200 ms apart, while scrubbing
                 (`repeat`), and draws again a second later.
                 These two run only where the code has the endpoint (not
                 in the default "before").

Plus the forward pass at batch 1 in this process (eager, the same weights), as
a yardstick of the machine's speed during the run, and the load average at
the start, the end and the start of each scenario (other work on a shared
machine shows there). Everything is bounded:
each scenario stops after --seconds, each request after 60 s. Results go to
bench/results/teaching.json. The learners and their scenarios are
bench/teaching_learners.py; this file starts the servers and reports.

    python bench/bench_teaching.py                         # 30 learners, 20 s a scenario
    python bench/bench_teaching.py --learners 10 --seconds 8 --drawings 2000
    python bench/bench_teaching.py --before none           # this code only
    python bench/bench_teaching.py --scenarios stages --before REV --before-compact
    python bench/bench_teaching.py --scenarios stages --before none --processes 2

`--processes 2` starts two Daphne processes for each code, each on its own
SQLite database (seeded alike), learner i on process i mod 2.
"""

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
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
    snapshot,
    write_results,
)
from bench.teaching_learners import (  # noqa: E402
    Client,
    attention_scenario,
    model_scenario,
    neuron_scenario,
    snapshots_scenario,
    stages_scenario,
)
from tests.live import server_env  # noqa: E402
from tests.support import free_port  # noqa: E402

# The yardstick's model: the first shipped one, as in the published figures.
YARDSTICK = "digitcnn-v1-seed1.pt"

# The commit before the teaching pages sent only the stages on screen.
DEFAULT_BEFORE = "873231a"

SEED_SCRIPT = """
import numpy as np
from recognizer.models import Drawing
count = {count}
rng = np.random.default_rng(7)
batch = []
for index in range(count):
    image = ((rng.random((28, 28)) > 0.85) * 255).astype(np.uint8)
    label = int(index % 10)
    batch.append(Drawing(label=label, strokes={{}}, input_image=image.tobytes(),
                         prediction=label, probabilities=[0.1] * 10,
                         player_id=f"bench-{{index}}", player_name="bench", game_id="bench",
                         round_number=index % 30000, status=Drawing.Status.APPROVED))
    if len(batch) == 2000:
        Drawing.objects.bulk_create(batch)
        batch = []
Drawing.objects.bulk_create(batch)
print(Drawing.objects.filter(status=Drawing.Status.APPROVED).count())
"""


class Server:
    """Daphne for the code in `code_dir`, on its own SQLite database and var folder."""

    def __init__(self, code_dir, workdir, label):
        self.code_dir = Path(code_dir)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.port = free_port()
        self.env = server_env(self.workdir)
        self.env["DEBUG"] = "0"
        self.process = None

    def manage(self, *args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=self.code_dir,
                              env=self.env, capture_output=True, text=True, check=True,
                              timeout=600)

    def start(self):
        self.manage("migrate", "--noinput")
        log = open(self.workdir / "daphne.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
             "digitsite.asgi:application"],
            cwd=self.code_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2)
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.label}: daphne did not answer")

    def seed(self, count):
        return int(self.manage("shell", "-c", SEED_SCRIPT.format(count=count)).stdout.split()[-1])

    def cpu_seconds(self):
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()



class ServerGroup:
    """Several processes of one code, each on its own database, seen as one
    server: each learner connects to the next process in turn (a round robin
    of learners, as a proxy balancing connections would do), and the
    group's CPU time is theirs together. The teaching endpoints keep nothing
    between requests that the processes would need to share."""

    def __init__(self, servers):
        self.servers = servers
        self._turns = itertools.cycle(servers)
        self._lock = threading.Lock()

    @property
    def port(self):
        with self._lock:
            return next(self._turns).port

    def cpu_seconds(self):
        return sum(server.cpu_seconds() for server in self.servers)


def measure(server, args, label, drawings):
    # The "before" asks for every stage, as the page before compact answers
    # did, unless --before-compact (a revision whose page already asks for
    # the stages on screen).
    compact = label == "after" or args.before_compact
    scenarios = [
        ("stages", lambda: stages_scenario(server, args.learners, args.seconds, compact)),
        ("attention_shared",
         lambda: attention_scenario(server, args.learners, args.seconds, True)),
        ("attention_own", lambda: attention_scenario(server, args.learners, args.seconds, False)),
        ("model", lambda: model_scenario(server, args.learners, args.model_seconds, drawings)),
        ("neuron", lambda: neuron_scenario(server, args.learners, args.seconds)),
        ("snapshots", lambda: snapshots_scenario(server, args.learners, args.seconds)),
    ]
    result = {}
    for name, scenario in scenarios:
        if name not in args.scenarios:
            continue
        if name in NEWER_ENDPOINTS and not has_endpoint(server, NEWER_ENDPOINTS[name]):
            print(f"[{label}] {name}: no {NEWER_ENDPOINTS[name]} in this code", flush=True)
            continue
        print(f"[{label}] {name}", flush=True)
        load_1min = round(os.getloadavg()[0], 2)
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        result[name] = scenario()
        requests = max(1, result[name]["requests"])
        # CPU per request, the server's and this benchmark's own (its learners
        # share the machine's cores with the server).
        result[name]["server_cpu_ms_per_request"] = round(
            (server.cpu_seconds() - server_cpu) * 1000 / requests, 2)
        result[name]["client_cpu_ms_per_request"] = round(
            (time.process_time() - client_cpu) * 1000 / requests, 2)
        result[name]["load_average_1min_at_start"] = load_1min
    return result


RATIO_SCENARIOS = ("stages", "attention_shared")
SCENARIOS = ("stages", "attention_shared", "attention_own", "model", "neuron", "snapshots")
# Scenarios of endpoints that earlier revisions may not have.
NEWER_ENDPOINTS = {"neuron": "/learn/api/neuron", "snapshots": "/learn/api/snapshots"}


def has_endpoint(server, path):
    """Whether the server answers `path` with anything but 404 (an empty body: a 400)."""
    status, _, _ = Client(server.port).request("POST", path, "{}")
    return status != 404


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model-seconds", type=float, default=10.0)
    parser.add_argument("--drawings", type=int, default=20_000)
    parser.add_argument("--before-drawings", type=int, default=2_000)
    parser.add_argument("--before", default=DEFAULT_BEFORE,
                        help="git revision to compare with, or 'none'")
    parser.add_argument("--before-compact", action="store_true",
                        help="the before's learners ask for the stages on screen too")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="the scenarios to run, comma-separated (default: all): "
                             + ", ".join(SCENARIOS))
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1,
                        help="Daphne processes per code, learner i on process i mod N")
    parser.add_argument("--output", default="teaching",
                        help="results file name in bench/results/ (without .json)")
    args = parser.parse_args()
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not 1 <= args.learners <= 200 or not 0 < args.seconds <= 300:
        parser.error("1..200 learners and up to 300 s a scenario")

    work = Path(tempfile.mkdtemp(prefix="bench-teaching-"))
    results = {
        "benchmark": "teaching",
        "settings": {"learners": args.learners, "seconds": args.seconds,
                     "model_seconds": args.model_seconds, "drawings": args.drawings,
                     "processes": args.processes,
                     "before_drawings": args.before_drawings, "before": args.before},
        "machine": machine_summary(),
        "load_average_start": load_average(),
        "forward_pass_batch1_ms_start": forward_yardstick(weights=YARDSTICK),
    }
    servers = []
    try:
        runs = [("after", BASE_DIR, args.drawings)]
        if args.before != "none":
            code = snapshot(args.before, work / "before-code")
            runs.insert(0, ("before", code, args.before_drawings))
        for label, code, drawings in runs:
            group = []
            for index in range(args.processes):
                server = Server(code, work / label / f"process-{index}", label).start()
                servers.append(server)
                group.append(server)
                # For a profiler to attach to (py-spy record --pid ...).
                print(f"[{label}] server pid {server.process.pid}", flush=True)
                seeded = server.seed(drawings)
            results[label] = measure(ServerGroup(group), args, label, seeded)
            for server in group:
                server.stop()
        results["forward_pass_batch1_ms_end"] = forward_yardstick(weights=YARDSTICK)
        results["load_average_end"] = load_average()
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    if "before" in results and set(RATIO_SCENARIOS) <= set(args.scenarios):
        before, after = results["before"], results["after"]
        results["ratios"] = {
            "stages_p95_before_over_after": ratio(before["stages"]["p95_ms"],
                                                  after["stages"]["p95_ms"]),
            "stages_bytes_before_over_after": ratio(before["stages"]["bytes_p50"],
                                                    after["stages"]["bytes_p50"]),
            "attention_shared_p95_before_over_after": ratio(
                before["attention_shared"]["p95_ms"], after["attention_shared"]["p95_ms"]),
        }
    path = write_results(args.output, results)
    print(json.dumps(results, indent=2))
    print(f"written to {path}")
    failed = any(results[label][s]["errors"] for label in ("before", "after")
                 if label in results for s in results[label])
    return 1 if failed else 0


def load_average():
    """The 1, 5 and 15 minute load averages: runnable processes, ours included."""
    return [round(v, 2) for v in os.getloadavg()]


def ratio(a, b):
    if not a or not b or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 2)


if __name__ == "__main__":
    sys.exit(main())
