"""Class rooms without a server: the class's rules (digitsite.game.classroom),
its seats and rounds in the database, and the teacher's reports."""

import json

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from digitsite.game import class_reports, classroom, guesses, protocol, rooms, seats
from digitsite.game import rounds as game_rounds
from digitsite.game.models import Room, RoundProgress
from digitsite.game.rules import GameError
from recognizer.inference import Prediction
from recognizer.models import Drawing

# -- the rules, in plain Python --------------------------------------------------


def test_only_the_teacher_of_a_class_is_the_non_drawing_seat():
    assert classroom.is_teacher(True, "t", "t")
    assert not classroom.is_teacher(True, "t", "s1")
    assert not classroom.is_teacher(False, "t", "t")  # an ordinary room's host plays
    assert not classroom.is_teacher(True, "", "")  # no teacher seated yet
    assert classroom.draws(True, "t", "s1") and not classroom.draws(True, "t", "t")
    assert classroom.draws(False, "h", "h")


def test_who_receives_the_live_drawings():
    # Only the teacher of a class receives them; its students send them.
    assert classroom.receives_live_drawings(True, "t", "t")
    assert not classroom.receives_live_drawings(True, "t", "s1")
    assert not classroom.receives_live_drawings(False, "h", "h")
    assert classroom.sends_live_drawings(True, "t", "s1")
    assert not classroom.sends_live_drawings(True, "t", "t")
    assert not classroom.sends_live_drawings(False, "h", "p")


def test_the_teacher_is_the_browser_that_opened_the_class():
    assert classroom.joins_as_teacher(teacher_seated=False, creator_session="abc",
                                      session_hash="abc")
    assert not classroom.joins_as_teacher(teacher_seated=False, creator_session="abc",
                                          session_hash="xyz")
    assert not classroom.joins_as_teacher(teacher_seated=False, creator_session="abc",
                                          session_hash="")
    assert not classroom.joins_as_teacher(teacher_seated=True, creator_session="abc",
                                          session_hash="abc")
    # A class opened by a script: whoever joins first.
    assert classroom.joins_as_teacher(teacher_seated=False, creator_session="",
                                      session_hash="")


def test_a_class_seats_forty_students_besides_its_teacher():
    students = [f"s{n}" for n in range(39)]
    assert not classroom.is_full(40, ["t", *students], "t", classroom=True)
    assert classroom.is_full(40, ["t", *students, "s39"], "t", classroom=True)
    # The teacher always gets in, and is not counted.
    assert not classroom.is_full(40, [*students, "s39"], "", classroom=True,
                                 joining_teacher=True)
    # An ordinary room counts its host.
    assert classroom.is_full(8, [f"p{n}" for n in range(8)], "p0", classroom=False)
    assert classroom.check_class_size(40, 3, 40) == 40
    assert classroom.check_class_size(12.0, 3, 40) == 12
    for bad in (0, 41, True, "9", 2.5):
        with pytest.raises(GameError):
            classroom.check_class_size(bad, 0, 40)
    with pytest.raises(GameError, match="below the 5 students"):
        classroom.check_class_size(4, 5, 40)


def result(player, digit, *, target=7, reached=False, drawing=True):
    probabilities = [0.0] * 10
    if digit is not None:
        probabilities[digit] = 0.6
    return protocol.record(
        "result", player=player, name=player.upper(), drawing=DRAWING if drawing else None,
        input=None, drawing_deleted=not drawing, digit=digit,
        probabilities=probabilities if digit is not None else None,
        target_probability=0.9 if digit == target else 0.1, best_target_probability=0.9,
        reached=reached, points=10, score=10, seconds=None, reason="done")


DRAWING = {"width": 280.0, "height": 280.0,
           "strokes": [[[60.0, 50.0, 0.0], [200.0, 50.0, 120.0], [110.0, 240.0, 400.0]]]}


