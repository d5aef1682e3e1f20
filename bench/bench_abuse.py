"""Abuse benchmark: an ordinary API client's latency alone and while another floods the API.

A real Daphne server on loopback (SQLite, the shipped model). The ordinary
client (source address 127.0.0.2) sends a plausible drawing every 100 ms on
one keep-alive connection and times each answer. The abusive client (source
address 127.0.0.3) keeps --flood connections busy with the worst valid
drawings of tests/worst_drawings.py (10,000 points at the ink limit, about
100 kB of JSON each), sending the next one the moment an answer (a 200 or a
429) arrives. Each phase lasts --seconds; the whole run is bounded by
--requests per phase for the ordinary client.

The WebSocket phases (bench/abuse_websocket.py) measure a game player the
same way: alone, beside 20 sockets sending the worst valid game drawings,
and beside a client that sends frames faster than it reads; their results
go under "websocket" in the same file. `--phases` picks which run; the
others' results already in the file are kept.

Both configurations run in the same benchmark: the default per-client limits,
and limits lifted (in flight and rate set very high), so the ratio of the
ordinary client's p95 under the flood to its p95 alone is shown with and
without them. Results in bench/results/abuse.json.

`--ws-bursts 1000000,512000` runs the WebSocket phases once per value of
GAME_WS_BYTES_BURST_PER_ADDRESS, in turns, `--ws-repeat` times, each on a
server of its own, and stores every run and the median p95 ratios under
"websocket_bursts" (the address's burst decides how many of the flood's
drawings arrive at once when its budget has refilled).

    python bench/bench_abuse.py [--seconds 20] [--flood 16] [--requests 150]
                                [--phases http,websocket] [--note "..."]
                                [--ws-bursts B1,B2 --ws-repeat 3]
"""

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_inference import sample_drawing  # noqa: E402
from bench.common import (  # noqa: E402
    RESULTS_DIR,
    machine_summary,
    percentile,
    write_results,
)

ORDINARY_ADDRESS = "127.0.0.2"
ABUSIVE_ADDRESS = "127.0.0.3"
ORDINARY_INTERVAL = 0.1
NO_LIMITS = {"RECOGNIZER_API_MAX_IN_FLIGHT": "100000", "RECOGNIZER_API_RATE": "1e9",
             "RECOGNIZER_API_BURST": "1000000000"}


def connect(port, address):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60,
                                      source_address=(address, 0))


