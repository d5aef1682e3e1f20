"""Where a live guess's time goes on the server, for operators.

A guess's latency, as a player feels it, is the time from their `draw`
reaching the server to its `guess` leaving it. Under load that time is mostly
waiting, and the CPU a guess costs (bench/bench_load.py, by thread) does not
say for what. Each scored drawing is so timed in named stages, from when
its `draw` was read and checked (the drawing handed to the scorer):

    waited     to its scoring began: behind the drawing the connection was
               scoring or writing before it
    slot       waiting for one of the address's drawing slots
               (digitsite.game.drawing_slots)
    render     checking the drawing and rendering the network's input, with
               a turn among the renderings in threads when it waits for one
    recognise  the inference queue and the forward pass (recognizer.inference)
    write      the drawing's write, for a drawing written before its guess
               (digitsite.game.drawing_writes), its turn behind the
               connection's earlier write included
    total      all of it, to its `guess` handed to the socket

The process keeps the last WINDOW samples of each stage (a few kB: a
fixed-size ring of floats per stage, so a crowd cannot grow it) and /healthz
shows their count, p50, p95 and maximum, and how many were ever recorded,
to whoever may see its details (staff users, and requests on the machine
itself: digitsite.health). A stage that few drawings go through (`write`)
keeps older samples than the others: its figures span a longer time.
Recording a stage is a clock read and an append, about a microsecond against
the 2-3 ms of CPU a guess costs.
"""

import collections
import math
import time

STAGES = ("waited", "slot", "render", "recognise", "write", "total")

# Samples kept per stage: at 350 guesses a second, the last 6 seconds.
WINDOW = 2048


class GuessTiming:
    def __init__(self, window=WINDOW):
        self._samples = {stage: collections.deque(maxlen=window) for stage in STAGES}
        self._recorded = dict.fromkeys(STAGES, 0)

    def record(self, stage, seconds):
        self._samples[stage].append(seconds)
        self._recorded[stage] += 1

    def summary(self):
        """Per stage: the samples kept, and their p50, p95 and max in ms.

        Safe from any thread: copying a deque (in `sorted`) is one C call
        made with the interpreter held, so no append lands halfway through.
        """
        return {stage: {"recorded": self._recorded[stage], **_describe(sorted(samples))}
                for stage, samples in self._samples.items()}


def _describe(values):
    if not values:
        return {"samples": 0}

    def at(fraction):
        # The nearest rank: the smallest value at or above `fraction` of them.
        return round(values[max(math.ceil(fraction * len(values)) - 1, 0)] * 1000, 2)

    return {"samples": len(values), "p50_ms": at(0.5), "p95_ms": at(0.95),
            "max_ms": round(values[-1] * 1000, 2)}


# The process's figures (one event loop per process serves every room).
guess_timing = GuessTiming()


class Stopwatch:
    """The stages of one drawing, measured from when it was handed to the
    scorer, into `timing` (the process's figures) by `clock` (seconds)."""

    __slots__ = ("received", "mark", "timing", "clock")

    def __init__(self, timing=None, clock=time.perf_counter):
        self.timing = guess_timing if timing is None else timing
        self.clock = clock
        self.received = self.mark = clock()

    def lap(self, stage):
        """Record the time since the previous lap (or arrival) as `stage`."""
        now = self.clock()
        self.timing.record(stage, now - self.mark)
        self.mark = now

    def done(self):
        self.timing.record("total", self.clock() - self.received)
