"""A real Daphne server in a subprocess (and game clients of its rooms), and headless
Chromium, for end-to-end tests."""

import atexit
import contextlib
import json
import os
import queue
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.services import is_migrated
from tests.support import BASE_DIR, free_port, require

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
]


# Runs the scripts it reads from stdin (one JSON string a line), each in a fresh
# namespace, with Django set up once; answers each with one JSON line: its
# stdout and, if it raised, the traceback. A new Python process with Django
# costs 2-5 s (the admin's model pages import torch); this one pays it once.
SCRIPT_RUNNER = r"""
import contextlib, io, json, sys, traceback
import django
django.setup()
from django.db import connections
replies = sys.stdout
for line in sys.stdin:
    output = io.StringIO()
    error = None
    try:
        with contextlib.redirect_stdout(output):
            exec(compile(json.loads(line), "<script>", "exec"), {"__name__": "__main__"})
    except BaseException:
        error = traceback.format_exc()
    finally:
        # No connection held between scripts: the server may lock its tables.
        connections.close_all()
    replies.write(json.dumps({"stdout": output.getvalue(), "error": error}) + "\n")
    replies.flush()
"""


class ScriptError(RuntimeError):
    pass


class ScriptRunner:
    """One Python process with Django set up on `env`'s database that runs
    scripts in turn (SCRIPT_RUNNER); started at the first script."""

    def __init__(self, env):
        self.env = env
        self.process = None
        self.lock = threading.Lock()

    def run(self, script, timeout=300):
        """`script`'s stdout; ScriptError with its traceback if it raised."""
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process = start_python(["-c", SCRIPT_RUNNER], self.env)
            self.process.stdin.write(json.dumps(script) + "\n")
            self.process.stdin.flush()
            ready, _, _ = select.select([self.process.stdout], [], [], timeout)
            line = self.process.stdout.readline() if ready else ""
            if not line:
                self.stop()
                raise ScriptError(f"the script process gave no answer within {timeout} s")
        reply = json.loads(line)
        if reply["error"]:
            raise ScriptError(f"{reply['error']}\n{script}")
        return reply["stdout"]

    def stop(self):
        if self.process is None:
            return
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process = None


# One migrated SQLite database per test process, copied for each server that
# starts on a new one: `migrate` in a process of its own takes 5-10 s, and the
# suite starts a score of servers. The migrations read no setting a server's
# `env` sets (its database aside), so every copy is what `migrate` would make.
_migrated_template = []


def migrate_template(**env):
    """Run `migrate` in a process of its own on a server's environment, with
    `env` over it (a DATABASE_URL, say), its var folder a temporary one; the
    folder. Raises RuntimeError with migrate's own error when it fails."""
    folder = Path(tempfile.mkdtemp(prefix="migrated-"))
    atexit.register(shutil.rmtree, folder, True)
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                          cwd=BASE_DIR, env={**server_env(folder), **env},
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"migrating a template database failed:\n{done.stderr}")
    return folder


