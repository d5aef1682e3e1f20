"""Rendering many digits on every core.

Tracing, restyling and redrawing one digit takes about 4 ms of Python and
numpy on one core, so the 60,000 digits of a full canvas-style training set
take about 4 minutes on one core and 15 s on 16. Each digit draws from its
own generator seeded by its index, so the result is the same whatever the
number of processes.
"""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# Below this many items the start-up of the processes (about a second each:
# they import numpy, scikit-image and the preprocessing afresh) costs more
# than it saves.
MIN_PARALLEL_ITEMS = 2000
MAX_WORKERS = 16


def default_workers():
    """The cores this process may use, at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _run_chunk(arguments):
    function, items = arguments
    return np.stack([function(*item) for item in items]) if items else None


def map_stacked(function, items, workers=None):
    """np.stack([function(*item) for item in items]), spread over `workers` processes.

    `function` must be a module-level function (it is pickled). Processes
    are started with "spawn": the trainer may hold CUDA and torch's thread
    pool, which a forked child must not inherit.
    """
    items = list(items)
    workers = default_workers() if workers is None else max(1, int(workers))
    if workers == 1 or len(items) < MIN_PARALLEL_ITEMS:
        return np.stack([function(*item) for item in items])
    # A few chunks per process, so a slow chunk does not hold up the rest.
    size = max(1, -(-len(items) // (workers * 4)))
    chunks = [(function, items[i:i + size]) for i in range(0, len(items), size)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        parts = list(pool.map(_run_chunk, chunks))
    return np.concatenate(parts)
