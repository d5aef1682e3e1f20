"""`python -m tests.server_zygote FD`: test servers, and the scripts run beside
them, forked from one process that has already imported what every server
imports first.

A Daphne server's start took 6.0 s of CPU on this project's 2-core test
machine, of which 3.4 s importing torch and 0.6 s numba (each timed alone
in a process of its own, once); the suite starts about 30 servers, 3 test
processes at once. This process pays that once per test process: it
imports them, then forks a child for each server asked of it. The child
takes the server's environment, working folder and log, and runs
`python -m digitsite.serve ...` as a new process would, Django's set-up,
Daphne's reactor and the site's own start-up included: nothing of the site
is imported here but the renderer's kernel, and nothing imported here reads
a setting. tests.live's script runner (Django set up on a server's
database, for the tests' own queries) is forked from here too.

What a library reads from the environment as it is imported (NUMBA_*,
OMP_*, TORCH_*, PYTHON*, ...: tests.live.IMPORT_TIME_VARIABLES) comes from
this process's environment, not the server's: tests.live starts a server
whose environment changes one of them as a process of its own.

Protocol: datagrams on the socket whose descriptor is this process's one
argument (a SOCK_SEQPACKET pair's end), each one JSON object. In:
{"argv": ["-m", module, ...] or ["-c", code], "env": {...}, "cwd": "...",
"name": "..."}, with three descriptors that become the child's stdin,
stdout and stderr (a log file, or pipes the test process reads and
writes); `name` becomes the child's process name (/proc/PID/comm), by which
bench/bench_suite_cpu.py tells servers from scripts. Out: {"started": pid}
for each in turn, and {"exited": pid, "returncode": n} when a child ends
(-n for a signal, as subprocess says). When the socket closes (the test
process gone or done), or this process is interrupted, every child still
running gets SIGTERM, then SIGKILL 10 s later, and this process exits. A
child whose zygote dies anyway (SIGKILL) gets SIGTERM from the kernel
(PR_SET_PDEATHSIG).
"""

import atexit
import contextlib
import ctypes
import json
import os
import runpy
import select
import signal
import socket
import sys
import threading
import time

# What a server's child would otherwise import itself, most of its start-up's
# CPU. Nothing here may install Twisted's reactor (daphne.server does, as
# it is imported) or start a Python thread: a fork copies only the thread
# that forks (checked before each fork, below). numpy's OpenBLAS starts a
# pool of native threads unless OMP_NUM_THREADS is 1 (the tests set it:
# tests/conftest.py); it stops them at a fork and starts them again after.
import django  # noqa: F401
import numba  # noqa: F401
import numpy  # noqa: F401
import PIL.Image  # noqa: F401
import torch  # noqa: F401

from recognizer import pen_kernel

pen_kernel.warm_up()

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def run_child(request, descriptors, zygote):
    """In the forked child: become `python <argv>` with the request's environment
    and folder, `descriptors` as its stdin, stdout and stderr. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a new Python has
        # A test process killed with its zygote leaves no server behind.
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != zygote:
            os._exit(1)
        _libc.prctl(PR_SET_NAME, request["name"].encode()[:15], 0, 0, 0)
        os.setpgid(0, 0)  # the zygote's process group's signals are not the child's
        for target, descriptor in enumerate(descriptors):
            os.dup2(descriptor, target)
            os.close(descriptor)
        # As PYTHONUNBUFFERED does in a new process.
        sys.stdout.reconfigure(line_buffering=True, write_through=True)
        sys.stderr.reconfigure(line_buffering=True, write_through=True)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        option, target, *arguments = request["argv"]
        if option == "-m":
            sys.argv = [target, *arguments]
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            assert option == "-c", request["argv"]
            sys.argv = ["-c", *arguments]
            exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        # What the interpreter does on its way out: wait for the threads that
        # are not daemons, then run the exit handlers (logging's flush among them).
        with contextlib.suppress(BaseException):
            threading._shutdown()
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def reply(control, message):
    """Tell the test process; nothing if it is gone (its children are stopped anyway)."""
    with contextlib.suppress(OSError):
        control.send(json.dumps(message).encode())


def reap(control, children):
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        reply(control, {"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})


def stop_all(control, children):
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while children and time.monotonic() < deadline:
        reap(control, children)
        time.sleep(0.05)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    reap(control, children)


def serve(control, children, wake_read, wake_write):
    while True:
        readable, _, _ = select.select([control, wake_read], [], [])
        if control in readable:
            message, descriptors, _, _ = socket.recv_fds(control, 1 << 20, 3)
            if not message:
                return
            if threading.active_count() != 1:
                raise RuntimeError("the zygote started a thread: a fork would copy a broken state")
            pid = os.fork()
            if pid == 0:
                zygote = os.getppid()
                control.close()
                os.close(wake_read)
                os.close(wake_write)
                run_child(json.loads(message), descriptors, zygote)
            # The child's own group from here too, whichever of the two runs first.
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)
            for descriptor in descriptors:
                os.close(descriptor)
            children.add(pid)
            reply(control, {"started": pid})
        if wake_read in readable:
            os.read(wake_read, 4096)
            reap(control, children)


def main():
    control = socket.socket(fileno=int(sys.argv[1]))
    children = set()
    # SIGCHLD wakes the select through this pipe, as it arrives.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    reply(control, {"ready": os.getpid()})
    try:
        serve(control, children, wake_read, wake_write)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(control, children)


if __name__ == "__main__":
    main()