def test_a_student_is_sent_only_their_own_result_and_never_the_projectors_messages():
    round_end = protocol.message(
        "round_end", game="g", round=1, rounds=1, target=7, final=True, next_round_at=None,
        server_time=0, results=[result("a", 7), result("b", 1)])
    mine = classroom.visible_to(round_end, "a", teacher=False)
    assert [r["player"] for r in mine["results"]] == ["a"]
    assert [r["player"] for r in round_end["results"]] == ["a", "b"]  # not changed in place
    assert classroom.visible_to(round_end, "t", teacher=True) is round_end
    live = {"type": "class_drawing", "player": "b"}
    assert classroom.visible_to(live, "a", teacher=False) is None
    assert classroom.visible_to({"type": "class_round"}, "a", teacher=False) is None
    assert classroom.visible_to({"type": "class_summary"}, "a", teacher=False) is None
    assert classroom.visible_to(live, "t", teacher=True) is live
    pong = {"type": "pong", "server_time": 1}
    assert classroom.visible_to(pong, "a", teacher=False) is pong


def test_live_drawings_are_throttled_per_student():
    throttle = classroom.LiveThrottle()
    assert throttle.wait(100.0) == 0.0
    throttle.sent(100.0)
    assert throttle.wait(100.1) == pytest.approx(classroom.LIVE_INTERVAL - 0.1)
    assert throttle.wait(100.0 + classroom.LIVE_INTERVAL) == 0.0
    assert 1 <= classroom.LIVE_UPDATES_PER_SECOND <= 5  # "a few a second"


def test_a_live_drawing_is_bounded_however_large_the_drawing():
    # The largest drawing a client may send: 5,000 points, in 2,500 strokes.
    strokes = [[[x * 3.7, (x * 7.3) % 1000, x] for x in range(k, k + 2)]
               for k in range(0, 5000, 2)]
    huge = {"width": 1000.0, "height": 1000.0, "strokes": strokes}
    small = classroom.simplify_drawing(huge)
    assert sum(len(s) for s in small["strokes"]) <= classroom.LIVE_MAX_POINTS
    assert (small["width"], small["height"]) == (classroom.LIVE_GRID, classroom.LIVE_GRID)
    assert all(0 <= v <= classroom.LIVE_GRID and isinstance(v, int)
               for s in small["strokes"] for p in s for v in p)
    message = protocol.message(
        "class_drawing", round=20, player="f" * 12, drawing=small, digit=9,
        probability=0.123456789, target_probability=0.987654321, reached=False)
    protocol.check(message)
    assert len(protocol.encode(message).encode()) <= classroom.LIVE_MAX_BYTES
    # So the projector of a full class of 40 gets at most this many bytes a second.
    assert classroom.live_bandwidth(40) == 40 * classroom.LIVE_UPDATES_PER_SECOND * 2_300


def test_a_small_drawing_keeps_its_shape():
    small = classroom.simplify_drawing(DRAWING)
    assert small == {"width": 100, "height": 100,
                     "strokes": [[[21, 18], [71, 18], [39, 86]]]}
    wide = classroom.simplify_drawing({"width": 400, "height": 200,
                                       "strokes": [[[0, 0], [400, 200], [400, 200]]]})
    assert wide == {"width": 100, "height": 50, "strokes": [[[0, 0], [100, 50]]]}
    long_stroke = {"width": 100, "height": 100,
                   "strokes": [[[x / 10, x / 10] for x in range(1000)]]}
    thinned = classroom.simplify_drawing(long_stroke, max_points=20)["strokes"][0]
    assert len(thinned) <= 20 and thinned[0] == [0, 0] and thinned[-1] == [100, 100]


def test_the_class_confusion_matrix_counts_target_against_guess():
    matrix = classroom.confusion_matrix([(7, 7), (7, 1), (7, 1), (3, 8), (2, None)])
    assert matrix[7][7] == 1 and matrix[7][1] == 2 and matrix[3][8] == 1
    assert sum(map(sum, matrix)) == 4  # nothing drawn: not in the matrix
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)


