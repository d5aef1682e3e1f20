"""ASGI entry point: HTTP through Django, WebSockets under /ws/ through Channels.

Around both: the proxy headers are believed only from TRUSTED_PROXIES
(proxies.py). HTTP bodies over HTTP_MAX_BODY_BYTES get a 413 before Django
reads them (body_limit.py). WebSockets are accepted only from the site's own
pages, port included (origins.py). Run it with `python -m digitsite.serve`
(serve.py), which also bounds what Daphne itself buffers.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
# Django must be set up before anything imports models (as get_asgi_application does).
django.setup(set_prefix=False)

from digitsite.middleware import ASGIHandler  # noqa: E402

# Django's handler, its middleware run on the event loop (middleware.py).
django_asgi_app = ASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from digitsite.body_limit import BodyLimitMiddleware  # noqa: E402
from digitsite.game import upkeep  # noqa: E402
from digitsite.game.routing import websocket_urlpatterns  # noqa: E402
from digitsite.origins import same_origin_only  # noqa: E402
from digitsite.proxies import TrustedProxyMiddleware  # noqa: E402
from digitsite.websocket_session import websocket_auth_stack  # noqa: E402
from recognizer.clients import ApiLimitsGuard  # noqa: E402

# Outermost, the process's own upkeep (lifespan on servers that speak it);
# then the proxy headers, believed only from TRUSTED_PROXIES.
application = upkeep.ProcessUpkeep(TrustedProxyMiddleware(ProtocolTypeRouter(
    {
        "http": ApiLimitsGuard(BodyLimitMiddleware(django_asgi_app)),
        "websocket": same_origin_only(
            websocket_auth_stack(URLRouter(websocket_urlpatterns))
        ),
    }
)))
# Closing overdue rounds on start-up and every few seconds, and a graceful
# stop on SIGTERM (see digitsite/game/upkeep.py for why it hooks in here).
upkeep.hook_into_daphne()

# The renderer's compiled loop, compiled (or loaded from numba's cache) now
# rather than on the first drawing, which would wait about a second.
from recognizer import pen_kernel  # noqa: E402

pen_kernel.warm_up()

# Last, once everything the process keeps is imported (digitsite/heap.py says why).
from digitsite.heap import (  # noqa: E402
    collect_young_objects_less_often,
    freeze_start_up_objects,
)

freeze_start_up_objects()
collect_young_objects_less_often()
