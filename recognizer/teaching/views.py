"""The teaching pages under /learn/ and the two JSON endpoints they draw from.

POST /learn/api/stages    a drawing -> every preprocessing step, every layer's
                          activations (quantised, see encoding.py) and the
                          probabilities
POST /learn/api/attention a drawing and optionally a digit -> occlusion and
                          gradient saliency maps for that digit
POST /learn/api/neuron    a drawing and a place (layer, map, y, x) -> the
                          arithmetic that makes that one value (neuron.py)
POST /learn/api/snapshots a drawing -> every training snapshot's ten
                          probabilities, and the previous and active
                          versions' (snapshots.py)

Each is limited per browser session under a ceiling per address
(recognizer/clients.py, SessionLimits): a 429 with Retry-After past either.

All accept the drawing the recognition API takes ({"width", "height",
"strokes"}) or, instead, a ready 28x28 input: {"input": [[...28 numbers in
0..1...], ...28 rows]}. Bad input gets a 4xx JSON error naming the problem.
"""

import asyncio
import logging
import math
import threading
import time
import weakref

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError

from recognizer import json_input, versions
from recognizer.clients import limited
from recognizer.images import png_data_url, sprite
from recognizer.inference import ModelUnavailable
from recognizer.json_endpoints import UnsupportedMediaType, content_length, error, require_json
from recognizer.metrics_display import percent
from recognizer.payloads import PayloadError, parse_drawing
from recognizer.preprocessing import DrawingError
from recognizer.teaching import (
    augmentation,
    explain,
    gallery,
    lesson_numbers,
    lesson_plans,
    modelcard,
    neuron,
    share,
    snapshots,
    top_digits,
    unavailable,
)
from recognizer.teaching.card_state import CardState, RecentCardState
from recognizer.teaching.memo import MemoBusy

logger = logging.getLogger(__name__)

LESSONS = [
    ("teaching:how_it_works", "How it works",
     "Draw a digit and follow it through every step of the network."),
    ("teaching:attention", "What the model looks at",
     "Cover parts of your drawing and see which parts the model needs."),
    ("teaching:model", "The model",
     "The network's layers, how it was trained and how often it is right."),
    ("teaching:data", "The data",
     "Handwritten digits it never trained on, players' drawings, and the ones it gets wrong."),
    ("teaching:how_it_learned", "How it learned",
     "Scrub through the network's training and watch your drawing's answer form."),
]


# The lessons with a drawing pad: links to them carry the drawing on show
# (static/js/teaching/share.js), which they open from ?d= or ?mnist=.
DRAWING_LESSONS = ("teaching:how_it_works", "teaching:attention", "teaching:how_it_learned")


def lesson_context(url_name):
    """Where a page sits on the lesson path: its number, the previous and next page."""
    names = [name for name, _, _ in LESSONS]
    # The path's start page (-1) leads to the first lesson.
    index = names.index(url_name) if url_name in names else -1
    return {
        "lessons": [{"url_name": n, "title": t, "summary": s, "number": i + 1,
                     "takes_drawing": n in DRAWING_LESSONS}
                    for i, (n, t, s) in enumerate(LESSONS)],
        "drawing_lessons": DRAWING_LESSONS,
        "lesson_number": index + 1,
        "current_lesson": url_name,
        "previous_lesson": LESSONS[index - 1] if index > 0 else None,
        "next_lesson": LESSONS[index + 1] if index < len(LESSONS) - 1 else None,
        # The "For teachers" box under the title (None on pages that are not lessons).
        "plan": lesson_plans.BY_URL_NAME.get(url_name),
        "total_minutes": lesson_plans.TOTAL_MINUTES,
    }


# -- pages ---------------------------------------------------------------------
#
# Under ASGI every synchronous view shares one thread, so the pages that need
# the model (predictions on MNIST, on the approved drawings) are async: the
# database is read through sync_to_async and the number crunching runs in a
# worker thread, and a slow first visit holds up nobody else's page.


async def _render(request, template, context):
    # Templates read request.user (the header's admin link): a database query.
    return await sync_to_async(render)(request, template, context)


def index(request):
    return render(request, "teaching/index.html", lesson_context("teaching:index"))


