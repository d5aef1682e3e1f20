"""The server's long-lived objects kept out of Python's full garbage collections.

A full (generation 2) collection walks every container object the process
holds. After start-up a server holds a few hundred thousand of them
(Django, Channels, torch and the model), and one full collection took
100-300 ms on the 2-core benchmark machine, with the GIL held: every socket
of the process stood still meanwhile. A `draw` of the largest valid game
drawing (5,000 points, ~60 kB of JSON) makes ~15,000 lists when decoded, so
a client sending such drawings as fast as the limits let it set off full
collections every second or two, and an ordinary player in another room
waited up to 440 ms for a guess that takes 7 ms (bench/bench_abuse.py,
websocket phases). gc.freeze() moves everything alive at start-up into a
generation the collector never walks; collections then look at what
requests made, a few ms. What is frozen is never freed by the cyclic
collector, so it is done once, after the imports that stay for the
process's life.

Frozen, a full collection still walked what the process made since: 65,000-
80,000 objects, 20-25 ms. The young generation's threshold decides how often
that happens. At Python's default (a collection of the youngest objects every
700 allocations more than deallocations), the lists of drawings in flight
(a 5,000-point drawing is 5,000 lists, alive for the few ms of its scoring)
were caught alive by young collections and promoted, and the old generation
filled up: 20 sockets sending the largest drawings set off full collections
in bursts of 2-4 every 5 s, 25-43 ms each, with the interpreter held, and
another room's player's guess p95 rose 5-8x. With 10,000 (GC_YOUNG_THRESHOLD)
those lists die before a collection sees them: one full collection in the
whole benchmark, and the p95 rose 1.7x (bench/bench_abuse.py).
"""

import gc

from digitsite.environment import env_bool, env_checked


def freeze_start_up_objects():
    """Import what every server process keeps (torch and the recognizer), collect
    once, and leave what survives out of later collections. GC_FREEZE_AT_START
    off (0, false, no or off) turns it off, to measure what it is worth."""
    if not env_bool("GC_FREEZE_AT_START", True):
        return False
    # torch is the largest share of the heap. The recognizer's modules import
    # it where a model is used (so that `migrate` and `check` need not), so
    # it is imported here, with what serving a model brings in.
    import torch  # noqa: F401

    import recognizer.calibration  # noqa: F401
    import recognizer.frozen  # noqa: F401
    import recognizer.inference  # noqa: F401
    import recognizer.network  # noqa: F401

    gc.collect()
    gc.freeze()
    return True


# Python's default is 700; see the module's docstring for why not here.
DEFAULT_YOUNG_THRESHOLD = 10_000


def collect_young_objects_less_often():
    """Set the young generation's threshold (GC_YOUNG_THRESHOLD, 0: Python's default)."""
    young = env_checked("GC_YOUNG_THRESHOLD", DEFAULT_YOUNG_THRESHOLD, kind=int,
                        allowed=lambda value: value >= 0, must_be="a whole number, 0 or more")
    if young > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young, middle, old)
    return gc.get_threshold()
