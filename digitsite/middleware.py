"""The site's middleware stack, with its hooks run on the event loop.

Under ASGI, Django runs each hook of a MiddlewareMixin middleware through
sync_to_async: a hop to the request's own thread and back. The stack had
twelve such hooks, and WhiteNoise, which is synchronous only, made Django
convert the rest of the chain to synchronous and back around it. Measured
in one process on 2 slow cores, a small teaching request (the dense layer
of a drawing, POST /learn/api/stages) cost 7.3 ms of CPU through the stack
and 2.1 ms without any middleware: 5 ms a request went on thread hops, more
than the preprocessing and the network together.

The hooks below neither block nor query the database, so they run on the
loop itself. Two can touch the database, and hop only when they do:
- the session is saved (a write) only when it was changed;
- messages are read from and written to the session only when a page used
  or added them (the admin's).
Each class is Django's own, with the same hooks; only where they run changes.
MIDDLEWARE in settings.py lists Django's own paths, which its deployment
checks look for by name; the site's ASGI handler loads the subclasses here in
their place (ON_THE_LOOP).
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthentication
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessages
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSession
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.middleware.clickjacking import XFrameOptionsMiddleware as DjangoXFrameOptions
from django.middleware.common import CommonMiddleware as DjangoCommon
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrf
from django.middleware.security import SecurityMiddleware as DjangoSecurity
from whitenoise.middleware import WhiteNoiseMiddleware


class OnTheLoop:
    """For a MiddlewareMixin whose process_request neither blocks nor queries:
    both hooks run on the event loop, except process_response when
    `touches_database(request)` says it will query; that one goes to the
    request's thread then, and only then."""

    def touches_database(self, request):
        return False

    async def __acall__(self, request):
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if not hasattr(self, "process_response"):
            return response
        if self.touches_database(request):
            return await sync_to_async(self.process_response, thread_sensitive=True)(
                request, response)
        return self.process_response(request, response)


class SecurityMiddleware(OnTheLoop, DjangoSecurity):
    pass


class CommonMiddleware(OnTheLoop, DjangoCommon):
    pass


class AuthenticationMiddleware(OnTheLoop, DjangoAuthentication):
    # process_request sets request.user lazily: the query waits for its first use.
    pass


class XFrameOptionsMiddleware(OnTheLoop, DjangoXFrameOptions):
    pass


class CsrfViewMiddleware(OnTheLoop, DjangoCsrf):
    # The token lives in a cookie (CSRF_USE_SESSIONS is off): nothing to query.
    # A coroutine, process_view is awaited as it is, without a hop.
    async def process_view(self, request, callback, callback_args, callback_kwargs):
        return super().process_view(request, callback, callback_args, callback_kwargs)


class SessionMiddleware(OnTheLoop, DjangoSession):
    """The session store is lazy (no query until it is read); the response
    hook writes only a changed session."""

    def touches_database(self, request):
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class MessageMiddleware(OnTheLoop, DjangoMessages):
    """Messages are loaded from the session (a query) only by a page that
    shows or adds them."""

    def touches_database(self, request):
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, able to sit in an async stack: a static file is served
    from a thread (it opens the file), any other request goes straight on."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, **kwargs):
        super().__init__(get_response, **kwargs)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(
                request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)


# Each of Django's classes (as MIDDLEWARE names it) and the subclass loaded in its place.
ON_THE_LOOP = {
    "django.middleware.security.SecurityMiddleware": "digitsite.middleware.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware": "digitsite.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware":
        "digitsite.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware": "digitsite.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware": "digitsite.middleware.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware":
        "digitsite.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware":
        "digitsite.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware":
        "digitsite.middleware.XFrameOptionsMiddleware",
}


def on_the_loop():
    """ON_THE_LOOP for these settings. With CSRF_USE_SESSIONS the CSRF token
    lives in the session, which its hooks would read (a query) on the loop:
    Django's own class then stays, with its hops."""
    if settings.CSRF_USE_SESSIONS:
        return {path: sub for path, sub in ON_THE_LOOP.items()
                if path != "django.middleware.csrf.CsrfViewMiddleware"}
    return ON_THE_LOOP


class LoadsOnTheLoop:
    """For a Django request handler: MIDDLEWARE is loaded with each class of
    ON_THE_LOOP replaced by its subclass.

    Django's load_middleware reads settings.MIDDLEWARE and nothing else, so
    the list is swapped for the time it runs (once, when the handler is
    built), rather than copying Django's fifty lines that build the chain.
    """

    def load_middleware(self, is_async=False):
        listed = settings.MIDDLEWARE
        replaced = on_the_loop()
        settings.MIDDLEWARE = [replaced.get(path, path) for path in listed]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = listed


class ASGIHandler(LoadsOnTheLoop, DjangoASGIHandler):
    """Django's ASGI handler, its middleware on the loop (digitsite/asgi.py serves it)."""