def test_a_rounds_summary_lists_the_drawings_the_model_got_wrong():
    summary = classroom.round_summary(
        [result("a", 7, reached=True), result("b", 1), result("c", None, drawing=False),
         result("d", 2, drawing=False)], target=7)
    assert (summary["students"], summary["drawn"], summary["recognised"],
            summary["correct"]) == (4, 3, 1, 1)
    assert [(w["player"], w["digit"]) for w in summary["wrong"]] == [("b", 1), ("d", 2)]
    assert summary["wrong"][0]["drawing"] == classroom.simplify_drawing(DRAWING)
    assert summary["wrong"][0]["probability"] == 0.6
    assert summary["wrong"][1]["drawing"] is None  # an opted-out student's: not kept


# -- seats and rounds in the database ---------------------------------------------


def guessed(digit, target, p_target):
    probabilities = [0.0] * 10
    probabilities[digit] = 1.0 - p_target if digit != target else p_target
    probabilities[target] = p_target
    return Prediction(digit, probabilities, "v-test")


@pytest.fixture
def klass(db, manual_clock):
    return rooms.create_room("Ms Lovelace", classroom=True, rounds=2, seconds=20,
                             target_confidence=0.8)


def join(code, name, **fields):
    return seats.join(code, name=name, channel_name=f"chan-{name}", **fields)


def test_a_class_is_private_seats_the_configured_students_and_pauses_longer(klass, settings):
    assert (klass.classroom, klass.private, klass.solo) == (True, True, False)
    assert klass.max_players == settings.GAME_CLASS_MAX_STUDENTS == 40
    assert klass.results_seconds == classroom.CLASS_RESULTS_SECONDS
    settings.GAME_CLASS_MAX_STUDENTS = 12
    smaller = rooms.create_room("Mr Babbage", classroom=True)
    assert smaller.max_players == 12
    teacher = join(klass.code, "Ms Lovelace")
    assert teacher.events[0]["settings"]["classroom"] is True
    with pytest.raises(GameError, match="always private"):
        rooms.change_settings(klass.code, teacher.seat.player_id, {"private": False})
    rooms.change_settings(klass.code, teacher.seat.player_id, {"max_players": 12})
    with pytest.raises(GameError, match="between 1 and 12"):
        rooms.change_settings(klass.code, teacher.seat.player_id, {"max_players": 13})


def test_forty_students_join_a_class_and_the_forty_first_is_refused(klass):
    teacher = join(klass.code, "Ms Lovelace")
    for n in range(40):
        join(klass.code, f"Student {n}")
    with pytest.raises(GameError) as refused:
        join(klass.code, "Student 40")
    assert refused.value.code == "room_full"
    room = Room.objects.get(pk=klass.pk)
    assert room.host_player == teacher.seat.player_id
    # A student who leaves frees a seat; the teacher's seat never counted.
    leaver = room.seats.get(name="Student 0")
    seats.leave(leaver.player_id)
    assert join(klass.code, "Student 40").seat.name == "Student 40"


def test_a_student_never_becomes_the_host_of_a_class(db, manual_clock):
    teachers = seats.hash_session("teacher-session")
    klass = rooms.create_room("Ms Lovelace", classroom=True, creator_session=teachers)
    early = join(klass.code, "Early")  # before the projector opened
    assert early.events[0]["host"] is None
    with pytest.raises(GameError) as refused:
        game_rounds.start_game(klass.code, early.seat.player_id)
    assert refused.value.code == "not_host"
    teacher = join(klass.code, "Ms Lovelace", session_key="teacher-session")
    assert teacher.events[0]["host"] == teacher.seat.player_id
    # The teacher drops: the class waits for them, no student takes over...
    seats.disconnect(teacher.seat.player_id, "chan-Ms Lovelace")
    assert Room.objects.get(pk=klass.pk).host_player == teacher.seat.player_id
    # ...and the teacher's browser gets the teacher's seat back, even without its token.
    back = seats.join(klass.code, name="Ms Lovelace", channel_name="chan-2",
                      session_key="teacher-session")
    assert back.rejoined and back.seat.player_id == teacher.seat.player_id


