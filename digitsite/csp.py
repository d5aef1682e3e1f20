"""The Content-Security-Policy header on every response.

Every script, style sheet, font and image the site uses is its own file under
/static/, so the policy can allow only the site itself: an injected <script>,
inline event handler, style attribute or third-party resource does not run.
Two exceptions, both of the site's own making: images may be data: URLs (the
teaching pages and the game show the network's 28x28 input as generated PNGs),
and nothing may frame the site. Values that used to be style="..." attributes
(bar widths, table colours) are data-* attributes that static/js applies.
"""

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin

from digitsite.middleware import OnTheLoop


class ContentSecurityPolicyMiddleware(OnTheLoop, MiddlewareMixin):
    # OnTheLoop: setting a header needs no thread (see digitsite/middleware.py).

    def process_response(self, request, response):
        policy = settings.CONTENT_SECURITY_POLICY
        if policy:
            response.headers.setdefault("Content-Security-Policy", policy)
        return response