def worksheet(request):
    """Every lesson's objectives, time, activities and questions, with space for the
    answers, laid out to be printed (static/css/worksheet.css)."""
    context = lesson_context("teaching:worksheet")
    context["sheets"] = [
        {"number": number, "title": title, "plan": lesson_plans.BY_URL_NAME[name],
         # Printed under the title, so a sheet on paper still says where the lesson is.
         "address": request.build_absolute_uri(reverse(name)),
         "questions": [{"text": q.text, "lines": range(q.lines)}
                       for q in lesson_plans.BY_URL_NAME[name].questions]}
        for number, (name, title, _) in enumerate(LESSONS, start=1)
    ]
    return render(request, "teaching/worksheet.html", context)


def _mnist_sample(request):
    """The MNIST test digit named by ?mnist=<index>, for opening a mistake in a lesson."""
    if request.GET.get("mnist") in (None, ""):
        return None
    try:
        images, labels = gallery.mnist_test()
    except gallery.DataUnavailable:
        raise Http404("the MNIST examples are not installed on this server") from None
    index = _int_param(request, "mnist", 0, 0, len(images) - 1)
    return {
        "index": index,
        "label": int(labels[index]),
        "input": (images[index] / 255.0).round(4).tolist(),
    }


def _shared_drawing(request):
    """The drawing shared in the link (?d=<code>, see share.py), checked like any drawing."""
    code = request.GET.get("d")
    if code in (None, ""):
        return None
    if request.GET.get("mnist") not in (None, ""):
        raise Http404("a link opens either a drawing (“d”) or an MNIST digit (“mnist”), "
                      "not both")
    try:
        return parse_drawing(share.decode(code)).as_json()
    except (share.ShareError, PayloadError) as exc:
        raise Http404(f"“d” is not a drawing this page can open: {exc}") from None


def _shown(request):
    """What a drawing lesson opens with: (the MNIST sample, the shared drawing)."""
    return _mnist_sample(request), _shared_drawing(request)


# What a lesson page keeps in the browser session it starts.
SESSION_LESSONS = "lessons"


def _start_session(request):
    """Give the visitor a browser session (sync: it reads the session store).

    The lessons' requests are limited per browser session under a ceiling
    per address (recognizer/clients.py, SessionLimits): a class behind one
    school address then has an allowance each, and a visitor without the
    cookie shares the address's one allowance for requests without one.
    """
    if not request.session.get(SESSION_LESSONS):
        request.session[SESSION_LESSONS] = True


async def how_it_works(request):
    await sync_to_async(_start_session)(request)
    context = lesson_context("teaching:how_it_works")
    context["mnist_sample"], context["shared_drawing"] = await asyncio.to_thread(_shown, request)
    context["numbers"] = await asyncio.to_thread(lesson_numbers.how_it_works)
    context["filters"] = await asyncio.to_thread(neuron.served_filters)
    # A lookup once computed; the first view of a new version starts the
    # computation in the background and says so (top_digits.py).
    context["top_digits"] = await asyncio.to_thread(top_digits.served_state)
    return await _render(request, "teaching/how_it_works.html", context)


