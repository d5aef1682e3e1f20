"""The teach API end to end (trainer/teach/views.py).

Against a real Daphne server serving the first shipped model (v1, which reads
slashed zeros badly): a browser session opens the page, is refused clear
400s for bad examples, sends 16 slashed zeros, is refused a second job while
the first runs, polls the job to its result and reads its copy's
probabilities beside the served model's; another browser sees neither the
job nor the copy. A class's teacher teaches the class's copy from the
drawings a game kept, through the Django test client and the real worker.

Small: 500 replayed and 500 measured MNIST digits, 60 steps.
"""

import asyncio
import http.cookiejar
import json
import time
import urllib.error
import urllib.request

import pytest
from django.test import AsyncClient

from recognizer import taught
from recognizer.models import Drawing, TaughtCopy
from recognizer.preprocessing import input_to_bytes
from tests.live import LiveServer, copy_migrated_database
from tests.support import SEVEN
from tests.teach_drawings import inputs_of, register_v1, styled_drawings
from trainer import datasets
from trainer.teach import worker as teach_worker

SMALL = {"TEACH_REPLAY_DIGITS": "500", "TEACH_TEST_DIGITS": "500"}


class Browser:
    """A client with a cookie jar: one browser session."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, path, body=None, raw=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method="POST" if (
            data is not None or raw == b"") else "GET")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())


def _json(data):
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")


@pytest.fixture(scope="module")
def slashed_zeros(mnist_dir):
    train = datasets.mnist_split("train", mnist_dir, download=False)
    return styled_drawings(train.images[train.labels == 0][:16], "zero_slashed", 1)


@pytest.fixture(scope="module")
def teach_server(tmp_path_factory, mnist_dir):
    server = LiveServer(tmp_path_factory.mktemp("teach"),
                        env={**SMALL, "MNIST_DATA_DIR": str(mnist_dir)})
    copy_migrated_database(server.workdir / "db.sqlite3")
    script = ("import django; django.setup()\n"
              "from tests.teach_drawings import register_v1\n"
              "register_v1()\n")
    server.run_script(script)
    server.migrate = False
    server.start()
    yield server
    server.stop()


def poll(browser, job_id, timeout=240):
    """Ask for the job as the page does until it ends; (answers seen, last answer)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, answer = browser.call(f"/learn/teach/api/jobs/{job_id}")
        assert status == 200, answer
        seen.append(answer)
        if answer["state"] not in ("queued", "running"):
            return seen, answer
        time.sleep(0.2)  # the page's pace is 0.4 s
    raise AssertionError(f"job {job_id} did not end within {timeout} s: {seen[-1]}")