def test_a_class_needs_a_student_to_start(klass):
    teacher = join(klass.code, "Ms Lovelace")
    with pytest.raises(GameError) as refused:
        game_rounds.start_game(klass.code, teacher.seat.player_id)
    assert refused.value.code == "no_students"


def play(code, player, game, round_number, target, digit, p_target):
    """A student's finished drawing (the pen lifted) read as `digit`."""
    return guesses.record_guess(
        code, player, game, round_number, drawing=DRAWING, input_bytes=bytes(784),
        prediction=guessed(digit, target, p_target), target=target, pen_up=True)


def test_the_teacher_does_not_draw_score_or_rank_and_the_class_matrix_adds_up(klass,
                                                                            manual_clock):
    teacher = join(klass.code, "Ms Lovelace").seat.player_id
    ada, bob = join(klass.code, "Ada").seat.player_id, join(klass.code, "Bob").seat.player_id
    game_rounds.start_game(klass.code, teacher)
    room = Room.objects.get(pk=klass.pk)
    first = room.target
    play(klass.code, ada, room.game_id, 1, first, first, 0.95)  # reached: finished
    wrong = (first + 1) % 10
    play(klass.code, bob, room.game_id, 1, first, wrong, 0.1)
    ended = guesses.finish_player(klass.code, bob, room.game_id, 1, "done")
    # Every student finished: the round ends though the teacher never drew.
    round_end = next(m for m in ended if m["type"] == "round_end")
    assert [r["player"] for r in round_end["results"]] == [ada, bob]
    assert not RoundProgress.objects.filter(seat__player_id=teacher).exists()
    report = class_reports.round_message(klass.code, round_end)
    protocol.check(report)
    assert (report["students"], report["drawn"], report["correct"]) == (2, 2, 1)
    assert [(w["player"], w["digit"]) for w in report["wrong"]] == [(bob, wrong)]
    assert report["matrix"][first][first] == 1 and report["matrix"][first][wrong] == 1

    manual_clock.advance(classroom.CLASS_RESULTS_SECONDS)
    game_rounds.advance(klass.code)  # the results pause is over: round 2
    room.refresh_from_db()
    second = room.target
    play(klass.code, ada, room.game_id, 2, second, second, 0.95)
    _, final = play(klass.code, bob, room.game_id, 2, second, second, 0.95)
    round_end = next(m for m in final if m["type"] == "round_end")
    report = class_reports.round_message(klass.code, round_end)
    # The matrix is the game's so far: both rounds, four drawings.
    assert sum(map(sum, report["matrix"])) == 4 and report["matrix_rounds"] == 2
    assert report["matrix"][second][second] == 2
    game_over = next(m for m in final if m["type"] == "game_over")
    assert {row["player"] for row in game_over["leaderboard"]} == {ada, bob}
    assert next(p for p in final[-1]["players"] if p["id"] == teacher)["score"] == 0


def test_the_summary_counts_the_classs_kept_drawings_and_links_staff_to_review(klass):
    teacher = join(klass.code, "Ms Lovelace").seat.player_id
    ada = join(klass.code, "Ada").seat.player_id
    join(klass.code, "Bob", opt_out=True)
    game_rounds.start_game(klass.code, teacher, rounds=1)
    room = Room.objects.get(pk=klass.pk)
    play(klass.code, ada, room.game_id, 1, room.target, room.target, 0.95)
    bob = room.seats.get(name="Bob").player_id
    play(klass.code, bob, room.game_id, 1, room.target, room.target, 0.95)
    assert Drawing.objects.filter(room_code=klass.code).count() == 1  # Bob opted out
    summary = class_reports.summary_message(klass.code, room.game_id, staff=False)
    protocol.check(summary)
    assert summary["drawings"] == 1 and summary["by_digit"][room.target] == 1
    assert summary["misread"] == 0 and summary["review_url"] is None
    assert summary["learn_url"] == reverse("teaching:how_it_works")
    assert [s["label"] for s in summary["samples"]] == [room.target]
    staff = class_reports.summary_message(klass.code, room.game_id, staff=True)
    assert staff["review_url"] == f"/admin/recognizer/drawing/?room_code={klass.code}"


