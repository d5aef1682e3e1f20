"""The recognition API: POST /api/recognize (see docs/api.md)."""

import asyncio

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from recognizer import json_input
from recognizer.clients import LimitExceeded, api_limits, client_address, request_cost
from recognizer.inference import ModelUnavailable, get_service
from recognizer.json_endpoints import UnsupportedMediaType, content_length, error, require_json
from recognizer.payloads import PayloadError, parse_drawing
from recognizer.preprocessing import DrawingError, image_to_input, strokes_to_input


def _input_from_request(request):
    """Decode the request into a 28x28 input; raise PayloadError/DrawingError."""
    content_type = request.content_type or ""
    if content_type.startswith("multipart/form-data"):
        upload = request.FILES.get("image")
        if upload is None:
            raise PayloadError("a multipart request needs the image in the field 'image'")
        return image_to_input(upload.read())
    require_json(request, "the drawing (or an image as multipart/form-data)")
    try:
        data = json_input.loads(request.body)
    except json_input.JSONInputError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from exc
    drawing = parse_drawing(data)
    return strokes_to_input(drawing.strokes, drawing.width, drawing.height)


@csrf_exempt
async def recognize(request):
    if request.method != "POST":
        response = error("use POST", status=405)
        response["Allow"] = "POST"
        return response
    client = client_address(request)
    limits = api_limits()
    try:
        # The declared length, or for a chunked upload the body Django has read.
        size = content_length(request) or len(request.body)
        limits.acquire(client, request_cost(size))
    except LimitExceeded as exc:
        response = error(str(exc), status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    try:
        return await _recognize(request, client)
    finally:
        # Also when the client went away: Django cancels this task on
        # http.disconnect, and the cancellation reaches the awaits below, so
        # queued work is dropped and the slot is free at once.
        limits.release(client)


async def _recognize(request, client):
    limit = settings.RECOGNIZER_MAX_BODY_BYTES
    if content_length(request) > limit or len(request.body) > limit:
        return error(f"the body is larger than {limit} bytes", status=413)
    try:
        # Decoding and rendering are CPU work: keep them off the event loop.
        # A cancelled task's call that has not started yet never runs.
        image = await asyncio.to_thread(_input_from_request, request)
    except UnsupportedMediaType as exc:
        return error(str(exc), status=415)
    except (PayloadError, DrawingError) as exc:
        return error(str(exc))
    try:
        prediction = await get_service().apredict(image, client=("api", client))
    except ModelUnavailable as exc:
        return error(f"no model available: {exc}", status=503)
    return JsonResponse(prediction.as_dict())
