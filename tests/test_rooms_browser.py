"""End to end, real Chromium against a real Daphne server: a private room is
left out of the lobby but joined by its link, the host's settings change it,
and the host removes a player, whose page is told and who cannot come back."""

import re

import pytest

from tests.live import open_page

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
PLAYER_NAMES_ARE = """(expected) => [...document.querySelectorAll(
    '[data-players] .player__name > span:first-child')].map((e) => e.textContent).join(',')
    === expected"""


def lobby_codes(page, base):
    return page.evaluate(
        "async (url) => (await (await fetch(url)).json()).rooms.map((r) => r.code)",
        base + "/lobby.json")


def test_private_room_is_unlisted_joinable_by_link_and_the_host_removes_a_player(
        daphne_server, page, browser, artifacts_dir):
    base = daphne_server.url

    # Ada creates a private room from the home page.
    page.goto(base + "/")
    page.fill("#id_name", "Ada")
    page.click("form[action='/name/'] button[type=submit]")
    page.wait_for_selector("[data-display-name]")
    page.check("#id_private")
    page.click("form[action='/rooms/new/'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/room/[A-Z2-9]{6}/$"))
    room_url = page.url
    code = room_url.rstrip("/").rsplit("/", 1)[1]
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)
    assert page.locator("[data-private-badge]").is_visible()

    with open_page(browser, viewport={"width": 1280, "height": 900}) as visitor:
        # A visitor's lobby does not show it, though Ada is connected in it.
        visitor.goto(base + "/")
        assert visitor.locator(f"[data-code='{code}']").count() == 0
        assert code not in lobby_codes(visitor, base)

        # Bob opens the link, picks a name and is seated.
        visitor.goto(room_url)
        visitor.fill("#id_name", "Bob")
        visitor.click("text=Join the room")
        visitor.wait_for_selector("[data-room][data-connection-state='connected']",
                                  timeout=TIMEOUT_MS)
        bob_id = visitor.evaluate("() => window.digitGame.state.me.id")
        page.wait_for_function(
            "() => document.querySelectorAll('[data-players] .player').length === 2",
            timeout=TIMEOUT_MS)
        # Only the host is offered to remove players.
        assert visitor.locator("[data-kick]").count() == 0
        assert visitor.locator("[data-room-settings]").is_hidden()

        # The host lists the room after all, from the lobby's settings.
        page.click("[data-room-settings] summary")
        page.uncheck("[data-settings-private]")
        page.click("[data-settings-save]")
        page.wait_for_selector("[data-private-badge]", state="hidden", timeout=TIMEOUT_MS)
        visitor.wait_for_selector("[data-private-badge]", state="hidden", timeout=TIMEOUT_MS)
        assert code in lobby_codes(visitor, base)

        # Ada removes Bob (confirming the dialog).
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"[data-kick='{bob_id}']")
        visitor.wait_for_selector("[data-room][data-connection-state='closed']",
                                  timeout=TIMEOUT_MS)
        assert "removed you" in visitor.locator("[data-status]").inner_text()
        page.wait_for_selector(f"[data-players] .player.is-gone[data-player='{bob_id}']",
                               timeout=TIMEOUT_MS)
        assert page.locator("[data-kick]").count() == 0
        visitor.screenshot(path=str(artifacts_dir / "room-kicked.png"), full_page=True)

        # Back through the link: the page says so, and offers no join.
        visitor.goto(room_url)
        assert "You were removed from room" in visitor.content()
        assert visitor.locator("text=Join the room").count() == 0
        assert visitor.js_errors == [] and page.js_errors == []


def test_a_name_imitating_a_seated_player_asks_for_another_on_the_room_page(
        daphne_server, page, browser):
    """Hostile input: "ＡＤＡ" (full-width capitals) joining where "Ada" sits."""
    base = daphne_server.url
    page.goto(base + "/")
    page.fill("#id_name", "Ada")
    page.click("form[action='/name/'] button[type=submit]")
    page.wait_for_selector("[data-display-name]")
    page.click("form[action='/rooms/new/'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/room/[A-Z2-9]{6}/$"))
    room_url = page.url
    page.wait_for_selector("[data-room][data-connection-state='connected']", timeout=TIMEOUT_MS)

    with open_page(browser, viewport={"width": 1280, "height": 900}) as other:
        other.goto(room_url)
        other.fill("#id_name", "ＡＤＡ")
        other.click("text=Join the room")
        other.wait_for_selector("[data-rename]:not([hidden])", timeout=TIMEOUT_MS)
        assert "already called 'Ada'" in other.locator("[data-rename-reason]").inner_text()
        assert other.locator("[data-room]").is_hidden()
        other.fill("#id_rename", "Cy")
        other.click("[data-rename] button[type=submit]")
        other.wait_for_selector("[data-room][data-connection-state='connected']",
                                timeout=TIMEOUT_MS)
        page.wait_for_function(PLAYER_NAMES_ARE, arg="Ada,Cy", timeout=TIMEOUT_MS)
        assert other.js_errors == [] and page.js_errors == []