def top_digits_sprite(request, key, layer):
    """One layer's sprite of top digits (top_digits.py): rows of maps, SHOWN digits each.

    Its address names the weights and the digits chosen, so its content never
    changes; browsers keep it an hour, not longer, because it may show
    players' drawings that a reviewer can still reject.
    """
    result = top_digits.ready_for_key(key)
    if result is None or layer not in top_digits.LAYERS:
        raise Http404("no such top digits")
    response = HttpResponse(result.png(layer), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response


async def attention_page(request):
    await sync_to_async(_start_session)(request)
    context = lesson_context("teaching:attention")
    context["digits"] = range(10)
    context["mnist_sample"], context["shared_drawing"] = await asyncio.to_thread(_shown, request)
    return await _render(request, "teaching/attention.html", context)


# What a failing cache raises (Redis down, its socket refused or timed out).
CACHE_ERRORS = (RedisError, OSError)
# Cached per model card state (modelcard.card_key): a class opening the page
# at once rendered the same 70 kB card for each learner, 11 ms of CPU a view
# in one process (the charts' SVG and the template), most of what a view cost.
MODEL_CARD_CACHE_SECONDS = 3600


# The model card's state and HTML, kept in this process for
# MODEL_CARD_STATE_SECONDS (teaching/card_state.py).
card_state = RecentCardState()


def _model_state():
    """The card's CardState, its html from the cache or None: one trip to the
    database thread, and none while the state in this process is recent."""
    seconds = settings.MODEL_CARD_STATE_SECONDS
    # Views queued behind the one that read the state find it here: the
    # thread runs them one after the other.
    state = card_state.recent(seconds)
    if state is not None:
        return state
    read_at = card_state.clock()
    version = versions.active_version()
    stamp = gallery.approved_stamp() if version is not None else None
    history = modelcard.version_history()
    key = modelcard.card_key(version, stamp, history)
    try:
        cached = cache.get(key)
    except CACHE_ERRORS:
        # The cache (Redis) down: the card is rendered, the page still served.
        logger.warning("the model card's cache failed; rendering the card", exc_info=True)
        cached = None
    state = CardState(version, stamp, history, key, cached)
    card_state.remember(state, read_at)
    return state


# While the model's accuracy on the approved drawings is being measured, by
# the measurement's Future: when a view first waited for it, and the card
# drawn without it (with the card's key: a card of another state is not
# reused), as a task every view of the moment awaits. A class reloading the
# page gets that one card, not one drawn for each view (about 2 ms of CPU
# each, its context and its template, taken from the measurement itself).
_measured_since = weakref.WeakKeyDictionary()
_card_while_measuring = weakref.WeakKeyDictionary()
# A measurement that failed after its views had stopped waiting, by
# (version, sha256, stamp): the next view shows why, once, instead of
# reloading while the next measurement runs.
_failed_measurements = {}
_failures_lock = threading.Lock()


async def model_page(request):
    context = lesson_context("teaching:model")
    state = card_state.recent(settings.MODEL_CARD_STATE_SECONDS)
    if state is None or state.html is None:
        # One hop to the thread that serves every synchronous call of the
        # process, not one per query: with a class opening the page at once,
        # each hop waits behind everyone else's.
        state = await sync_to_async(_model_state)()
    card_html, preparing = state.html, False
    if card_html is None:
        card_html, preparing = await _model_card_html(state.version, state.stamp,
                                                      state.history, state.key)
    context["card_html"] = card_html
    if preparing:
        context.update(collected_preparing=True, refresh_seconds=PREPARING_REFRESH_SECONDS)
    return await _render(request, "teaching/model.html", context)


async def _model_card_html(version, stamp, history, key):
    """(the card rendered, whether its accuracy on the approved drawings is
    still being measured); cached unless they could not be read or are
    still being measured."""
    card = {"version": version, "history": history}
    collected_error = ""
    preparing = False
    if version is not None:
        # Cached per model version and state of the approved drawings (see
        # gallery.approved_stamp): a view costs a few index lookups, however
        # many drawings there are.
        collected = None
        measured_key = (version.pk, version.sha256, stamp)
        with _failures_lock:
            failure = _failed_measurements.pop(measured_key, None)
        if failure is not None:
            collected_error = unavailable.explained(unavailable.COLLECTED, failure, "model")
        else:
            collected, preparing, collected_error, future = await _measured(
                version, stamp, measured_key)
            if preparing:
                drawn = _card_while_measuring.get(future)
                if drawn is None or drawn[0] != key:
                    without = _card_context(card, version, None, "", history, preparing=True)
                    drawn = (key, asyncio.ensure_future(_render_card(without)))
                    _card_while_measuring[future] = drawn
                return await asyncio.shield(drawn[1]), True
        card = _card_context(card, version, collected, collected_error, history)
    html = await _render_card(card)
    if not collected_error:
        card_state.remember_html(key, html)
        try:
            await sync_to_async(cache.set)(key, html, MODEL_CARD_CACHE_SECONDS)
        except CACHE_ERRORS:
            logger.warning("the model card's cache failed; the card is not kept", exc_info=True)
    return html, False


async def _measured(version, stamp, measured_key):
    """(accuracy or None, still being measured, error text, the measurement's Future).

    After an approval only the new drawings are run (milliseconds); a
    process's first view of a version runs them all (9.4 s for 20,000 on two
    cores, bench/bench_teaching.py), a wait with nothing on screen. Views
    wait until MODEL_CARD_WAIT_SECONDS after the first view that waited for
    this measurement, then say it is being measured and reload themselves
    while the work goes on, once.
    """
    future = gallery.collected_accuracy(version, stamp)
    if future not in _measured_since:
        _measured_since[future] = time.monotonic()
        # In the measuring thread, whichever view's loop is still running: a
        # failure after the views stopped waiting is kept for the next one
        # (and logged, unless it is the data being unreadable, which the
        # page explains).
        future.add_done_callback(lambda done: _remember_failure(measured_key, done))
    wait = max(0.0, settings.MODEL_CARD_WAIT_SECONDS
               - (time.monotonic() - _measured_since[future]))
    measured = asyncio.wrap_future(future)
    # Not cancelled when the wait ends: the measurement goes on.
    measured.add_done_callback(lambda f: f.cancelled() or f.exception())
    done, _ = await asyncio.wait({measured}, timeout=wait)
    if not done:
        return None, True, "", future
    try:
        return measured.result(), False, "", future
    except gallery.DataUnavailable as exc:
        # Explained by this view: not again by the next.
        with _failures_lock:
            _failed_measurements.pop(measured_key, None)
        return None, False, unavailable.explained(unavailable.COLLECTED, exc, "model"), future


def _remember_failure(measured_key, measured):
    if measured.cancelled() or measured.exception() is None:
        return
    failure = measured.exception()
    if isinstance(failure, gallery.DataUnavailable):
        with _failures_lock:
            _failed_measurements[measured_key] = failure
            while len(_failed_measurements) > 8:
                _failed_measurements.pop(next(iter(_failed_measurements)))
    else:
        logger.error("measuring the model on the approved drawings failed",
                     exc_info=(type(failure), failure, failure.__traceback__))


def _card_context(card, version, collected, collected_error, history, *, preparing=False):
    # Charts and tables from numbers already read: no database.
    card.update(modelcard.model_card(version, collected, collected_error, history))
    card["augmentation"] = augmentation.describe(card["training"].get("augment"))
    card["collected_preparing"] = preparing
    return card


async def _render_card(card):
    # The request's own thread: the template may follow version.parent (a query).
    return await sync_to_async(render_to_string)("teaching/_model_card.html", card)


def _learning_state():
    """The two versions of "version N vs N+1" and the numbers of the last fine-tune."""
    previous, active = snapshots.version_pair()
    return {
        "active_version": active,
        "previous_version": previous,
        "before_after": snapshots.before_after_rows(active),
        "heldout_players": ((active.training or {}).get("data") or {}).get("players_heldout")
        if active is not None else None,
        "version_count": snapshots.version_count(),
    }


async def how_it_learned(request):
    await sync_to_async(_start_session)(request)
    context = lesson_context("teaching:how_it_learned")
    context["mnist_sample"], context["shared_drawing"] = await asyncio.to_thread(_shown, request)
    try:
        context["scrubber"] = await asyncio.to_thread(snapshots.scrubber)
    except snapshots.SnapshotUnavailable as exc:
        context["snapshots_error"] = unavailable.explained(str(exc), exc, "how_it_learned")
    context.update(await sync_to_async(_learning_state)())
    active = context["active_version"]
    if active is not None:
        # The shipped model's own curves, drawn as the model card draws them.
        context["curves"] = modelcard.curves_charts((active.metrics or {}).get("curves"))
        context["training"] = active.training or {}
        context["augmentation"] = augmentation.describe(context["training"].get("augment"))
        total = (context["training"].get("data") or {}).get("train_total")
        context["training_total_text"] = f"{total:,}" if isinstance(total, int) else total
    return await _render(request, "teaching/how_it_learned.html", context)


def _int_param(request, name, default, low, high):
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Http404(f"“{name}” must be a whole number, not “{raw[:20]}”") from None
    if not low <= value <= high:
        raise Http404(f"“{name}” must be between {low} and {high}, not {raw[:20]}")
    return value


MNIST_PER_PAGE = 100
SPRITE_COLUMNS = 20


def _mnist_context(digit, page):
    """The MNIST part of the data page; blocking (file reading, PNG encoding)."""
    try:
        images, indices, total = gallery.mnist_digits(digit, page, MNIST_PER_PAGE)
    except gallery.DataUnavailable as exc:
        return {"mnist_error": unavailable.explained(unavailable.MNIST, exc, "data")}
    pages = max(1, math.ceil(total / MNIST_PER_PAGE))
    if page > pages:
        raise Http404(f"page {page} is past the last page of these digits, {pages}")
    return {
        "mnist_total": total,
        "mnist_limited": gallery.mnist_limit() is not None,
        "mnist_count": len(images),
        "mnist_first": int(indices[0]) if len(indices) else 0,
        "mnist_sprite": png_data_url(sprite(images, SPRITE_COLUMNS), scale=2, on_white=True)
        if len(images) else "",
        "pages": pages,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < pages else None,
    }


# While the model's answers on the test digits are being computed (10-20 s
# the first time after a new version), the data page reloads itself this
# often: a meta refresh, which works without JavaScript.
PREPARING_REFRESH_SECONDS = 3


def _mistakes_context(version, digit):
    """The model's mistakes for the data page; blocking (the first time: seconds)."""
    try:
        if not gallery.predictions_ready(version):
            return {"mistakes_preparing": True, "refresh_seconds": PREPARING_REFRESH_SECONDS}
        shown, per_class, tested = gallery.mistakes(version, digit)
    except gallery.DataUnavailable as exc:
        return {"mistakes_error": unavailable.explained(unavailable.ANSWERS, exc, "data")}
    return {
        "mistakes": [
            {"index": m.index, "label": m.label, "guess": m.guess,
             "confidence": m.confidence, "confidence_text": percent(m.confidence, 0),
             "image": png_data_url(m.pixels, scale=2, on_white=True)}
            for m in shown
        ],
        "mistakes_total": per_class[digit],
        "mistakes_all": sum(per_class),
        "mistakes_tested": tested,
        "mistakes_per_class": list(enumerate(per_class)),
    }


async def data_page(request):
    context = lesson_context("teaching:data")
    digit = _int_param(request, "digit", 0, 0, 9)
    page = _int_param(request, "page", 1, 1, 1000)
    context.update({"digit": digit, "digits": range(10), "page": page})

    drawings, drawings_total = await sync_to_async(gallery.approved_drawings)(digit)
    context.update({
        "drawings_total": drawings_total,
        "drawings_count": len(drawings),
        "drawings_sprite": await asyncio.to_thread(
            lambda: png_data_url(sprite(drawings, SPRITE_COLUMNS), scale=2, on_white=True)
        ) if len(drawings) else "",
    })

    context.update(await asyncio.to_thread(_mnist_context, digit, page))
    if "mnist_error" in context:
        return await _render(request, "teaching/data.html", context)
    version = await sync_to_async(versions.active_version)()
    if version is None:
        context["mistakes_error"] = "No model version is active, so there are no guesses to show."
    else:
        context["version"] = version
        context.update(await asyncio.to_thread(_mistakes_context, version, digit))
    return await _render(request, "teaching/data.html", context)


# -- the JSON endpoints ------------------------------------------------------------


def _input_array(value):
    if not isinstance(value, list) or len(value) != 28:
        raise PayloadError("'input' must be 28 rows of 28 numbers between 0 and 1")
    rows = []
    for r, row in enumerate(value):
        if not isinstance(row, list) or len(row) != 28:
            raise PayloadError(f"row {r} of 'input' must be a list of 28 numbers")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise PayloadError(f"row {r} of 'input' holds something that is not a number")
            if not 0 <= v <= 1:
                raise PayloadError(f"row {r} of 'input' holds {v}: values must be in 0..1")
        rows.append(row)
    return np.asarray(rows, dtype=np.float32)


def _stage_names(value):
    """The stages a "How it works" request asks for: all of them when not said."""
    if value is None:
        return explain.STAGE_ORDER
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) and v in explain.STAGE_ORDER for v in value)):
        raise PayloadError("'stages' must be a non-empty list of stage names from "
                           + ", ".join(explain.STAGE_ORDER))
    return tuple(name for name in explain.STAGE_ORDER if name in value)


