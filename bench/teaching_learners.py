"""The learners of the teaching benchmark: each one a thread with its own
keep-alive connection, using a teaching page the way the page does.

`stages_scenario`, `attention_scenario`, `model_scenario`, `neuron_scenario`
and `snapshots_scenario` run `learners` of them against one server for a
number of seconds and summarise what they saw (latency percentiles, bytes per
answer, errors); bench/bench_teaching.py runs each scenario against this code
and an earlier revision.
"""

import http.client
import json
import random
import threading
import time

from bench.common import percentile

STAGES = ["conv1", "conv2", "pool1", "conv3", "conv4", "pool2", "dense"]
THROTTLE_S = 0.15
# A learner on the model page reloads it after a second: 30 views a second for
# the class, far more than a lesson makes, none of them from a warm browser cache.
MODEL_READ_S = 1.0
REQUEST_TIMEOUT = 60
# "How it works": a learner clicking one value after another, reading each
# one's arithmetic for a second.
NEURON_READ_S = 1.0
# (maps, height, width) of each layer POST /learn/api/neuron explains.
NEURON_LAYERS = {"conv1": (32, 28, 28), "conv2": (32, 28, 28), "pool1": (32, 14, 14),
                 "conv3": (64, 14, 14), "conv4": (64, 14, 14), "pool2": (64, 7, 7),
                 "dense": (128, 1, 1), "softmax": (10, 1, 1)}
# "How it learned": a new drawing, then SCRUB_REPEATS more requests for the
# same drawing, one every SCRUB_S (the page's throttle is 200 ms), then
# SNAPSHOTS_READ_S looking at the answer before drawing again.
SCRUB_REPEATS = 5
SCRUB_S = 0.2
SNAPSHOTS_READ_S = 1.0


class Client:
    """One learner's keep-alive HTTP connection and browser session.

    The teaching endpoints are limited per browser session (under a ceiling
    per address), as a class behind one school address is: each learner
    opens its lesson page first and sends its session cookie after that.
    """

    def __init__(self, port, page="/learn/how-it-works/"):
        self.port = port
        self.connection = None
        self.cookie = None
        if page is not None:
            self.request("GET", page)

    def request(self, method, path, body=None):
        """(status, body bytes, seconds)."""
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                             timeout=REQUEST_TIMEOUT)
            start = time.perf_counter()
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                if self.cookie:
                    headers["Cookie"] = self.cookie
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                for header in response.headers.get_all("Set-Cookie") or ():
                    if header.startswith("sessionid="):
                        self.cookie = header.split(";", 1)[0]
                return response.status, data, time.perf_counter() - start
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def digit_path(seed):
    """A seven-like polyline of 60 points with the learner's own wobble."""
    rng = random.Random(seed)
    corners = [(70, 70), (230, 75), (190, 150), (150, 240)]
    points = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:], strict=False):
        for i in range(20):
            f = i / 20
            points.append([round(x0 + (x1 - x0) * f + rng.uniform(-6, 6), 1),
                           round(y0 + (y1 - y0) * f + rng.uniform(-6, 6), 1)])
    return points


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.updates = []
        self.sizes = []
        self.errors = 0
        self.extra = {}
        # {kind: latencies} of the requests told apart (a new input, a repeat).
        self.kinds = {}

    def add(self, seconds=None, size=None, update=None, error=False, kind=None):
        with self.lock:
            if seconds is not None:
                self.latencies.append(seconds)
                if kind is not None:
                    self.kinds.setdefault(kind, []).append(seconds)
            if size is not None:
                self.sizes.append(size)
            if update is not None:
                self.updates.append(update)
            self.errors += bool(error)

    def summary(self):
        def ms(values, q):
            return round(percentile(values, q) * 1000, 1) if values else None

        half = len(self.latencies) // 2
        by_kind = {}
        for kind, values in sorted(self.kinds.items()):
            by_kind.update({f"{kind}_requests": len(values), f"{kind}_p50_ms": ms(values, 50),
                            f"{kind}_p95_ms": ms(values, 95)})
        return {
            "requests": len(self.latencies),
            "errors": self.errors,
            "p50_ms": ms(self.latencies, 50),
            "p95_ms": ms(self.latencies, 95),
            "max_ms": ms(self.latencies, 100),
            "updates": len(self.updates) or None,
            "update_p50_ms": ms(self.updates, 50),
            "update_p95_ms": ms(self.updates, 95),
            "bytes_p50": int(percentile(self.sizes, 50)) if self.sizes else None,
            "bytes_max": max(self.sizes) if self.sizes else None,
            # The median of the first and of the second half of the requests, in the
            # order they finished: close together when the run was long enough.
            "p50_halves_ms": [ms(self.latencies[:half], 50), ms(self.latencies[half:], 50)]
            if half else None,
            **by_kind,
            **self.extra,
        }


def run_learners(count, seconds, learner):
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=learner, args=(i, stop_at), daemon=True)
               for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT + 10)


