"""The log of work every connection repeats (digitsite.game.outage_log), on
the manual clock: an outage's first failure with its traceback, then a line
a minute at most, then one line when the work succeeds again."""

import logging

import pytest

from digitsite.game.outage_log import OutageLog

logger = logging.getLogger("tests.outage_log")


@pytest.fixture
def log(manual_clock, caplog):
    caplog.set_level(logging.INFO, logger=logger.name)
    return OutageLog(logger, "seat heartbeats", every=60.0)


def fail(log, room="ABCD"):
    try:
        raise ConnectionError("the database is away")
    except ConnectionError:
        log.failed(f"room {room}")


def lines(caplog):
    return [(record.levelno, record.getMessage(), bool(record.exc_info))
            for record in caplog.records if record.name == logger.name]


def test_an_outage_of_a_class_of_40_logs_a_line_a_minute_not_a_traceback_a_beat(
        log, manual_clock, caplog):
    """40 connections beating every 10 s through a 5-minute outage: 1,200
    failures, which each logged a traceback; now the first is logged with
    its traceback and the rest in a line a minute, the last with the total."""
    for _ in range(30):  # 300 s
        for connection in range(40):
            fail(log, room=f"R{connection % 5}")
            manual_clock.advance(10 / 40)
    logged = lines(caplog)
    assert logged[0][0] == logging.ERROR and logged[0][2]
    assert "(first: room R0)" in logged[0][1]
    assert [level for level, _, _ in logged[1:]] == [logging.WARNING] * 4
    assert not any(traceback for _, _, traceback in logged[1:])
    # Each minute's line counts the failures since the line before it (the
    # first of each line's minute came at its start: 241 by the 60th second).
    # The latest failure's room is named: 240 failures after R0's, R4's.
    assert [message for _, message, _ in logged[1:]] == [
        f"seat heartbeats still failing (latest: room R0): 240 more in the last 60 s, "
        f"{240 * k + 1} in {60 * k} s" for k in (1, 2, 3, 4)]


def test_a_success_ends_the_outage_and_a_failure_a_minute_later_begins_a_new_one(
        log, manual_clock, caplog):
    fail(log)
    manual_clock.advance(5)
    fail(log)
    manual_clock.advance(5)
    log.succeeded()
    log.succeeded()  # nothing to say: no outage under way
    manual_clock.advance(60)
    fail(log, room="WXYZ")
    assert lines(caplog) == [
        (logging.ERROR, "seat heartbeats are failing (first: room ABCD); further failures "
                        "are counted, and logged at most every 60 s until one succeeds", True),
        (logging.WARNING, "seat heartbeats succeed again, after 2 failures in 10 s", False),
        (logging.ERROR, "seat heartbeats are failing (first: room WXYZ); further failures "
                        "are counted, and logged at most every 60 s until one succeeds", True),
    ]


def test_without_failures_nothing_is_logged(log, caplog):
    for _ in range(100):
        log.succeeded()
    assert lines(caplog) == []


def test_expected_failures_are_logged_at_their_level_without_a_traceback_on_their_clock(
        caplog):
    """The game's writes: a refused try is expected (a lock held a moment),
    its error's text says what went wrong, and the tries' pauses are real
    time, not the game clock's."""
    caplog.set_level(logging.INFO, logger=logger.name)
    now = [100.0]
    writes = OutageLog(logger, "game writes", level=logging.WARNING, traceback=False,
                       now=lambda: now[0])
    try:
        raise ConnectionError("database is locked")
    except ConnectionError as exc:
        writes.failed(f"a drawing in room ABCD: {exc}")
    now[0] += 59
    writes.failed("a join in room WXYZ: database is locked")
    now[0] += 2
    writes.failed("a join in room WXYZ: database is locked")
    now[0] += 4
    writes.succeeded()
    assert lines(caplog) == [
        (logging.WARNING, "game writes are failing (first: a drawing in room ABCD: database "
                          "is locked); further failures are counted, and logged at most every "
                          "60 s until one succeeds", False),
        (logging.WARNING, "game writes still failing (latest: a join in room WXYZ: database "
                          "is locked): 2 more in the last 61 s, 3 in 61 s", False),
        (logging.WARNING, "game writes succeed again, after 3 failures in 65 s", False),
    ]


def test_failures_that_flap_with_successes_cost_two_short_lines_each(log, manual_clock, caplog):
    """A lock timing out now and then in one busy room while the others' work
    goes on: each failure is an outage of its own, over at the next
    success. Within a minute of the last one, it is told in one line without
    its traceback."""
    for _ in range(3):
        fail(log)
        manual_clock.advance(1)
        log.succeeded()
        manual_clock.advance(20)
    assert [(level, message.split(" (")[0].split(",")[0], traceback)
            for level, message, traceback in lines(caplog)] == [
        (logging.ERROR, "seat heartbeats are failing", True),
        (logging.WARNING, "seat heartbeats succeed again", False),
        (logging.WARNING, "seat heartbeats are failing again", False),
        (logging.WARNING, "seat heartbeats succeed again", False),
        (logging.WARNING, "seat heartbeats are failing again", False),
        (logging.WARNING, "seat heartbeats succeed again", False),
    ]


def test_an_outage_nobody_tried_again_for_a_minute_ends_and_the_next_begins_anew(
        log, manual_clock, caplog):
    """Everyone who tried went away during the outage, so no success came:
    a failure after a minute's silence ends it, says so, and is the first of
    a new outage, with its traceback (its cause may be another)."""
    fail(log)
    manual_clock.advance(30)
    fail(log)
    manual_clock.advance(3600)
    fail(log, room="WXYZ")
    assert lines(caplog)[1:] == [
        (logging.WARNING, "seat heartbeats: 2 failures in 30 s, then none for 3600 s and no "
                          "success heard; counted as over", False),
        (logging.ERROR, "seat heartbeats are failing (first: room WXYZ); further failures "
                        "are counted, and logged at most every 60 s until one succeeds", True),
    ]


def test_every_log_is_reset_between_tests(manual_clock):
    """tests/conftest.py resets every log before each test: none of the
    process's logs is in an outage here, whatever the tests before did."""
    from digitsite.game import database, live_feed, timers

    for log in (timers._heartbeats, database._refusals, live_feed._lost):
        assert log.began is None and log.failures == 0 and log.ended is None
