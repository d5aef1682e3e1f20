"""A class over WebSockets, through the real ASGI application: the teacher's
connection gets every student's drawing live, throttled, and the class's
results; a student never receives another student's drawing.

Timers run in virtual time (the `manual_clock` fixture): the throttle lets a
student's next drawing go only when the test moves the clock on.
"""

import json

import pytest
from asgiref.sync import sync_to_async

from digitsite.game import classroom, protocol
from digitsite.game.rooms import create_room
from tests.test_game_consumers import join, one, seven

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def game_clock(manual_clock):
    return manual_clock


new_class = sync_to_async(create_room)


async def seated(client, count):
    """Wait until `client` sees `count` seats in the room."""
    snapshot = await client.expect("room")
    while len([p for p in snapshot["players"] if not p["gone"]]) < count:
        snapshot = await client.expect("room")
    return snapshot


async def everything_read(client):
    """Every message sent to `client` so far is in its `seen` (a ping's pong comes after)."""
    await client.send("ping")
    await client.expect("pong")
    return client.seen


async def test_the_teacher_sees_students_draw_live_and_students_see_only_their_own(
        active_model, game_clock):
    room = await new_class("Ms Lovelace", classroom=True, rounds=1, seconds=20,
                           results_seconds=3, target_confidence=1.0)
    teacher = await join(room.code, "Ms Lovelace")
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    assert teacher.you["host"] and not ada.you["host"] and not bob.you["host"]
    assert teacher.welcome["room"]["settings"]["classroom"] is True
    await seated(teacher, 3)

    await ada.send("start")
    await ada.error("not_host")
    await teacher.send("start")
    for client in (teacher, ada, bob):
        await client.expect("round_start", round=1)
    # The teacher has no canvas in the round.
    await teacher.send("draw", round=1, drawing=seven())
    assert "does not draw" in (await teacher.error("not_drawing"))["message"]
    await teacher.send("done", round=1)
    await teacher.error("not_drawing")

    # A student's first drawing reaches the projector at once, simplified...
    await ada.send("draw", round=1, seq=1, drawing=seven(0))
    first_guess = await ada.expect("guess", seq=1)
    live = await teacher.expect("class_drawing", player=ada.you["id"])
    protocol.check(live)
    assert live["drawing"] == classroom.simplify_drawing(seven(0))
    assert (live["round"], live["digit"]) == (1, first_guess["digit"])
    assert live["target_probability"] == first_guess["target_probability"]
    # ...the next ones wait for the throttle, and only the newest then goes.
    for seq, offset in ((2, 5.0), (3, 10.0), (4, 15.0)):
        await ada.send("draw", round=1, seq=seq, drawing=seven(offset))
        await ada.expect("guess", seq=seq)
    # Each student has a throttle of their own: Bob's first goes at once.
    await bob.send("draw", round=1, seq=1, drawing=one())
    await bob.expect("guess", seq=1)
    bobs = await teacher.expect("class_drawing", player=bob.you["id"])
    assert bobs["drawing"] == classroom.simplify_drawing(one())
    game_clock.advance(classroom.LIVE_INTERVAL)
    newest = await teacher.expect("class_drawing", player=ada.you["id"])
    assert newest["drawing"] == classroom.simplify_drawing(seven(15.0))
    lives = [m for m in await everything_read(teacher) if m["type"] == "class_drawing"]
    assert len(lives) == 3  # of Ada's four drawings, the first and the newest

    await ada.send("done", round=1)
    await bob.send("done", round=1)
    ends = {c.you["name"]: await c.expect("round_end", round=1) for c in (teacher, ada, bob)}
    assert [r["name"] for r in ends["Ms Lovelace"]["results"]] == ["Ada", "Bob"]
    assert [r["name"] for r in ends["Ada"]["results"]] == ["Ada"]
    assert [r["name"] for r in ends["Bob"]["results"]] == ["Bob"]
    assert ends["Ada"]["results"][0]["drawing"] == seven(15.0)

    report = await teacher.expect("class_round", round=1)
    protocol.check(report)
    assert (report["students"], report["drawn"]) == (2, 2)
    assert sum(map(sum, report["matrix"])) == 2
    over = await teacher.expect("game_over")
    assert {row["name"] for row in over["leaderboard"]} == {"Ada", "Bob"}
    summary = await teacher.expect("class_summary")
    protocol.check(summary)
    assert summary["drawings"] == 2 and summary["review_url"] is None

    # After the game, each student's gallery holds their own drawing only.
    for me in (ada, bob):
        mine = await me.expect("gallery")
        protocol.check(mine)
        assert [d["player"] for d in mine["drawings"]] == [me.you["id"]]

    # Neither student received anything of the projector's, nor the other's drawing.
    for me, other in ((ada, one()), (bob, seven(15.0))):
        # Broadcasts come through the channel layer, a pong straight back:
        # the game's end was waited for above (the gallery follows it), not
        # assumed to be ahead of the pong.
        seen = await everything_read(me)
        assert not [m for m in seen if m["type"].startswith("class_")
                    or m["type"] == "live_drawing"]
        assert "game_over" in {m["type"] for m in seen}
        text = json.dumps(seen)
        assert json.dumps(other["strokes"]) not in text
    for client in (teacher, ada, bob):
        await client.close()


async def test_a_class_refuses_the_forty_first_student(active_model, settings):
    settings.GAME_CLASS_MAX_STUDENTS = 3
    room = await new_class("Ms Lovelace", classroom=True)
    teacher = await join(room.code, "Ms Lovelace")
    students = [await join(room.code, f"Student {n}") for n in range(3)]
    from tests.test_game_consumers import connect

    late = await connect(room.code)
    await late.send("join", protocol=1, name="Late")
    await late.error("room_full")
    assert await late.closed() == protocol.CLOSE_ROOM_FULL
    for client in (teacher, *students):
        await client.close()
