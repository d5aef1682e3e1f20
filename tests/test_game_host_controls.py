"""The host's controls and the name rules over WebSockets, through the real ASGI
application: settings between games, removing a player (told, closed with
4005, kept out), and names that imitate a seated player or the staff."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore

from digitsite.game import protocol
from tests.test_game_consumers import connect, join, new_room, room_row

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def browser_session():
    """A saved Django session, as the page's cookie would carry it."""
    store = SessionStore()
    store["display_name"] = "Bob"
    store.save()
    return f"sessionid={store.session_key}"


async def test_a_name_imitating_a_seated_player_is_refused_and_another_is_taken():
    """Hostile inputs: "ADA", "Ａｄａ" (full width), "A\\u200bda" (zero-width space),
    "Admin" (reserved), "\\u202eAda" (right-to-left override)."""
    room = await new_room()
    ada = await join(room.code, "Ada")
    eve = await connect(room.code)
    for name, code in (("ADA", "name_taken"), ("Ａｄａ", "name_taken"),
                       ("A\u200bda", "name_taken"), ("Admin", "name_reserved"),
                       ("\u202eAda", "bad_name")):
        await eve.send("join", protocol=1, name=name)
        error = await eve.error(code)
        assert error["for"] == "join"
    # The connection stays open: the same socket joins under a fair name.
    await eve.send("join", protocol=1, name="Eve")
    welcome = await eve.expect("welcome")
    assert [p["name"] for p in welcome["room"]["players"]] == ["Ada", "Eve"]
    await eve.close()
    await ada.close()


async def test_the_host_changes_settings_and_everyone_sees_them():
    room = await new_room()
    ada = await join(room.code, "Ada")
    bob = await join(room.code, "Bob")
    await bob.send("settings", private=True)
    await bob.error("not_host")
    await ada.send("settings", seconds=1)  # the 1-second round once accepted
    error = await ada.error("bad_message")
    assert "between 10 and 300" in error["message"]
    await ada.send("settings", private=True, seconds=30, rounds=2, max_players=3)
    snapshot = await bob.expect("room", rounds=2)
    assert snapshot["settings"]["private"] is True
    assert (snapshot["settings"]["seconds"], snapshot["settings"]["max_players"]) == (30.0, 3)
    row = await room_row(room.code)
    assert (row.private, row.round_seconds, row.rounds) == (True, 30.0, 2)
    await ada.close()
    await bob.close()


async def test_a_removed_player_is_told_closed_with_4005_and_kept_out():
    room = await new_room()
    ada = await join(room.code, "Ada")
    cookie = await browser_session()
    bob = await join(room.code, "Bob", cookie=cookie)
    await bob.send("kick", player=ada.you["id"])
    await bob.error("not_host")
    await ada.send("kick", player=bob.you["id"])
    told = await bob.error("kicked")
    assert "removed" in told["message"]
    assert await bob.closed() == protocol.CLOSE_KICKED == 4005
    while True:  # the snapshots of Bob's join come first
        snapshot = await ada.expect("room")
        if any(p["gone"] for p in snapshot["players"]):
            break
    assert [(p["name"], p["gone"]) for p in snapshot["players"]] == [("Ada", False),
                                                                     ("Bob", True)]
    # Back with the seat's token: refused and closed again.
    again = await connect(room.code)
    await again.send("join", protocol=1, name="Bob", token=bob.you["token"])
    await again.error("kicked")
    assert await again.closed() == 4005
    # Back from the same browser session under another name, without the token.
    other = await connect(room.code, cookie=cookie)
    await other.send("join", protocol=1, name="Robert")
    await other.error("kicked")
    assert await other.closed() == 4005
    await ada.close()
