"""The tests' servers forked from a zygote (tests/server_zygote.py) behave as
processes of their own would, and none outlives the process that asked for it.

Run in a Python process of its own: killing this test process's zygote
would take the session's server with it.
"""

import json
import os
import subprocess
import sys

from tests.support import BASE_DIR

SCRIPT = r"""
import json, os, signal, sys, time, urllib.error, urllib.request
from pathlib import Path
from tests import live

root = Path(sys.argv[1])

alive = live.running

report = {}
first = live.LiveServer(root / "first")
first.start()
report["forked"] = type(first.process).__name__
try:
    body = urllib.request.urlopen(first.url + "/healthz", timeout=120).read()
except urllib.error.HTTPError as answer:  # a failing check still names the process
    body = answer.read()
report["pid_matches"] = json.loads(body)["pid"] == first.process.pid
report["room"] = first.create_room("Ada")
scripts = first.scripts.process.pid
zygote = live._zygote[0].process.pid
report["names"] = [Path(f"/proc/{pid}/comm").read_text().strip()
                   for pid in (first.process.pid, scripts)]

# A server killed outright: its exit status is SIGKILL's.
second = live.LiveServer(root / "second")
second.start()
second.process.kill()
report["killed"] = second.process.wait(timeout=60)

# The zygote killed outright: its children go with it, and the next server
# comes from a new zygote.
os.kill(zygote, signal.SIGKILL)
first.process.wait(timeout=60)
report["server_gone"] = not alive(first.process.pid)
for _ in range(600):
    if not alive(scripts):
        break
    time.sleep(0.1)
report["scripts_gone"] = not alive(scripts)
third = live.LiveServer(root / "third")
third.start()
report["new_zygote"] = live._zygote[0].process.pid != zygote
third.stop()
report["stopped"] = third.process.returncode is not None and not alive(third.process.pid)

# An environment that changes what the zygote's libraries read as they are
# imported gets a process of its own.
own = live.LiveServer(root / "own", env={"OMP_NUM_THREADS": "2"})
own.start()
report["own_process"] = type(own.process).__name__
own.stop()
print(json.dumps(report))
"""


def test_forked_servers_answer_as_themselves_and_never_outlive_their_zygote(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTEST_VERSION": "test"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["forked"] == "ForkedProcess" and report["pid_matches"]
    assert len(report["room"]) == 6
    assert report["names"] == ["test-server", "test-scripts"]
    assert report["killed"] == -9
    assert report["server_gone"] and report["scripts_gone"]
    assert report["new_zygote"] and report["stopped"]
    assert report["own_process"] == "Popen"