def post(connection, body):
    connection.request("POST", "/api/recognize", body=body,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def ordinary_client(port, seconds, max_requests):
    """Latencies (s) of a paced client, and any non-200 statuses."""
    bodies = [json.dumps(sample_drawing(i)).encode() for i in range(16)]
    connection = connect(port, ORDINARY_ADDRESS)
    latencies, errors = [], []
    deadline = time.monotonic() + seconds
    index = 0
    while time.monotonic() < deadline and index < max_requests:
        start = time.perf_counter()
        status = post(connection, bodies[index % len(bodies)])
        latency = time.perf_counter() - start
        if status == 200:
            latencies.append(latency)
        else:
            errors.append(status)
        index += 1
        time.sleep(max(0.0, ORDINARY_INTERVAL - latency))
    connection.close()
    return latencies, errors


def flood(port, bodies, stop, counts, lock):
    connection = connect(port, ABUSIVE_ADDRESS)
    index = 0
    while not stop.is_set():
        try:
            status = post(connection, bodies[index % len(bodies)])
        except (OSError, http.client.HTTPException):
            status = "error"
            connection.close()
            connection = connect(port, ABUSIVE_ADDRESS)
        with lock:
            counts[status] = counts.get(status, 0) + 1
        index += 1
    connection.close()


def summary(latencies, errors):
    return {
        "requests": len(latencies) + len(errors),
        "errors": errors,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p95_ms": percentile(latencies, 95) * 1000 if latencies else None,
    }


def run_configuration(name, env, args, bodies):
    from tests.live import LiveServer

    server = LiveServer(Path(tempfile.mkdtemp(prefix=f"bench-abuse-{name}-")), env=env)
    server.start()
    try:
        warm = connect(server.port, ORDINARY_ADDRESS)
        for i in range(5):  # model load and freezing, allocator
            post(warm, json.dumps(sample_drawing(i)).encode())
        warm.close()
        alone = summary(*ordinary_client(server.port, args.seconds, args.requests))

        stop, lock, counts = threading.Event(), threading.Lock(), {}
        flooders = [threading.Thread(target=flood, args=(server.port, bodies, stop, counts, lock))
                    for _ in range(args.flood)]
        for thread in flooders:
            thread.start()
        time.sleep(1.0)  # let the flood reach its steady state
        flooded = summary(*ordinary_client(server.port, args.seconds, args.requests))
        stop.set()
        for thread in flooders:
            thread.join(timeout=120)
    finally:
        server.stop()
    ratio = flooded["p95_ms"] / alone["p95_ms"] if alone["p95_ms"] and flooded["p95_ms"] else None
    return {
        "alone": alone,
        "flooded": flooded,
        "p95_ratio": ratio,
        "abusive_answers": {str(k): v for k, v in sorted(counts.items(), key=str)},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--flood", type=int, default=16, help="abusive connections")
    parser.add_argument("--requests", type=int, default=150,
                        help="most ordinary requests per phase")
    parser.add_argument("--phases", default="http,websocket",
                        help="comma-separated: http, websocket")
    parser.add_argument("--note", default="",
                        help="what else the machine was doing, stored with the results")
    parser.add_argument("--ws-bursts", default="",
                        help="comma-separated GAME_WS_BYTES_BURST_PER_ADDRESS values to "
                             "compare in the WebSocket phases, in turns")
    parser.add_argument("--ws-repeat", type=int, default=3)
    args = parser.parse_args()
    if args.ws_bursts:
        compare_bursts(args)
        return
    phases = set(args.phases.split(","))
    path = RESULTS_DIR / "abuse.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if "http" in phases:
        results.update(http_phases(args))
        print_http(results)
    if "websocket" in phases:
        from bench.abuse_websocket import run_websocket_phases

        results["websocket"] = dict(run_websocket_phases(args.seconds), note=args.note,
                                    machine=machine_summary())
        print_websocket(results["websocket"])
    print(f"written to {write_results('abuse', results)}")


def compare_bursts(args):
    """The WebSocket phases once per burst value, in turns, --ws-repeat times."""
    from bench.abuse_websocket import run_websocket_phases

    bursts = [int(value) for value in args.ws_bursts.split(",")]
    runs = []
    for repeat in range(args.ws_repeat):
        for burst in bursts:
            ws = run_websocket_phases(args.seconds,
                                      env={"GAME_WS_BYTES_BURST_PER_ADDRESS": str(burst)})
            runs.append({"burst_bytes": burst, "run": repeat + 1, **ws})
            print(f"burst {burst:>9,d} run {repeat + 1}: alone p95 {ws['alone']['p95_ms']} ms, "
                  f"flooded p95 {ws['flooded']['p95_ms']} ms "
                  f"({ws['flooded']['p95_ratio_to_alone']}x); flood {ws['flood']}")
    medians = {}
    for burst in bursts:
        mine = [run for run in runs if run["burst_bytes"] == burst]
        medians[str(burst)] = {
            phase: statistics.median(run[phase]["p95_ratio_to_alone"] for run in mine)
            for phase in ("flooded", "unread_frames")
        } | {"alone_p95_ms": statistics.median(run["alone"]["p95_ms"] for run in mine),
             "flooded_p95_ms": statistics.median(run["flooded"]["p95_ms"] for run in mine),
             "flood_answered": statistics.median(run["flood"]["answered"] for run in mine)}
        print(f"burst {burst:>9,d}: median p95 ratio flooded {medians[str(burst)]['flooded']}x, "
              f"unread {medians[str(burst)]['unread_frames']}x")
    path = RESULTS_DIR / "abuse.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["websocket_bursts"] = {"runs": runs, "median_p95_ratio": medians,
                                   "seconds_per_phase": args.seconds,
                                   "note": args.note, "machine": machine_summary()}
    print(f"written to {write_results('abuse', results)}")


def print_websocket(ws):
    print(f"{'websocket phase':16s} {'guesses':>8s} {'p50 ms':>8s} {'p95 ms':>8s} "
          f"{'p95 ratio':>10s} {'RSS peak MB':>12s}")
    for phase in ("alone", "flooded", "unread_frames"):
        row = ws[phase]
        ratio = row.get("p95_ratio_to_alone")
        print(f"{phase:16s} {row['guesses']:8d} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} "
              f"{(f'{ratio:.2f}x' if ratio else '-'):>10s} {row['server_rss_peak_mb']:12.1f}")
    print(f"flood: {ws['flood']}")
    print(f"unread: {ws['unread']}")
    print(f"server RSS (MB): {ws['server_rss_mb']}")


def http_phases(args):
    from tests.worst_drawings import worst_drawings

    # The worst drawings the API accepts (the refused ones cost it less).
    bodies = [json.dumps(case.drawing).encode() for case in worst_drawings(10_000)
              if not case.refused]
    results = {"seconds_per_phase": args.seconds, "abusive_connections": args.flood,
               "ordinary_interval_ms": ORDINARY_INTERVAL * 1000,
               "abusive_body_bytes_max": max(len(b) for b in bodies)}
    for name, env in (("limits", {}), ("no_limits", NO_LIMITS)):
        results[name] = run_configuration(name, env, args, bodies)
    return results


def print_http(results):
    print(f"{'configuration':12s} {'alone p50/p95':>18s} {'flooded p50/p95':>20s} "
          f"{'p95 ratio':>10s}  abusive answers")
    for name in ("limits", "no_limits"):
        row = results[name]
        alone, flooded = row["alone"], row["flooded"]
        print(f"{name:12s} {alone['p50_ms']:8.1f} / {alone['p95_ms']:6.1f} ms "
              f"{flooded['p50_ms']:9.1f} / {flooded['p95_ms']:7.1f} ms "
              f"{row['p95_ratio']:9.2f}x  {row['abusive_answers']}")
        if alone["errors"] or flooded["errors"]:
            print(f"  ordinary client's errors: {alone['errors'] + flooded['errors']}")


if __name__ == "__main__":
    main()