def stages_scenario(server, learners, seconds, compact):
    stats = Stats()

    def learner(index, stop_at):
        client = Client(server.port)
        path = digit_path(index)
        on_screen = STAGES[index % 6: index % 6 + 2]
        length = 4
        while time.monotonic() < stop_at:
            begun = time.perf_counter()
            drawing = {"width": 300, "height": 300, "strokes": [path[:length]]}
            length = length + 2 if length < len(path) else 4  # a new drawing
            asked = list(on_screen) if compact else None
            update = 0.0
            try:
                while True:
                    body = dict(drawing, stages=asked) if asked else drawing
                    status, data, took = client.request("POST", "/learn/api/stages",
                                                        json.dumps(body))
                    update += took
                    ok = status == 200
                    stats.add(seconds=took, size=len(data), error=not ok)
                    if not ok:
                        break
                    answer = json.loads(data)
                    asked = answer.get("omitted")
                    if not asked or not answer["activations"]:
                        stats.add(update=update)
                        break
            except (OSError, http.client.HTTPException, ValueError):
                stats.add(error=True)
            # The page's throttle: at most one drawing every 150 ms.
            time.sleep(max(0.0, THROTTLE_S - (time.perf_counter() - begun)))

    run_learners(learners, seconds, learner)
    return stats.summary()


def attention_scenario(server, learners, seconds, shared):
    stats = Stats()
    examples = [{"width": 300, "height": 300, "strokes": [digit_path(1000 + k)]}
                for k in range(12)]
    counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def learner(index, stop_at):
        client = Client(server.port, page="/learn/attention/")
        rng = random.Random(index)
        while time.monotonic() < stop_at:
            if shared:
                body = dict(rng.choice(examples), target=rng.choice([None, 3, 8]))
                body = {k: v for k, v in body.items() if v is not None}
                look = 1.0
            else:
                with counter_lock:
                    serial = next(counter)
                body = {"width": 300, "height": 300, "strokes": [digit_path(10_000 + serial)]}
                look = 2.0
            try:
                status, data, took = client.request("POST", "/learn/api/attention",
                                                    json.dumps(body))
                stats.add(seconds=took, size=len(data), error=status != 200)
            except (OSError, http.client.HTTPException):
                stats.add(error=True)
            time.sleep(look)

    run_learners(learners, seconds, learner)
    return stats.summary()


def model_scenario(server, learners, seconds, drawings):
    stats = Stats()
    client = Client(server.port, page=None)
    status, data, cold = client.request("GET", "/learn/model/")
    stats.extra["cold_view_ms"] = round(cold * 1000, 1)
    stats.extra["approved_drawings"] = drawings
    if status != 200:
        stats.add(error=True)
    warm_cpu = server.cpu_seconds()

    def learner(index, stop_at):
        client = Client(server.port, page=None)
        while time.monotonic() < stop_at:
            try:
                status, data, took = client.request("GET", "/learn/model/")
                stats.add(seconds=took, size=len(data), error=status != 200)
            except (OSError, http.client.HTTPException):
                stats.add(error=True)
            time.sleep(MODEL_READ_S)

    run_learners(learners, seconds, learner)
    # Without the cold view's measurement of every drawing.
    stats.extra["warm_server_cpu_ms_per_request"] = round(
        (server.cpu_seconds() - warm_cpu) * 1000 / max(1, len(stats.latencies)), 2)
    return stats.summary()


def neuron_scenario(server, learners, seconds):
    """Lesson 1's arithmetic: every learner clicks a random layer, map and position of
    its own drawing, one a second. The first click of a drawing runs the network
    (`first`), the others reuse its forward pass (`repeat`)."""
    stats = Stats()

    def learner(index, stop_at):
        client = Client(server.port)
        rng = random.Random(index)
        drawing = {"width": 300, "height": 300, "strokes": [digit_path(20_000 + index)]}
        kind = "first"
        while time.monotonic() < stop_at:
            layer = rng.choice(list(NEURON_LAYERS))
            maps, height, width = NEURON_LAYERS[layer]
            body = dict(drawing, layer=layer, map=rng.randrange(maps), y=rng.randrange(height),
                        x=rng.randrange(width))
            try:
                status, data, took = client.request("POST", "/learn/api/neuron",
                                                    json.dumps(body))
                stats.add(seconds=took, size=len(data), error=status != 200, kind=kind)
            except (OSError, http.client.HTTPException):
                stats.add(error=True)
            kind = "repeat"
            time.sleep(NEURON_READ_S)

    run_learners(learners, seconds, learner)
    return stats.summary()


def snapshots_scenario(server, learners, seconds):
    """Lesson 5: every learner sends a drawing no one sent before (`first`), then asks
    for it SCRUB_REPEATS more times while scrubbing (`repeat`), then draws again."""
    stats = Stats()
    counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def learner(index, stop_at):
        client = Client(server.port)
        while time.monotonic() < stop_at:
            with counter_lock:
                serial = next(counter)
            body = json.dumps({"width": 300, "height": 300,
                               "strokes": [digit_path(30_000 + serial)]})
            for attempt in range(1 + SCRUB_REPEATS):
                if time.monotonic() >= stop_at:
                    break
                try:
                    status, data, took = client.request("POST", "/learn/api/snapshots", body)
                    stats.add(seconds=took, size=len(data), error=status != 200,
                              kind="repeat" if attempt else "first")
                except (OSError, http.client.HTTPException):
                    stats.add(error=True)
                time.sleep(SCRUB_S)
            time.sleep(SNAPSHOTS_READ_S)

    run_learners(learners, seconds, learner)
    return stats.summary()