def test_a_learner_teaches_a_copy_through_the_api(teach_server, slashed_zeros):
    learner, stranger = Browser(teach_server.url), Browser(teach_server.url)
    examples = [{"label": 0, "drawing": d} for d in slashed_zeros]

    # No session yet: the page starts it.
    status, answer = learner.call("/learn/teach/api/jobs", {"examples": examples})
    assert status == 403 and "open the teach page first" in answer["error"]
    for browser in (learner, stranger):
        status, page = browser.call("/learn/teach/")
        assert status == 200 and "Teach the model" in page

    status, answer = learner.call("/learn/teach/api/jobs", {"examples": examples[:5]})
    assert status == 400 and "send from 6 to 60 examples (got 5)" in answer["error"]
    bad_label = examples[:6] + [{"label": 12, "drawing": slashed_zeros[0]}]
    status, answer = learner.call("/learn/teach/api/jobs", {"examples": bad_label})
    assert status == 400 and answer["error"] == "example 6: 'label' must be a digit from 0 to 9"
    oversized = {"width": 300, "height": 300, "strokes": [[[i % 300, i // 300]
                                                           for i in range(2001)]]}
    status, answer = learner.call("/learn/teach/api/jobs",
                                  {"examples": [{"label": 0, "drawing": oversized}] + examples})
    assert status == 400 and answer["error"].startswith("example 0: too many points")
    status, answer = learner.call("/learn/teach/api/jobs", raw=b"examples=1")
    assert status == 415

    status, accepted = learner.call("/learn/teach/api/jobs",
                                    {"examples": examples, "steps": 60, "replay": True})
    assert status == 202, accepted
    assert accepted["state"] in ("queued", "running") and accepted["position"] == 0
    job_id = accepted["job"]
    status, busy = learner.call("/learn/teach/api/jobs", {"examples": examples, "steps": 60})
    assert status == 429 and busy["retry_after"] > 0 and job_id in busy["error"]
    # Another browser: no such job for it, and it cannot cancel it.
    assert stranger.call(f"/learn/teach/api/jobs/{job_id}")[0] == 404
    assert stranger.call(f"/learn/teach/api/jobs/{job_id}/cancel", raw=b"")[0] == 404

    seen, done = poll(learner, job_id)
    assert done["state"] == "done", done
    assert done["steps"] == 60 and done["step"] == 60
    running = [a for a in seen if a["state"] == "running"]
    assert all(0 <= a["step"] <= 60 for a in running)
    result = done["result"]
    assert result["held_out"]["count"] == 4  # a quarter of 16
    assert result["mnist"]["count"] == 500 and result["replay"] is True
    for score in (result["held_out"], result["mnist"]):
        assert 0 <= score["before"] <= 1 and 0 <= score["after"] <= 1
    assert result["mnist"]["after"] >= result["mnist"]["before"] - 0.02
    assert 400_000 < result["head_bytes"] < 420_000 and result["seconds"] > 0

    # The copy answers this browser's drawings beside the served model...
    status, both = learner.call("/learn/teach/api/predict", {"drawing": slashed_zeros[3]})
    assert status == 200 and both["copy"] == result["copy"]
    assert len(both["production"]) == len(both["taught"]) == 10
    assert both["taught"] != both["production"]
    assert abs(sum(both["taught"]) - 1) < 1e-6
    # ...and no other browser's.
    status, theirs = stranger.call("/learn/teach/api/predict", {"drawing": slashed_zeros[3]})
    assert status == 200 and theirs["taught"] is None and theirs["copy"] is None
    assert theirs["production"] == both["production"]

    # A finished job cannot be cancelled any more; the job is free again.
    assert learner.call(f"/learn/teach/api/jobs/{job_id}/cancel", raw=b"") == (
        200, {"job": job_id, "state": "done"})
    status, again = learner.call("/learn/teach/api/jobs", {"examples": examples, "steps": 20,
                                                           "store": False})
    assert status == 202
    status, cancelled = learner.call(f"/learn/teach/api/jobs/{again['job']}/cancel", raw=b"")
    assert status == 200 and cancelled["state"] in ("cancelled", "done")

    # The 16 examples of the first job were stored for review, the second's not.
    script = ("import django, json; django.setup()\n"
              "from recognizer.models import Drawing\n"
              "rows = Drawing.objects.filter(source='teach')\n"
              "print(json.dumps([rows.count(), sorted(set(rows.values_list('label', flat=True))),"
              " sorted(set(rows.values_list('status', flat=True))),"
              " len(set(rows.values_list('player_id', flat=True)))]))\n")
    out = teach_server.run_script(script, timeout=120)
    assert json.loads(out.strip().splitlines()[-1]) == [16, [0], ["pending"], 1]


# -- a class ------------------------------------------------------------------------------


@pytest.fixture
def in_process_worker(monkeypatch, settings, mnist_dir):
    settings.MNIST_DATA_DIR = mnist_dir
    for name, value in SMALL.items():
        setattr(settings, name, int(value))
    fresh = teach_worker.TeachWorker(workers=1, max_queue=4, abandon_seconds=600,
                                     cpu_seconds=300)
    monkeypatch.setattr(teach_worker, "_worker", fresh)
    return fresh


def class_drawings(room, count, mnist_dir):
    """`count` drawings a class game kept: slashed zeros, one per student and round."""
    test = datasets.mnist_split("test", mnist_dir, download=False)
    inputs = inputs_of(styled_drawings(test.images[test.labels == 0][:count], "zero_slashed",
                                       4))
    for index, image in enumerate(inputs):
        Drawing.objects.create(
            label=0, strokes=SEVEN, input_image=input_to_bytes(image), prediction=6,
            probabilities=[0.1] * 10, player_id=f"student-{index % 6}", player_name="S",
            room_code=room.code, game_id=room.game_id, round_number=index // 6 + 1)


@pytest.mark.django_db(transaction=True)
async def test_a_class_teacher_teaches_the_class_copy(in_process_worker, mnist_dir):
    from asgiref.sync import sync_to_async

    from digitsite.game.rooms import create_room
    from digitsite.game.seats import hash_session

    await sync_to_async(register_v1)()
    teacher, student = AsyncClient(), AsyncClient()
    for client in (teacher, student):
        assert (await client.get("/learn/teach/")).status_code == 200
    session = await teacher.asession()
    room = await sync_to_async(create_room)(
        "Ms Hopper", classroom=True, creator_session=hash_session(session.session_key))
    room.game_id = "game-one"
    await sync_to_async(room.save)()
    url = f"/learn/teach/api/class/{room.code}/jobs"

    answer = await student.post(url, {}, content_type="application/json")
    assert answer.status_code == 403 and "only the class's teacher" in answer.json()["error"]
    answer = await teacher.post("/learn/teach/api/class/NOSUCH/jobs", {},
                                content_type="application/json")
    assert answer.status_code == 404
    answer = await teacher.post(url, {}, content_type="application/json")
    assert answer.status_code == 400 and "kept 0 drawings" in answer.json()["error"]

    await sync_to_async(class_drawings)(room, 24, mnist_dir)
    # One drawing staff rejected and two the teacher leaves out are not taught.
    await sync_to_async(Drawing.objects.filter(round_number=1, player_id="student-0").update)(
        status=Drawing.Status.REJECTED)
    exclude = [{"player": "student-1", "round": 1}, {"player": "student-2", "round": 2}]
    answer = await teacher.post(url, {"steps": 40, "exclude": exclude},
                                content_type="application/json")
    assert answer.status_code == 202, answer.content
    job_id = answer.json()["job"]
    # The teacher's browser reads the job; a student's does not.
    assert (await student.get(f"/learn/teach/api/jobs/{job_id}")).status_code == 404
    deadline = time.monotonic() + 240
    while True:
        status = (await teacher.get(f"/learn/teach/api/jobs/{job_id}")).json()
        if status["state"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)
    assert status["state"] == "done", status
    held = status["result"]["held_out"]
    assert status["result"]["examples"] == 21 and held["count"] == 5  # 24 - 3, a quarter
    copy = await sync_to_async(taught.class_copy)(room.code)
    assert copy is not None and str(copy.pk) == status["result"]["copy"]
    assert await sync_to_async(TaughtCopy.objects.filter(owner_kind="session").count)() == 0
    # The teacher's own predictions on the teach page stay the served model's.
    answer = await teacher.post("/learn/teach/api/predict", {"drawing": SEVEN},
                                content_type="application/json")
    assert answer.status_code == 200 and answer.json()["taught"] is None


@pytest.mark.django_db(transaction=True)
async def test_nobody_teaches_the_copy_of_a_class_a_script_opened(in_process_worker, mnist_dir):
    # A class made without a browser (creator_session empty): its projector
    # lets the first visitor in, but its copy, which the class's game reads,
    # is taught by no visitor, even with drawings to teach.
    from asgiref.sync import sync_to_async

    from digitsite.game.rooms import create_room

    visitor = AsyncClient()
    assert (await visitor.get("/learn/teach/")).status_code == 200
    room = await sync_to_async(create_room)("Ms Hopper", classroom=True, creator_session="")
    room.game_id = "game-one"
    await sync_to_async(room.save)()
    await sync_to_async(class_drawings)(room, 12, mnist_dir)
    answer = await visitor.post(f"/learn/teach/api/class/{room.code}/jobs", {},
                                content_type="application/json")
    assert answer.status_code == 403 and "only the class's teacher" in answer.json()["error"]
    assert in_process_worker.store.owner_job(taught.class_owner(room.code), 600) is None


# -- bounds on how often -------------------------------------------------------------------


class _Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.mark.django_db(transaction=True)
async def test_an_address_asks_for_so_many_teach_jobs_a_minute(in_process_worker, monkeypatch):
    # Tried: three requests a minute where two are allowed, each refused as a
    # bad body (a refused request counts too: a loop of "teach, cancel" must
    # not get around it), then the third's 429 and, a minute's share later,
    # a fourth let through again.
    from trainer.teach import limits

    clock = _Clock()
    monkeypatch.setattr(limits, "_job_rate", limits.JobRate(2, clock=clock))
    browser = AsyncClient()
    assert (await browser.get("/learn/teach/")).status_code == 200
    for _ in range(2):
        answer = await browser.post("/learn/teach/api/jobs", {"examples": []},
                                    content_type="application/json")
        assert answer.status_code == 400, answer.content
    answer = await browser.post("/learn/teach/api/jobs", {"examples": []},
                                content_type="application/json")
    assert answer.status_code == 429 and answer.json()["retry_after"] == 30
    assert "at most 2 a minute" in answer.json()["error"] and answer["Retry-After"] == "30"
    clock.now += 30
    answer = await browser.post("/learn/teach/api/jobs", {"examples": []},
                                content_type="application/json")
    assert answer.status_code == 400


def test_a_class_behind_one_address_all_teach_within_two_minutes():
    from trainer.teach import limits

    clock = _Clock()
    rate = limits.JobRate(20, clock=clock)
    waits = [rate.retry_after("school") for _ in range(30)]
    assert waits[:20] == [None] * 20 and all(wait == 3 for wait in waits[20:])
    through = 20
    while through < 30:
        clock.now += 3
        through += rate.retry_after("school") is None
    assert clock.now - 1000.0 <= 120
    assert rate.retry_after("another school") is None


def test_a_session_stores_so_many_teach_drawings_an_hour():
    from django.core.cache.backends.locmem import LocMemCache

    from trainer.teach import limits

    cache, clock = LocMemCache("teach-test-stored", {}), _Clock(7200.0)
    assert limits.storable("me", 60, 100, cache, clock) == 60
    assert limits.storable("me", 60, 100, cache, clock) == 40  # the rest of the hour's 100
    assert limits.storable("me", 60, 100, cache, clock) == 0
    assert limits.storable("you", 60, 100, cache, clock) == 60
    clock.now += 3600  # the next hour
    assert limits.storable("me", 60, 100, cache, clock) == 60