def _json_object(request, fields=""):
    """The request's body, a JSON object (sync); PayloadError or UnsupportedMediaType.

    `fields` names what else the object must hold, for the error's sake.
    """
    require_json(request, "the drawing")
    try:
        data = json_input.loads(request.body)
    except json_input.JSONInputError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object: a drawing or {'input': ...}"
                           + fields)
    return data


def _parse_body(request):
    """(parsed drawing or None, 28x28 input or None, target digit or None, stage names)."""
    data = _json_object(request)
    target = data.get("target")
    if target is not None and (isinstance(target, bool) or target not in range(10)):
        raise PayloadError("'target' must be a digit from 0 to 9")
    names = _stage_names(data.get("stages"))
    if "input" in data:
        return None, _input_array(data["input"]), target, names
    return parse_drawing(data), None, target, names


def _parse_neuron(request):
    """(parsed drawing or None, 28x28 input or None, layer, map, y, x) of a neuron request."""
    data = _json_object(request, ", with 'layer', 'map', 'y' and 'x'")
    where = (data.get("layer"), data.get("map"), data.get("y", 0), data.get("x", 0))
    try:
        neuron.check_position(*where)
    except neuron.NeuronError as exc:
        raise PayloadError(str(exc)) from None
    if "input" in data:
        return (None, _input_array(data["input"]), *where)
    return (parse_drawing(data), None, *where)


