"""The teaching endpoints' limits: per browser session, under a ceiling per address.

A school reaches the site from one address, so /learn/api/* and the teach
page's requests count each browser session as the recognition API counts an
address (recognizer/clients.py, SessionLimits). Driven through Django's whole
stack (session middleware, the views) with a hand-moved clock. Hostile
inputs: one session sending as fast as it can; a client inventing a new
session cookie for every request; a class of 30 drawing at once.
"""

import secrets

import pytest
from django.test import Client

from recognizer import clients
from recognizer.clients import ClientLimits, LimitExceeded, SessionLimits

pytestmark = pytest.mark.django_db(transaction=True)

STAGES_URL = "/learn/api/stages"
# Refused as "not a JSON object" after the limits counted it: each request
# costs the server the limits' bookkeeping and the parsing, no model.
NOT_AN_OBJECT = "[]"
# A lesson page sends at most one request per 150 ms (static/js/teaching/*.js).
PAGE_INTERVAL = 0.15


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch, settings):
    """The settings' teaching limits on a clock the test moves."""
    ticking = FakeClock()

    shared = SessionLimits(
        ClientLimits(settings.TEACHING_API_SESSION_MAX_IN_FLIGHT,
                     settings.TEACHING_API_SESSION_RATE,
                     settings.TEACHING_API_SESSION_BURST, clock=ticking, who="this browser"),
        ClientLimits(settings.TEACHING_API_ADDRESS_MAX_IN_FLIGHT,
                     settings.TEACHING_API_ADDRESS_RATE,
                     settings.TEACHING_API_ADDRESS_BURST, clock=ticking,
                     who="your address (shared by every browser behind it)"))
    monkeypatch.setattr(clients, "_teaching_limits", shared)
    return ticking


def learner(page="/learn/how-it-works/"):
    """A browser that opened a lesson page: it holds the session the page started."""
    browser = Client()
    assert browser.get(page).status_code == 200
    assert browser.cookies.get("sessionid"), "the lesson page starts a session"
    return browser


def send(browser, url=STAGES_URL):
    return browser.post(url, NOT_AN_OBJECT, content_type="application/json")


def test_a_class_of_30_behind_one_address_is_not_throttled(clock, active_model):
    # 30 learners on one address drawing for 6 s, each page sending every
    # 150 ms: 1,200 requests at 200 a second, none refused.
    class_ = [learner() for _ in range(30)]
    statuses = []
    for _ in range(40):
        clock.now += PAGE_INTERVAL
        statuses += [send(browser).status_code for browser in class_]
    assert statuses.count(429) == 0
    assert set(statuses) == {400}


def test_one_session_flooding_is_refused_and_the_others_are_not(clock, active_model, settings):
    flooder, classmate = learner(), learner()
    answers = [send(flooder) for _ in range(settings.TEACHING_API_SESSION_BURST + 5)]
    assert [a.status_code for a in answers[:settings.TEACHING_API_SESSION_BURST]] == (
        [400] * settings.TEACHING_API_SESSION_BURST)
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1" and refused.json()["retry_after"] == 1
    assert "too many requests from this browser" in refused.json()["error"]
    assert send(classmate).status_code == 400
    # A second later the flooder has a second's worth again.
    clock.now += 1
    assert send(flooder).status_code == 400


def test_cycling_session_cookies_hits_the_address_ceiling(clock, active_model, settings):
    # A client that invents a new session for every request: each gets a
    # fresh session allowance, and together they stop at the address's.
    ceiling = settings.TEACHING_API_ADDRESS_BURST
    browser = Client()
    statuses = []
    for _ in range(ceiling + 1):
        browser.cookies["sessionid"] = secrets.token_hex(16)
        statuses.append(send(browser).status_code)
    assert statuses[:ceiling] == [400] * ceiling
    browser.cookies["sessionid"] = secrets.token_hex(16)
    refused = send(browser)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "your address" in refused.json()["error"]
    # A browser behind the same address is refused too until it refills.
    assert send(learner()).status_code == 429
    clock.now += 1
    assert send(browser).status_code == 400


@pytest.mark.parametrize("url", ["/learn/api/attention", "/learn/api/neuron",
                                 "/learn/api/snapshots",
                                 "/learn/teach/api/predict"])
def test_every_teaching_endpoint_counts_against_the_session(clock, active_model, settings, url):
    browser = learner("/learn/teach/")
    statuses = [send(browser, url).status_code
                for _ in range(settings.TEACHING_API_SESSION_BURST + 1)]
    assert 429 not in statuses[:-1] and statuses[-1] == 429


def test_requests_at_once_are_bounded_per_session_and_per_address():
    clock = FakeClock()
    limits = SessionLimits(ClientLimits(4, 1000, 1000, clock=clock, who="this browser"),
                           ClientLimits(64, 1000, 1000, clock=clock, who="your address"))
    for _ in range(4):
        limits.acquire(("session:a", "school"))
    with pytest.raises(LimitExceeded, match="at once from this browser"):
        limits.acquire(("session:a", "school"))
    for n in range(60):
        limits.acquire((f"session:{n}", "school"))
    with pytest.raises(LimitExceeded, match="at once from your address"):
        limits.acquire(("session:new", "school"))
    limits.acquire(("session:new", "another school"))
    limits.release(("session:a", "school"))
    limits.acquire(("session:new", "school"))


def test_a_sessions_refused_requests_do_not_spend_the_address_allowance():
    clock = FakeClock()
    limits = SessionLimits(ClientLimits(4, 1, 40, clock=clock, who="this browser"),
                           ClientLimits(64, 1, 50, clock=clock, who="your address"))
    through = 0
    for _ in range(100):
        try:
            limits.acquire(("session:flood", "school"))
        except LimitExceeded:
            continue
        limits.release(("session:flood", "school"))
        through += 1
    assert through == 40
    for _ in range(10):  # the address's other 10
        limits.acquire(("session:classmate", "school"))
        limits.release(("session:classmate", "school"))


@pytest.mark.parametrize("url", ["/learn/api/stages", "/learn/api/snapshots",
                                 "/learn/teach/api/jobs", "/learn/teach/api/jobs/abc/cancel",
                                 "/learn/teach/api/predict"])
def test_a_body_past_the_limit_is_refused_before_any_view_runs(clock, active_model, settings,
                                                               url):
    # Every limited endpoint refuses it the same way, whether or not its view
    # checks the size itself (the cancel view does not read its body).
    browser = learner("/learn/teach/")
    body = b"{" + b" " * settings.RECOGNIZER_MAX_BODY_BYTES + b"}"
    response = browser.post(url, body, content_type="application/json")
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
