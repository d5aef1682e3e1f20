"""`python -m tests.server_zygote`: test servers forked from one process that
has already imported what every server imports first.

A Daphne server's start took 6.0 s of CPU on this project's 2-core test
machine, of which 4.5 s importing torch, numba, scipy and numpy (torch alone
3.4 s) and loading the renderer's compiled kernel; the suite starts about 30
servers, 3 test processes at once. This process pays that once per test
process: it imports them, then forks a child for each server asked of it.
The child takes the server's environment, working folder and log, and runs
`python -m digitsite.serve ...` as a new process would, Django's set-up,
Daphne's reactor and the site's own start-up included: nothing of the site
is imported here, only the libraries, which read no setting.

What a library reads from the environment as it is imported (NUMBA_*,
OMP_*, MKL_*, TORCH_*, PYTHON*) comes from this process's environment, not
the server's: tests.live starts a server whose environment changes one of
them as a process of its own.

Protocol, one JSON object a line. In, on stdin:
{"argv": [...], "env": {...}, "cwd": "...", "log": "..."}, a server to start.
Out, on stdout: {"started": pid} for each in turn, and {"exited": pid,
"returncode": n} when a child ends (-n for a signal, as subprocess says).
At the end of stdin (the test process gone or done) every child still
running gets SIGTERM, then SIGKILL 10 s later, and this process exits.
"""

import json
import os
import runpy
import select
import signal
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


def run_child(request):
    """In the forked child: become `python -m <module> <args>` with the request's
    environment, folder and log. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        os.setpgid(0, 0)  # the zygote's own signals are not the server's
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        argv = request["argv"]
        assert argv[0] == "-m", argv
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def reap(children):
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        reply({"exited": pid, "returncode": returncode(status)})


def stop_all(children):
    for pid in children:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while children and time.monotonic() < deadline:
        reap(children)
        time.sleep(0.05)
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main():
    children = set()
    # SIGCHLD wakes the select below through this pipe, as it arrives.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    requests = sys.stdin.fileno()
    pending = b""
    reply({"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([requests, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
            reap(children)
        if requests not in readable:
            continue
        chunk = os.read(requests, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                os.close(wake_read)
                os.close(wake_write)
                run_child(request)
            children.add(pid)
            reply({"started": pid})
    stop_all(children)


if __name__ == "__main__":
    main()
