"""Game benchmark: simulated players over real WebSockets against a real Daphne server.

Starts Daphne on loopback (SQLite, in-memory channel layer), creates rooms,
and lets N players play them the way the page does: each draws its digit
progressively, sending the whole drawing about 10 times a second, and ends
its round with `done` (one player per room lets the timer end it instead;
one opts out of storage). Reports:

- live-guess latency (a `draw` sent to its `guess` received) p50/p95/p99;
- drawings the server must have stored (every player/round that got a guess,
  opt-outs excepted) against drawings actually stored: they must be equal, and
  each stored drawing must be one the player sent in that round and the one
  the round's results showed; also how often it is the very last one answered
  (the rest were answered too late, after the round had closed);
- the server's CPU time per answered drawing, which the machine's load does
  not distort the way it distorts latency.

The whole run is bounded by --timeout. Results go to bench/results/game.json.

    python bench/bench_game.py [--players 16] [--room-size 4] [--rounds 3]
"""

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ensure_model,
    machine_summary,
    percentile,
    setup_django,
    write_results,
)


def stroke_points(player, round_number, count=120):
    """A loop and a tail (a 9-ish digit), different for each player and round."""
    phase = player * 0.7 + round_number
    loop = [[150 + 50 * math.cos(2 * math.pi * k / count + phase),
             110 + 50 * math.sin(2 * math.pi * k / count + phase), k * 12]
            for k in range(count)]
    tail = [[200, 110 + k * 4, count * 12 + k * 12] for k in range(40)]
    return [loop, tail]


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def partial_drawing(strokes, fraction):
    """The drawing after `fraction` of its points: what the page sends while drawing."""
    total = sum(len(s) for s in strokes)
    keep = max(2, int(total * fraction))
    out = []
    for stroke in strokes:
        if keep <= 0:
            break
        out.append(stroke[:keep])
        keep -= len(stroke)
    return {"width": 300, "height": 300, "strokes": out}


class Player:
    def __init__(self, index, room_code, ws_url, origin, args, lets_timer_end, opt_out):
        self.index = index
        self.code = room_code
        self.url = f"{ws_url}/ws/v1/rooms/{room_code}/"
        self.origin = origin
        self.args = args
        self.lets_timer_end = lets_timer_end
        self.opt_out = opt_out
        self.id = None
        self.host = False
        self.latencies = []
        self.sent = {}
        self.drawings = {}
        # round -> the drawing of the last guess received for it
        self.last_scored = {}
        # round -> the drawing the server's round_end shows for this player
        self.result_drawings = {}
        self.draws_sent = 0
        self.errors = []
        self.finished_game = False

    async def run(self, start_event, joined_barrier):
        from websockets.asyncio.client import connect

        async with connect(self.url, origin=self.origin, max_size=2**22) as ws:
            await ws.send(json.dumps({"type": "join", "protocol": 1,
                                      "name": f"bot{self.index}", "opt_out": self.opt_out}))
            drawing_task = None
            current_round = None
            async for raw in ws:
                message = json.loads(raw)
                kind = message["type"]
                if kind == "welcome":
                    self.id = message["you"]["id"]
                    self.host = message["you"]["host"]
                    await joined_barrier()
                    if self.host:
                        await start_event.wait()
                        await ws.send(json.dumps({"type": "start",
                                                  "rounds": self.args.rounds}))
                elif kind == "round_start":
                    current_round = message["round"]
                    drawing_task = asyncio.ensure_future(self.draw_round(ws, current_round))
                elif kind == "guess":
                    sent = self.sent.pop((message["round"], message["seq"]), None)
                    if sent is not None:
                        self.latencies.append(time.perf_counter() - sent)
                        self.last_scored[message["round"]] = self.drawings[
                            (message["round"], message["seq"])]
                elif kind == "round_end":
                    if drawing_task is not None:
                        drawing_task.cancel()
                    mine = next((r for r in message["results"] if r["player"] == self.id), None)
                    if mine is not None and mine["drawing"] is not None:
                        self.result_drawings[message["round"]] = mine["drawing"]
                elif kind == "game_over":
                    self.finished_game = True
                    break
                elif kind == "error":
                    self.errors.append(message["code"])

    async def draw_round(self, ws, round_number):
        strokes = stroke_points(self.index, round_number)
        steps = self.args.updates
        for step in range(1, steps + 1):
            drawing = partial_drawing(strokes, step / steps)
            seq = round_number * 1000 + step
            self.drawings[(round_number, seq)] = drawing
            self.sent[(round_number, seq)] = time.perf_counter()
            await ws.send(json.dumps({"type": "draw", "round": round_number, "seq": seq,
                                      "drawing": drawing}))
            self.draws_sent += 1
            await asyncio.sleep(0.1)
        # Let the last guess come back before ending the round, as a player would.
        await asyncio.sleep(0.3)
        if not self.lets_timer_end:
            await ws.send(json.dumps({"type": "done", "round": round_number}))


