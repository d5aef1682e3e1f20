"""`python -m tests.server_zygote FD`: test servers, and the scripts run beside
them, forked from one process that has already imported what every server
imports first.

A Daphne server's start took 6.0 s of CPU on this project's 2-core test
machine, of which 4.5 s importing torch, numba, scipy and numpy (torch alone
3.4 s) and loading the renderer's compiled kernel; the suite starts about 30
servers, 3 test processes at once. This process pays that once per test
process: it imports them, then forks a child for each server asked of it.
The child takes the server's environment, working folder and log, and runs
`python -m digitsite.serve ...` as a new process would, Django's set-up,
Daphne's reactor and the site's own start-up included: nothing of the site
is imported here but the renderer's kernel, and nothing imported here reads
a setting. tests.live's script runner (Django set up on a server's
database, for the tests' own queries) is forked from here too.

What a library reads from the environment as it is imported (NUMBA_*,
OMP_*, MKL_*, TORCH_*, PYTHON*) comes from this process's environment, not
the server's: tests.live starts a server whose environment changes one of
them as a process of its own.

Protocol: datagrams on the socket whose descriptor is this process's one
argument (a SOCK_SEQPACKET pair's end), each one JSON object. In:
{"argv": ["-m", module, ...] or ["-c", code], "env": {...}, "cwd": "..."},
with three descriptors that become the child's stdin, stdout and stderr
(a log file, or pipes the test process reads and writes). Out:
{"started": pid} for each in turn, and {"exited": pid, "returncode": n}
when a child ends (-n for a signal, as subprocess says). When the socket
closes (the test process gone or done) every child still running gets
SIGTERM, then SIGKILL 10 s later, and this process exits.
"""

import contextlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import time

# What a server's child would otherwise import itself, most of its start-up's
# CPU. Nothing here may install Twisted's reactor (daphne.server does, as
# it is imported) or start a thread: a fork copies only the thread that forks.
import django  # noqa: F401
import numba  # noqa: F401
import numpy  # noqa: F401
import PIL.Image  # noqa: F401
import scipy.ndimage  # noqa: F401
import torch  # noqa: F401

from recognizer import pen_kernel

pen_kernel.warm_up()

def returncode(status):
    return os.waitstatus_to_exitcode(status)


def run_child(request, descriptors):
    """In the forked child: become `python <argv>` with the request's environment
    and folder, `descriptors` as its stdin, stdout and stderr. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        os.setpgid(0, 0)  # the zygote's own signals are not the server's
        for target, descriptor in enumerate(descriptors):
            os.dup2(descriptor, target)
            os.close(descriptor)
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
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
            sys.path.insert(0, "")
            exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def reply(control, message):
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
        reply(control, {"exited": pid, "returncode": returncode(status)})


def stop_all(control, children):
    for pid in children:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while children and time.monotonic() < deadline:
        reap(control, children)
        time.sleep(0.05)
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main():
    control = socket.socket(fileno=int(sys.argv[1]))
    children = set()
    # SIGCHLD wakes the select below through this pipe, as it arrives.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    reply(control, {"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([control, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
            reap(control, children)
        if control not in readable:
            continue
        message, descriptors, _, _ = socket.recv_fds(control, 1 << 20, 3)
        if not message:
            break
        pid = os.fork()
        if pid == 0:
            control.close()
            os.close(wake_read)
            os.close(wake_write)
            run_child(json.loads(message), descriptors)
        for descriptor in descriptors:
            os.close(descriptor)
        children.add(pid)
        reply(control, {"started": pid})
    stop_all(control, children)


if __name__ == "__main__":
    main()
