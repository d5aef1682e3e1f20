"""The middleware stack on the event loop (digitsite/middleware.py), through
the site's ASGI handler's middleware (in AsyncClient), as Daphne serves it.

Counted: the thread hops a teaching request makes (sync_to_async calls),
with the site's stack and with Django's own classes. Kept: what each
middleware does (headers, the CSRF check, a changed session saved, the
admin's messages, static files), including the hooks that still go to a
thread because they query the database.
"""

import json
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import AsyncClient
from django.test.client import AsyncClientHandler
from django.urls import reverse

from digitsite.middleware import ON_THE_LOOP, ASGIHandler, LoadsOnTheLoop, on_the_loop
from recognizer.models import Drawing
from tests.test_admin_review import CHANGELIST, make_drawing, staff_user

pytestmark = pytest.mark.django_db(transaction=True)



class SiteClientHandler(LoadsOnTheLoop, AsyncClientHandler):
    """The test client's handler, loading the middleware as the site's ASGIHandler does."""


def site_client(**options):
    client = AsyncClient(**options)
    client.handler = SiteClientHandler(options.get("enforce_csrf_checks", False))
    return client
# A seven's first strokes, and only the dense layer: the smallest teaching answer.
DRAWING = {"width": 200, "height": 200, "strokes": [[[40, 40, 0], [160, 40, 50], [90, 170, 120]]],
           "stages": ["dense"]}


async def stages_request(client):
    return await client.post("/learn/api/stages", json.dumps(DRAWING),
                             content_type="application/json")


def test_the_site_serves_django_through_that_handler(settings):
    from digitsite.asgi import django_asgi_app

    assert isinstance(django_asgi_app, ASGIHandler)
    assert isinstance(django_asgi_app, LoadsOnTheLoop)
    # Every class it replaces is one the settings list (a renamed path would
    # quietly load Django's class, with its hops).
    assert set(ON_THE_LOOP) <= set(settings.MIDDLEWARE)
    settings.CSRF_USE_SESSIONS = True
    assert "django.middleware.csrf.CsrfViewMiddleware" not in on_the_loop()
    assert len(on_the_loop()) == len(ON_THE_LOOP) - 1


async def test_every_request_saves_the_session_when_the_settings_ask(active_model, settings):
    client = site_client()
    key = (await client.get(reverse("teaching:how_it_learned"))).cookies[
        settings.SESSION_COOKIE_NAME].value
    expiry = (await Session.objects.aget(session_key=key)).expire_date
    settings.SESSION_SAVE_EVERY_REQUEST = True
    again = await stages_request(client)
    assert again.status_code == 200
    # Saved (in a thread: the write happens without SynchronousOnlyOperation).
    assert again.cookies[settings.SESSION_COOKIE_NAME].value == key
    assert (await Session.objects.aget(session_key=key)).expire_date > expiry


async def test_logging_out_deletes_the_session_and_its_cookie(django_user_model):
    user = await sync_to_async(staff_user)(django_user_model, "rita", "Reviewers")
    client = site_client()
    await client.aforce_login(user)
    assert await Session.objects.acount() == 1
    out = await client.post(reverse("admin:logout"))
    assert out.status_code == 200
    assert out.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 0
    assert await Session.objects.acount() == 0


async def test_a_teaching_request_runs_no_middleware_hook_in_a_thread(active_model, hops):
    client = site_client()
    assert (await stages_request(client)).status_code == 200  # the model loaded
    hops.clear()
    response = await stages_request(client)
    assert response.status_code == 200
    assert response.json()["prediction"]["digit"] in range(10)
    # Only Django's handler itself: the request signals and closing the response.
    assert not [name for name in hops if "Middleware" in name], hops
    assert len(hops) <= 2, hops

    # The same list of middleware loaded as Django loads it.
    client = AsyncClient()
    hops.clear()
    assert (await stages_request(client)).status_code == 200
    # Django's own classes: a hop per hook (11 on this stack), and one more
    # around the synchronous WhiteNoise.
    assert len([name for name in hops if "Middleware" in name]) >= 10, hops


async def test_headers_and_the_csrf_check_are_kept(active_model):
    client = site_client(enforce_csrf_checks=True)
    page = await client.get("/learn/")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    assert "Cookie" in page["Vary"]  # the header read request.user, from the session

    # A form without its token is refused, with the token it goes through.
    login = reverse("admin:login")
    refused = await client.post(login, {"username": "x", "password": "y"})
    assert refused.status_code == 403
    form = await client.get(login)
    token = form.cookies[settings.CSRF_COOKIE_NAME].value
    answered = await client.post(login, {"username": "x", "password": "y",
                                         "csrfmiddlewaretoken": token})
    assert answered.status_code == 200
    assert b"Please enter the correct username and password" in answered.content
    # The JSON endpoints are exempt: a drawing needs no token.
    assert (await stages_request(client)).status_code == 200


async def test_a_changed_session_is_saved_and_an_unchanged_one_is_not_written(active_model):
    client = site_client()
    assert await Session.objects.acount() == 0
    first = await client.get(reverse("teaching:how_it_learned"))
    assert first.status_code == 200
    key = first.cookies[settings.SESSION_COOKIE_NAME].value
    session = await Session.objects.aget(session_key=key)
    # The next request with the cookie reads the session without changing it.
    expiry = session.expire_date
    again = await stages_request(client)
    assert again.status_code == 200
    assert settings.SESSION_COOKIE_NAME not in again.cookies
    assert (await Session.objects.aget(session_key=key)).expire_date == expiry
    assert await Session.objects.acount() == 1


async def test_the_admins_messages_are_stored_and_shown(django_user_model):
    drawing = await sync_to_async(make_drawing)(label=4)
    user = await sync_to_async(staff_user)(django_user_model, "rita", "Reviewers")
    client = site_client()
    await client.aforce_login(user)
    done = await client.post(reverse(CHANGELIST), {
        "action": "approve", "_selected_action": [drawing.pk], "index": 0})
    assert done.status_code == 302
    shown = await client.get(done["Location"])
    assert b"Approved 1 drawing." in shown.content
    # Read once: gone from the next page.
    assert b"Approved 1 drawing." not in (await client.get(done["Location"])).content

    # Signed in, a form without its token is refused (the refusal reads no session).
    strict = site_client(enforce_csrf_checks=True)
    await strict.aforce_login(user)
    refused = await strict.post(reverse(CHANGELIST), {
        "action": "reject", "_selected_action": [drawing.pk], "index": 0})
    assert refused.status_code == 403
    assert (await Drawing.objects.aget(pk=drawing.pk)).status == "approved"


async def test_static_files_are_served_without_the_view_stack():
    path = "js/throttle.js"
    response = await site_client().get(f"/static/{path}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = b"".join([chunk async for chunk in response.streaming_content]
                    if response.is_async else response.streaming_content)
    assert body == (Path(settings.BASE_DIR) / "static" / path).read_bytes()
    assert "Set-Cookie" not in response.headers
