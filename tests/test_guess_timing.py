"""Where a live guess's time goes on the server (digitsite.game.guess_timing):
the figures kept are bounded and right, each drawing's stages are laps of
its whole time, and a real server shows them in /healthz's details to a
request from its own machine, never in the public answer."""

import asyncio
import json
import urllib.request

import pytest

from digitsite.game.guess_timing import STAGES, GuessTiming, Stopwatch


def test_the_figures_are_nearest_rank_percentiles_of_what_was_kept():
    timing = GuessTiming(window=1000)
    for ms in range(100, 0, -1):  # 100 ms down to 1 ms, in no order that helps
        timing.record("render", ms / 1000)
    assert timing.summary()["render"] == {"recorded": 100, "samples": 100, "p50_ms": 50.0,
                                          "p95_ms": 95.0, "max_ms": 100.0}
    assert timing.summary()["write"] == {"recorded": 0, "samples": 0}
    assert set(timing.summary()) == set(STAGES)


def test_only_the_last_window_of_samples_is_kept():
    """However many guesses a crowd makes, a stage keeps `window` floats."""
    timing = GuessTiming(window=10)
    for ms in range(1, 26):
        timing.record("total", ms / 1000)
    summary = timing.summary()["total"]
    assert (summary["recorded"], summary["samples"]) == (25, 10)
    assert summary["max_ms"] == 25.0 and summary["p50_ms"] == 20.0  # 16..25 kept


def test_a_drawings_stages_are_laps_of_its_whole_time():
    """Each lap is the time since the one before, and the total the time
    since the drawing arrived."""
    timing = GuessTiming()
    now = iter([10.0, 10.002, 10.010, 10.049, 10.070])
    watch = Stopwatch(timing, clock=lambda: next(now))  # arrived at 10.000
    watch.lap("waited")          # 2 ms
    watch.lap("render")          # 8 ms
    watch.lap("recognise")       # 39 ms
    watch.done()                 # 70 ms in all
    summary = timing.summary()
    assert [summary[s]["max_ms"] for s in ("waited", "render", "recognise", "total")] == [
        2.0, 8.0, 39.0, 70.0]
    assert summary["slot"] == {"recorded": 0, "samples": 0}


def healthz(server, **headers):
    request = urllib.request.Request(server.url + "/healthz", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.slow
def test_a_real_server_times_its_guesses_and_tells_only_its_own_machine(game_server):
    """A player's drawings over a real WebSocket: each scored drawing adds
    a sample to every stage it went through, shown to a request straight
    from this machine; a request relayed by a proxy gets the status alone."""
    before = healthz(game_server)["guess_timing"]

    async def play():
        code = game_server.create_room("Ada", rounds=1, seconds=60.0, target_confidence=1.0)
        ada = await game_server.game_client(code, "Ada")
        await ada.join()
        await ada.start(1)
        await ada.expect("round_start")
        for seq in (1, 2, 3):
            await ada.draw(1, {"width": 100, "height": 100,
                               "strokes": [[[10, 10, 0], [90, 10, 50], [40, 90, 90 + seq]]]},
                           seq=seq, pen_up=False)
            await ada.expect("guess", lambda m, seq=seq: m["seq"] == seq)
        await ada.close()

    asyncio.run(play())
    after = healthz(game_server)["guess_timing"]
    for stage in ("waited", "slot", "render", "recognise", "total"):
        assert after[stage]["recorded"] >= before[stage]["recorded"] + 3, stage
        assert 0 <= after[stage]["p50_ms"] <= after[stage]["max_ms"]
    # The round's first drawing is written before its guess.
    assert after["write"]["recorded"] >= before["write"]["recorded"] + 1
    public = healthz(game_server, **{"X-Forwarded-For": "203.0.113.7"})
    assert set(public) == {"status", "checks"}