async def _read(request, parse=_parse_body):
    if request.method != "POST":
        response = error("use POST", status=405)
        response["Allow"] = "POST"
        return None, response
    limit = settings.RECOGNIZER_MAX_BODY_BYTES
    # Checked before touching request.body, which Django refuses (with its own
    # HTML error) above DATA_UPLOAD_MAX_MEMORY_SIZE.
    if content_length(request) > limit or len(request.body) > limit:
        return None, error(f"the body is larger than {limit} bytes", status=413)
    try:
        return await asyncio.to_thread(parse, request), None
    except UnsupportedMediaType as exc:
        return None, error(str(exc), status=415)
    except PayloadError as exc:
        return None, error(str(exc))


async def _answer(request, explain_parsed, parse=_parse_body):
    """The JSON answer to a teaching API request: `explain_parsed` (a coroutine
    function) applied to what `parse` read, or the error on the way."""
    parsed, response = await _read(request, parse)
    if response is not None:
        return response
    try:
        payload = await explain_parsed(*parsed)
    except DrawingError as exc:
        return error(str(exc))
    except ModelUnavailable as exc:
        return error(f"no model available: {exc}", status=503)
    except MemoBusy as exc:
        response = JsonResponse({"error": str(exc), "retry_after": exc.retry_after}, status=503)
        response["Retry-After"] = str(exc.retry_after)
        return response
    return JsonResponse(payload)


