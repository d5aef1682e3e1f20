"""What the HTTP endpoints that take a JSON drawing share: the error answer,
the declared body size, and refusing a body not declared as JSON.

The recognition API (recognizer/views.py) and the teaching pages' two
endpoints (recognizer/teaching/views.py) answer the same way.
"""

from django.http import JsonResponse

from recognizer.payloads import PayloadError


def error(message, status=400):
    return JsonResponse({"error": message}, status=status)


def content_length(request):
    """The body size the client declared, 0 when absent or not a number."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class UnsupportedMediaType(PayloadError):
    """A body that is neither JSON declared as such nor a multipart image upload."""


def require_json(request, what):
    """Refuse a body not declared as application/json, with a 415.

    A cross-site page can make its visitors' browsers POST a "simple" request
    (text/plain, a form, or a Blob without a type, which Django sees as no
    content type) without asking first; declaring application/json needs a
    CORS preflight, which this site does not answer, so only pages of this
    site (and non-browser clients) can send drawings.
    """
    if request.content_type != "application/json":
        declared = request.content_type or "none"
        raise UnsupportedMediaType(
            f"send {what} as JSON with Content-Type: application/json (got {declared})"
        )
