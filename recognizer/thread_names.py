"""A server thread's Python name, given to the operating system too.

Python names its threads for itself only: `top -H`, `ps -L` and
/proc/PID/task/TID/comm show every thread of a server process as "python",
so an operator cannot tell the event loop from the recognizer's worker or
the game's database pool when one of them burns a core (Python 3.11 does
not name them itself). Each thread this project starts calls
`name_os_thread` first, or comes from a `thread_pool`, which does it for
its threads; bench/bench_load.py reads the names to split a guess's server
CPU by thread.

Linux only (prctl PR_SET_NAME, which keeps the first 15 bytes); elsewhere,
and wherever the call fails, nothing changes.
"""

import ctypes
import ctypes.util
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

# From <linux/prctl.h>.
_PR_SET_NAME = 15
# The kernel keeps 16 bytes, the last one the terminating NUL.
MAX_NAME_BYTES = 15

_prctl = None


def _load_prctl():
    global _prctl
    if _prctl is None:
        _prctl = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _prctl = libc.prctl
            except (OSError, AttributeError):
                pass
    return _prctl


def os_name(name):
    """The bytes the kernel keeps of `name`: at most 15, cut on a character boundary."""
    data = name.encode("utf-8")[:MAX_NAME_BYTES]
    return data.decode("utf-8", "ignore").encode("utf-8")


def name_os_thread(name=None):
    """Name the calling thread for the OS: `name`, or its Python name. True if it took."""
    prctl = _load_prctl()
    if not prctl:
        return False
    raw = os_name(name or threading.current_thread().name)
    unused = ctypes.c_ulong(0)
    return prctl(_PR_SET_NAME, ctypes.c_char_p(raw), unused, unused, unused) == 0


def _named_then(initializer):
    name_os_thread()
    if initializer is not None:
        initializer()


def thread_pool(max_workers, name, initializer=None):
    """A ThreadPoolExecutor whose threads (`name`_0, `name`_1, ...) give the OS
    their names before `initializer`, if any, runs in each."""
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name,
                              initializer=partial(_named_then, initializer))