def copy_migrated_database(destination):
    """Write a migrated SQLite database (the shipped models registered) to `destination`."""
    if not _migrated_template:
        _migrated_template.append(migrate_template() / "db.sqlite3")
    source = sqlite3.connect(_migrated_template[0])
    target = sqlite3.connect(destination)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def running(pid):
    """Whether process `pid` is running: not gone, nor a zombie. An orphan's
    remains wait for whoever adopted it to reap them, which may be never (a
    container's first process, a subreaper such as bench/bench_suite_cpu.py)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class ForkedProcess:
    """A process forked by the zygote (tests/server_zygote.py), with what the
    tests use of subprocess.Popen: pid, poll, wait, returncode, send_signal,
    terminate, kill, and stdin and stdout when they are pipes. Its exit
    status comes from the zygote, its parent."""

    def __init__(self, zygote, pid, stdin=None, stdout=None):
        self.zygote = zygote
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self._returncode = None

    @property
    def returncode(self):
        if self._returncode is None:
            self._returncode = self.zygote.returncodes.get(self.pid)
        return self._returncode

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.zygote.changed:
            self.zygote.changed.wait_for(
                lambda: self.returncode is not None or self.zygote.gone, timeout)
        while self.returncode is None:
            # The zygote is gone, and its children with it (PR_SET_PDEATHSIG):
            # wait for this one to end, with no status to tell.
            if not running(self.pid):
                self._returncode = -signal.SIGTERM
                break
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"process {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, number):
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, number)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)


# What the zygote's libraries read from the environment as they are imported
# (tests/server_zygote.py), by prefix.
IMPORT_TIME_VARIABLES = ("NUMBA_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "GOTO", "TORCH",
                         "PYTORCH_", "PYTHON", "LD_", "LC_", "LANG", "TMPDIR", "HOME", "XDG_")


def import_time_environment(env):
    return {name: value for name, value in env.items()
            if name.startswith(IMPORT_TIME_VARIABLES) and name != "PYTHONUNBUFFERED"}


class Zygote:
    """tests/server_zygote.py, started at this test process's first server; its
    own output goes to a log file, shown when it fails."""

    def __init__(self):
        self.environment = dict(os.environ)
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log_path = Path(tempfile.mkdtemp(prefix="zygote-")) / "zygote.log"
        atexit.register(shutil.rmtree, self.log_path.parent, True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.server_zygote", str(theirs.fileno())],
                cwd=BASE_DIR, env=self.environment, pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        theirs.close()
        self.lock = threading.Lock()
        self.changed = threading.Condition()
        self.returncodes = {}
        self.started = queue.Queue()
        self.gone = False
        self.control.settimeout(300)  # the imports take seconds; a loaded machine, more
        try:
            ready = self.control.recv(1 << 16)
        except OSError:
            ready = b""
        self.control.settimeout(None)
        if not ready.startswith(b'{"ready"'):
            self.stop()
            raise RuntimeError(f"the server zygote did not start:\n{self.log()}")
        threading.Thread(target=self._read, name="server-zygote", daemon=True).start()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""

    def serves(self, env):
        """Whether a process with `env` may be forked from here."""
        return (not self.gone and import_time_environment(env)
                == import_time_environment(self.environment))

    def _read(self):
        with contextlib.suppress(OSError):
            while message := self.control.recv(1 << 16):
                message = json.loads(message)
                with self.changed:
                    if "started" in message:
                        # A new process may have an old one's id.
                        self.returncodes.pop(message["started"], None)
                        self.started.put(message["started"])
                    else:
                        self.returncodes[message["exited"]] = message["returncode"]
                    self.changed.notify_all()
        with self.changed:
            self.gone = True
            self.changed.notify_all()
        self.started.put(None)

    def start(self, argv, env, descriptors, name):
        """`python <argv>` forked with `env` in the project's folder, `descriptors`
        its stdin, stdout and stderr, `name` its process name; its pid."""
        with self.lock:
            try:
                socket.send_fds(self.control, [json.dumps(
                    {"argv": argv, "env": env, "cwd": str(BASE_DIR), "name": name}).encode()],
                    descriptors)
                pid = self.started.get(timeout=120)
            except (OSError, queue.Empty):
                pid = None
            if pid is None:
                # No answer to match with this request: no later one can be trusted.
                self.stop()
                raise RuntimeError(f"the server zygote failed:\n{self.log()}")
        return pid

    def stop(self):
        self.gone = True
        with contextlib.suppress(OSError):
            self.control.shutdown(socket.SHUT_RDWR)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_zygote = []
_zygote_lock = threading.Lock()


def _zygote_for(env):
    """This process's zygote if it may fork a process with `env`, else None.
    Used under pytest (PYTEST_VERSION) unless ZYGOTE=0: the benchmarks start
    their servers as production does."""
    if os.environ.get("ZYGOTE") == "0" or "PYTEST_VERSION" not in os.environ:
        return None
    with _zygote_lock:
        if not _zygote or _zygote[0].gone:
            if _zygote:
                _zygote.pop().stop()
            _zygote.append(Zygote())
            atexit.register(_zygote[0].stop)
        zygote = _zygote[0]
    return zygote if zygote.serves(env) else None


def start_python(argv, env, log_path=None):
    """`python <argv>` (`-m module ...` or `-c code`) in the project's folder with
    `env`: its output appended to `log_path`, or, without one, its stdin and
    stdout pipes (text) and its stderr this process's. Forked from the zygote
    (_zygote_for), else a process of its own. A Popen-like handle."""
    zygote = _zygote_for(env)
    if zygote is None:
        if log_path is None:
            return subprocess.Popen([sys.executable, *argv], cwd=BASE_DIR, env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        with open(log_path, "ab") as log:
            return subprocess.Popen([sys.executable, *argv], cwd=BASE_DIR, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
    if log_path is not None:
        with open(os.devnull, "rb") as null, open(log_path, "ab") as log:
            pid = zygote.start(argv, env, [null.fileno(), log.fileno(), log.fileno()],
                               "test-server")
        return ForkedProcess(zygote, pid)
    child_in, stdin = os.pipe()
    stdout, child_out = os.pipe()
    try:
        pid = zygote.start(argv, env, [child_in, child_out, 2], "test-scripts")
    except BaseException:
        os.close(stdin)
        os.close(stdout)
        raise
    finally:
        os.close(child_in)
        os.close(child_out)
    return ForkedProcess(zygote, pid, stdin=open(stdin, "w"), stdout=open(stdout))


def server_env(workdir):
    """The environment of a server process whose SQLite database and var folder
    live under `workdir` (this process's own environment beside them)."""
    env = dict(os.environ)
    env.update({
        "DIGITSITE_VAR_DIR": str(Path(workdir) / "var"),
        "DATABASE_URL": f"sqlite:///{Path(workdir) / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "digitsite.settings",
        "PYTHONUNBUFFERED": "1",
        # Lesson 1's first view computes the digits that excite each map
        # (15 s of a core for the site's 6,000); 600 keep the suite's
        # servers light. A test's `env` may ask for more.
        "TEACHING_TOP_DIGITS_SAMPLE": "600",
    })
    return env


class LiveServer:
    """Daphne serving digitsite.asgi on 127.0.0.1:<free port>.

    Its database and var folder live under `workdir` (SQLite unless `env`
    names a DATABASE_URL); `env` may also set REDIS_URL and any setting.
    `migrate` runs first, which also registers the shipped model (not on a
    database made migrated: tests.services.is_migrated).
    """

    def __init__(self, workdir, env=None, port=None, migrate=True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.migrate = migrate
        self.env = server_env(self.workdir)
        # A test's server shares two cores with the other tests and their
        # browsers: a model check may wait seconds for a core. Tests of the
        # timeout itself set their own.
        self.env["HEALTH_CHECK_TIMEOUT_SECONDS"] = "30"
        # The model page waits for its figures however busy the machine, so
        # that a browser test never meets the page that reloads itself
        # (tested in process, tests/test_teaching_scale.py).
        self.env["MODEL_CARD_WAIT_SECONDS"] = "600"
        self.env.update(env or {})
        self.process = None
        self.scripts = None
        self.log_path = self.workdir / f"daphne-{self.port}.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}"

    async def game_client(self, code, name=None, **options):
        """A GameClient connected to room `code` (options as for GameClient.connect)."""
        from digitsite.game.client import GameClient

        return await GameClient.open(self.ws_url, code, name=name, origin=self.url, **options)

    def manage(self, *args, check=True):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env,
            capture_output=True, text=True, check=check, timeout=300,
        )

    def run_script(self, script, timeout=300):
        """Run `script` in a Python process with Django set up on the server's
        database and settings (one process for all of them, started at the
        first); what it wrote to stdout."""
        if self.scripts is None:
            self.scripts = ScriptRunner(self.env)
        return self.scripts.run(script, timeout=timeout)

    def create_room(self, host_name="Test", **settings):
        """A room made directly in the server's database (settings as for
        digitsite.game.create_room); its code."""
        script = (
            "import sys\n"
            "from digitsite.game.rooms import create_room\n"
            f"sys.stdout.write(create_room({host_name!r}, **{settings!r}).code)\n"
        )
        return self.run_script(script).strip()

    def ensure_model(self):
        """Give the server's database an active model (an untrained one if none is
        shipped); the server itself."""
        script = (
            "from django.conf import settings\n"
            "from recognizer.versions import active_version\n"
            "from tests.support import register_random_model\n"
            "if active_version() is None:\n"
            "    settings.RECOGNIZER_MODEL_DIR.mkdir(parents=True, exist_ok=True)\n"
            "    register_random_model(settings.RECOGNIZER_MODEL_DIR, seed=0)\n"
        )
        self.run_script(script)
        return self

    def start(self, timeout=60):
        database = self.workdir / "db.sqlite3"
        if (self.migrate and self.env["DATABASE_URL"] == f"sqlite:///{database}"
                and not database.exists()):
            copy_migrated_database(database)
        elif self.migrate and not is_migrated(self.env["DATABASE_URL"]):
            self.manage("migrate", "--noinput")
        # The site's entry point around Daphne (bounded bodies, slow-client timeout).
        daphne = ["-m", "digitsite.serve", "-b", "127.0.0.1", "-p", str(self.port),
                  "digitsite.asgi:application"]
        self.process = start_python(daphne, self.env, self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2)
                return self
            except urllib.error.HTTPError:
                return self  # it answered, even if with an error page
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"daphne did not answer within {timeout}s:\n{self.log()}")

    def stop(self, kill=False):
        if self.scripts is not None:
            self.scripts.stop()
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""


def launch_chromium():
    """Start Playwright with the system's Chromium (no browser download)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    require(executable is not None, "Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    return playwright, browser


@contextlib.contextmanager
def open_page(browser, init_script=None, **context_options):
    """A page in a fresh browser context; its uncaught script errors collect in
    `page.js_errors`, console errors (Content-Security-Policy refusals among
    them) in `page.console_errors`. `init_script` runs before the page's own
    scripts."""
    context = browser.new_context(**context_options)
    if init_script is not None:
        context.add_init_script(init_script)
    page = context.new_page()
    page.js_errors = []
    page.console_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    page.on("console", lambda message: message.type == "error"
            and page.console_errors.append(message.text))
    try:
        yield page
    finally:
        context.close()