async def play(players, timeout):
    start = asyncio.Event()
    joined = 0
    lock = asyncio.Lock()

    async def joined_barrier():
        nonlocal joined
        async with lock:
            joined += 1
            if joined == len(players):
                start.set()

    tasks = [asyncio.ensure_future(p.run(start, joined_barrier)) for p in players]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    failures = [repr(t.exception()) for t in done if t.exception() is not None]
    return len(pending), failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=16)
    parser.add_argument("--room-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="round length")
    parser.add_argument("--updates", type=int, default=25,
                        help="drawing updates sent per player per round (10 a second)")
    parser.add_argument("--timeout", type=float, default=180.0, help="bound on the whole run")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="the server's RECOGNIZER_TORCH_THREADS (0: torch's default); "
                        "batches of a few drawings gain nothing from more, and on a busy "
                        "machine torch's thread pool makes each pass several times slower")
    args = parser.parse_args()
    if not 1 <= args.room_size <= 8:
        parser.error("--room-size must be 1 to 8")

    workdir = Path(tempfile.mkdtemp(prefix="bench-game-"))
    from tests.live import LiveServer

    server = LiveServer(workdir, env={"LOG_LEVEL": "WARNING",
                                      "RECOGNIZER_TORCH_THREADS": str(args.torch_threads)})
    # This process shares the server's database: it creates the rooms and
    # counts the stored drawings.
    os.environ["DATABASE_URL"] = server.env["DATABASE_URL"]
    setup_django(var_dir=server.env["DIGITSITE_VAR_DIR"])
    version, origin = ensure_model()

    from digitsite.game import create_room
    from recognizer.models import Drawing

    room_count = math.ceil(args.players / args.room_size)
    rooms = [create_room(f"bench {i}", rounds=args.rounds, seconds=args.seconds,
                         results_seconds=1.0, target_confidence=1.0,
                         max_players=args.room_size) for i in range(room_count)]
    players = []
    for index in range(args.players):
        room = rooms[index // args.room_size]
        position = index % args.room_size
        players.append(Player(
            index, room.code, server.ws_url, server.url, args,
            lets_timer_end=(position == 1), opt_out=(position == 3),
        ))

    server.start()
    try:
        cpu_before = cpu_seconds(server.process.pid)
        started = time.perf_counter()
        unfinished, failures = asyncio.run(play(players, args.timeout))
        wall = time.perf_counter() - started
        cpu_after = cpu_seconds(server.process.pid)
    finally:
        server.stop()

    stored = {(d.player_id, d.round_number): d.strokes
              for d in Drawing.objects.filter(room_code__in=[r.code for r in rooms])}
    opt_out_ids = {p.id for p in players if p.opt_out}
    stored_opt_out = sum(1 for key in stored if key[0] in opt_out_ids)
    # Submitted: every player and round the server answered with a guess.
    submitted = {(p.id, rnd) for p in players if not p.opt_out for rnd in p.last_scored}
    opted_out = sum(len(p.last_scored) for p in players if p.opt_out)
    problems = []
    last_guessed_stored = 0
    for player in players:
        if player.opt_out:
            continue
        for round_number, last in player.last_scored.items():
            key = (player.id, round_number)
            if key not in stored:
                problems.append({"player": player.index, "round": round_number,
                                 "problem": "not stored"})
                continue
            sent = [d for (r, _), d in player.drawings.items() if r == round_number]
            if stored[key] not in sent:
                problems.append({"player": player.index, "round": round_number,
                                 "problem": "stored drawing was never sent"})
            elif stored[key] != player.result_drawings.get(round_number):
                problems.append({"player": player.index, "round": round_number,
                                 "problem": "stored drawing differs from the round's results"})
            # Stored strokes come back as floats: compare values, not text.
            last_guessed_stored += stored[key] == last
    extra = [key for key in stored if key not in submitted and key[0] not in opt_out_ids]
    latencies = [ms * 1000 for p in players for ms in p.latencies]
    errors = {}
    for player in players:
        for code in player.errors:
            errors[code] = errors.get(code, 0) + 1

    results = {
        "benchmark": "game",
        "players": args.players,
        "rooms": room_count,
        "room_size": args.room_size,
        "rounds": args.rounds,
        "round_seconds": args.seconds,
        "model": version.version,
        "model_origin": origin,
        "server_torch_threads": args.torch_threads,
        "wall_seconds": round(wall, 2),
        "games_finished": sum(p.finished_game for p in players),
        "unfinished_clients": unfinished,
        "client_failures": failures[:5],
        "draws_sent": sum(p.draws_sent for p in players),
        "guesses_received": len(latencies),
        # CPU the server spent per message answered: unlike latency, this does
        # not depend on what else the machine is running.
        "server_cpu_seconds": None if cpu_before is None else round(cpu_after - cpu_before, 2),
        "server_cpu_ms_per_guess": None if cpu_before is None or not latencies
        else round((cpu_after - cpu_before) * 1000 / len(latencies), 2),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "guess_latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2) if latencies else None,
        },
        "drawings_submitted": len(submitted),
        "drawings_stored": len(stored) - stored_opt_out,
        "stored_equals_submitted": not problems and not extra
        and len(stored) - stored_opt_out == len(submitted),
        "problems": problems[:10],
        "stored_without_guess": len(extra),
        # The stored drawing is the last one recorded before the round closed;
        # on an overloaded server the very last guess can come after that.
        "stored_is_last_guessed": f"{last_guessed_stored}/{len(submitted)}",
        "opted_out_submitted": opted_out,
        "opted_out_stored": stored_opt_out,
        "errors": errors,
        "machine": machine_summary(),
    }
    path = write_results("game", results)
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2))
    print(f"results written to {path.relative_to(Path(__file__).resolve().parent.parent)}")
    ok = results["stored_equals_submitted"] and not unfinished and not failures \
        and stored_opt_out == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