def test_the_review_link_lists_the_classs_drawings_in_the_admin(klass, client):
    User.objects.create_user("boss", password="pw-long-enough-1", is_staff=True,
                             is_superuser=True)
    client.login(username="boss", password="pw-long-enough-1")
    teacher = join(klass.code, "Ms Lovelace").seat.player_id
    ada = join(klass.code, "Ada").seat.player_id
    game_rounds.start_game(klass.code, teacher, rounds=1)
    room = Room.objects.get(pk=klass.pk)
    play(klass.code, ada, room.game_id, 1, room.target, room.target, 0.95)
    other = rooms.create_room("Other")
    Drawing.objects.create(label=1, strokes=DRAWING, input_image=bytes(784), prediction=1,
                           probabilities=[0.1] * 10, player_id="x", player_name="Zed",
                           room_code=other.code)
    page = client.get(class_reports.review_url(klass.code))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Ada" in html and "Zed" not in html
    assert json.dumps(klass.code)[1:-1] in html


def on_grid_point_by_point(strokes, scale, grid):
    """classroom.on_grid as it was written first, one point at a time: the reference."""
    result = []
    for stroke in strokes:
        points = []
        for point in stroke:
            moved = [min(max(round(point[0] * scale), 0), grid),
                     min(max(round(point[1] * scale), 0), grid)]
            if not points or points[-1] != moved:
                points.append(moved)
        if points:
            result.append(points)
    return result


def random_drawings(count, seed=5):
    """Drawings of every kind a scored drawing can be: any canvas, empty strokes,
    points with and without times (mixed too), halves that round either way,
    points off the canvas, repeated points, a few points and thousands."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        width, height = (float(v) for v in rng.choice([1, 7.5, 100, 280, 400, 1000, 9999], 2))
        strokes = []
        for _ in range(int(rng.integers(0, 12))):
            n = int(rng.choice([0, 1, 2, 5, 40, 600]))
            xy = rng.uniform(-0.2, 1.2, (n, 2)) * [width, height]
            if index % 3 == 0:
                xy = np.round(xy)  # whole pixels, as the page sends them
            if index % 5 == 0 and n:
                xy[::3] = xy[0]  # repeated points
            if index % 7 == 0:  # exact halves on the grid
                xy = (np.round(xy * 2 / max(width, height) * 100) / 2) * max(width, height) / 100
            points = [[float(x), float(y)] for x, y in xy]
            if index % 4 == 1:
                points = [p + [float(t)] for t, p in enumerate(points)]
            elif index % 4 == 2:
                points = [p + [1.0] if k % 2 else p for k, p in enumerate(points)]
            strokes.append(points)
        yield {"width": width, "height": height, "strokes": strokes}


def test_the_points_on_the_grid_are_those_the_point_by_point_version_made():
    """On 2,000 drawings and the catalogue of worst drawings, on two grids."""
    from tests.worst_drawings import worst_drawings

    drawings = list(random_drawings(2000))
    drawings += [case.drawing for case in worst_drawings(5000)]
    for drawing in drawings:
        strokes = [stroke for stroke in drawing["strokes"] if stroke]
        for grid in (classroom.LIVE_GRID, 37):
            scale = grid / max(drawing["width"], drawing["height"])
            made = classroom.on_grid(strokes, scale, grid)
            assert made == on_grid_point_by_point(strokes, scale, grid)
            assert all(type(v) is int for stroke in made for point in stroke for v in point)


def test_a_coordinate_the_scale_overflows_is_clamped_to_the_edge_without_a_warning():
    """1e307 on a canvas 1 wide passes the drawing's validation; scaled, it is inf.
    Point by point, round(inf) raised OverflowError where live drawings go out."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = classroom.simplify_drawing({"width": 1, "height": 1,
                                            "strokes": [[[1e307, 0.5], [0, 0]]]})
    assert small["strokes"] == [[[classroom.LIVE_GRID, 50], [0, 0]]]