async def _stages(drawing, image, _target, names):
    """The stages `names` of a drawing, or of a ready 28x28 input."""
    if drawing is not None:
        return await explain.explain_drawing(drawing, names)
    return await explain.explain_input(image, names=names)


async def _attention(drawing, image, target, _names):
    """What the model looks at for `target`, in a drawing or a ready 28x28 input."""
    if drawing is not None:
        image = await asyncio.to_thread(explain.drawing_input, drawing)
    return await explain.attention(image, target)


@csrf_exempt
@limited
async def api_stages(request):
    return await _answer(request, _stages)


@csrf_exempt
@limited
async def api_attention(request):
    return await _answer(request, _attention)


async def _neuron(drawing, image, layer, unit, y, x):
    """One value's arithmetic, in a drawing or a ready 28x28 input."""
    if drawing is not None:
        image = await asyncio.to_thread(explain.drawing_input, drawing)
    return await neuron.neuron(image, layer, unit, y, x)


@csrf_exempt
@limited
async def api_neuron(request):
    return await _answer(request, _neuron, parse=_parse_neuron)


async def _snapshots(drawing, image, _target, _names):
    """Every snapshot's probabilities, and both versions', for a drawing or a 28x28 input;
    cached per input (snapshots.cached_answer)."""
    if drawing is not None:
        image = await asyncio.to_thread(explain.drawing_input, drawing)
    previous, active = await sync_to_async(snapshots.version_pair)()
    return await snapshots.cached_answer(image, previous, active)


@csrf_exempt
@limited
async def api_snapshots(request):
    try:
        return await _answer(request, _snapshots)
    except snapshots.SnapshotUnavailable as exc:
        # A missing or damaged snapshot file: the message names it, not where it is.
        return error(unavailable.explained(str(exc), exc, "api_snapshots"), status=503)
