"""The teach page and its JSON API under /learn/teach/ (docs/teaching.md, "Teach the model").

GET  /learn/teach/                     the page; it starts the browser session
POST /learn/teach/api/jobs             examples -> 202 {job, state, position}
GET  /learn/teach/api/jobs/<id>        the job: state, position, step, loss, result
POST /learn/teach/api/jobs/<id>/cancel stop it (also sent when the page closes)
POST /learn/teach/api/predict          a drawing -> the served model's and the
                                       session's copy's probabilities
POST /learn/teach/api/class/<code>/jobs  the class's teacher: teach the class's copy

A job belongs to the browser session that asked for it: another session gets
404 for it, as for a job that does not exist. The JSON endpoints are
csrf_exempt like the other JSON APIs of the site: a body must be declared
application/json (a cross-site page cannot send that without a CORS
preflight, which this site does not answer), and the session cookie is
SameSite=Lax, so another site's page cannot act in a visitor's session.
Every API request counts against the browser session's limits under a
ceiling per address (recognizer/clients.py, SessionLimits), as the lessons'
requests do; a job request also against its address's jobs a minute.
A cancel has no body (a beacon sent while the page closes cannot declare
one); what another site could do with it is stop a training.

Training never runs here: the views check, queue (trainer/teach/worker.py)
and read records (trainer/teach/status.py); blocking work (rendering,
database, cache) runs on threads of their own, never on the event loop nor
on the pool the game renders its drawings on.
"""

import asyncio
import functools
import logging
import secrets

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from recognizer import json_input, taught, versions
from recognizer.clients import client_address, limited
from recognizer.inference import ModelUnavailable, get_service
from recognizer.json_endpoints import UnsupportedMediaType, content_length, error, require_json
from recognizer.models import TaughtCopy
from recognizer.payloads import PayloadError, parse_drawing
from recognizer.preprocessing import DrawingError, strokes_to_input
from recognizer.teaching.views import lesson_context
from recognizer.thread_names import thread_pool
from trainer.teach import class_drawings, jobs, limits, storing
from trainer.teach.copies import Work
from trainer.teach.status import DONE, EXPIRED, FINAL_STATES, public
from trainer.teach.worker import Job, QueueFull, get_worker

logger = logging.getLogger(__name__)

# The session's own id for the drawings it stores (Drawing.player_id).
SESSION_LEARNER = "teach_learner"
# What a refusal for an owner that already has a job tells it to wait.
BUSY_RETRY_SECONDS = 5

# The views' blocking work (checking and rendering examples, the job records,
# storing drawings) runs on threads of its own, not on the event loop's
# default pool, which the game renders every drawing on (digitsite/game/
# scoring.py): 30 learners pressing Teach at once queue 30 renders of 30
# drawings, and a guess waiting behind them took over a second.
REQUEST_THREADS = 2
_executor = None


def _threads():
    global _executor
    if _executor is None:
        _executor = thread_pool(REQUEST_THREADS, "teach-requests")
    return _executor


def _call(function, args):
    try:
        return function(*args)
    finally:
        # These threads outlive requests: their database connections are
        # dropped when broken or too old, as Django does after a request.
        close_old_connections()


async def in_thread(function, *args):
    """`function(*args)` on the teach views' threads."""
    return await asyncio.get_running_loop().run_in_executor(
        _threads(), functools.partial(_call, function, args))


# -- the page ------------------------------------------------------------------------


@never_cache
@require_GET
def page(request):
    """The teach page (`?digit=N` preselects a digit); starts the session jobs belong to."""
    if SESSION_LEARNER not in request.session:
        request.session[SESSION_LEARNER] = "teach-" + secrets.token_hex(8)
    # The learner draws for a while before pressing Teach: time for this
    # process's worker to warm up (trainer/teach/copies.py, warm_up).
    get_worker().start()
    digit = request.GET.get("digit", "")
    context = {
        **lesson_context("teach:page"),
        "current_lesson": "teach",
        "digit": int(digit) if digit in tuple("0123456789") else None,
        "from_game": request.GET.get("from") == "game",
        "jobs_url": reverse("teach:api_jobs"),
        "predict_url": reverse("teach:api_predict"),
        "min_examples": settings.TEACH_MIN_EXAMPLES,
        "max_examples": settings.TEACH_MAX_EXAMPLES,
        "min_steps": jobs.Bounds.from_settings(settings).min_steps,
        "max_steps": settings.TEACH_MAX_STEPS,
        "default_steps": settings.TEACH_DEFAULT_STEPS,
        "copy_hours": f"{settings.TEACH_COPY_HOURS:g}",
    }
    return render(request, "teach/teach.html", context)


# -- shared steps of the API ---------------------------------------------------------


def _owner(request):
    """The session's owner key, or None without a session."""
    key = request.session.session_key
    return taught.session_owner(key) if key else None


def _no_session():
    return error("no session: open the teach page first (jobs belong to the browser "
                 "session it starts)", status=403)


def _post_only(request):
    if request.method == "POST":
        return None
    response = error("use POST", status=405)
    response["Allow"] = "POST"
    return response


def _read_json(request, what):
    """The decoded body (sync: run it in a thread); PayloadError or UnsupportedMediaType."""
    require_json(request, what)
    try:
        return json_input.loads(request.body)
    except json_input.JSONInputError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from exc


def _too_large(request):
    limit = settings.RECOGNIZER_MAX_BODY_BYTES
    if content_length(request) > limit or len(request.body) > limit:
        return error(f"the body is larger than {limit} bytes", status=413)
    return None


def _refusal(message, status, retry_after):
    response = JsonResponse({"error": message, "retry_after": retry_after}, status=status)
    response["Retry-After"] = str(retry_after)
    return response


def _busy(current):
    return _refusal("a training of yours is already running or waiting "
                    f"(job {current['job']}): wait for it or cancel it", 429, BUSY_RETRY_SECONDS)


def _too_often(request):
    """A 429 when the request's address has asked for too many jobs this minute, else None."""
    rate = limits.job_rate()
    retry_after = rate.retry_after(client_address(request))
    if retry_after is None:
        return None
    return _refusal("too many teach requests from your address: at most "
                    f"{rate.per_minute} a minute; "
                    f"retry in {retry_after} s", 429, retry_after)


def _owner_busy(owner):
    """A refusal if the owner already has a job (sync), else None: before any parsing."""
    worker = get_worker()
    current = worker.store.owner_job(owner, worker.abandon_seconds)
    return _busy(current) if current is not None else None


def _queue(work, job_id, reader, owner):
    """Claim the owner's slot and queue the job (sync); its record, or a refusal."""
    worker = get_worker()
    claimed, current = worker.store.claim_owner(owner, job_id, worker.abandon_seconds)
    if not claimed:
        return None, _busy(current)
    try:
        record = worker.submit(Job(job_id, work, reader, owner, work.steps))
    except QueueFull as exc:
        worker.store.release_owner(owner, job_id)
        return None, _refusal(f"the trainer is full ({exc}); try again in a minute", 503, 60)
    return record, None


def _accepted(record):
    return JsonResponse({"job": record["job"], "state": record["state"],
                         "position": record["position"],
                         "poll_after": public(record)["poll_after"]}, status=202)


# -- jobs ---------------------------------------------------------------------------------


def _checked_request(request):
    """(JobRequest, inputs) of a jobs request (sync); raises PayloadError/TeachInputError."""
    data = _read_json(request, "the examples")
    parsed = jobs.parse_request(data, jobs.Bounds.from_settings(settings))
    return parsed, jobs.render_examples(parsed.drawings)


@csrf_exempt
@limited
async def api_jobs(request):
    refused = _post_only(request) or _too_large(request)
    if refused:
        return refused
    owner = _owner(request)
    if owner is None or not await sync_to_async(request.session.exists)(
            request.session.session_key):
        return _no_session()
    # Every request counts against its address, refused or not: a loop of
    # jobs and cancels is bounded by the rate, not by the owner's slot.
    refused = _too_often(request)
    if refused:
        return refused
    # A page that sends again while its job runs is told so before its
    # examples cost any rendering.
    refused = await in_thread(_owner_busy, owner)
    if refused:
        return refused
    try:
        parsed, inputs = await in_thread(_checked_request, request)
    except UnsupportedMediaType as exc:
        return error(str(exc), status=415)
    except (PayloadError, jobs.TeachInputError) as exc:
        return error(str(exc))
    base = await sync_to_async(versions.active_version)()
    if base is None:
        return error("no model is being served yet", status=503)
    job_id = secrets.token_urlsafe(12)
    work = _work(taught.SESSION, owner, base, inputs, parsed.labels, parsed.steps,
                 parsed.replay, job_id)
    record, refused = await in_thread(_queue, work, job_id, owner, owner)
    if refused:
        return refused
    if parsed.store:
        # Past the session's hourly number the job still runs; its drawings
        # are not kept (a session that teaches all hour keeps 300, 5 jobs of 60).
        allowed = await in_thread(limits.storable, owner, len(parsed.labels),
                                  settings.TEACH_STORED_PER_SESSION_PER_HOUR)
        if allowed:
            learner, user_id = await sync_to_async(_learner)(request)
            await in_thread(storing.store_examples, job_id, parsed, inputs, learner,
                            user_id, allowed)
    return _accepted(record)


def _work(owner_kind, owner, base, inputs, labels, steps, replay, job_id):
    seed = jobs.seed_of(job_id)
    train_index, held_index = jobs.split_examples(labels, seed)
    return Work(owner_kind=owner_kind, owner_key=owner, base_version_id=base.pk,
                inputs=inputs, labels=list(labels), train_index=train_index,
                held_index=held_index, steps=steps, replay=replay, seed=seed)


def _learner(request):
    """(the session's learner id, the signed-in user's id or None) for stored drawings (sync)."""
    learner = request.session.get(SESSION_LEARNER) or "teach-unknown"
    user = request.user
    return learner, user.pk if user.is_authenticated else None


def _job_status(job_id, owner):
    """The job's answer for `owner` (sync), or None when it is not theirs."""
    store = get_worker().store
    record = store.get(job_id)
    if record is None or owner is None or record["reader"] != owner:
        return None
    store.touch(job_id)
    answer = public(record, store.cancel_requested(job_id))
    if answer["state"] == DONE and not _copy_lives(answer):
        answer["state"] = EXPIRED
    return answer


def _copy_lives(answer):
    copy_id = (answer.get("result") or {}).get("copy")
    return bool(copy_id) and TaughtCopy.objects.filter(
        pk=int(copy_id), expires_at__gt=timezone.now()).exists()


def _not_found():
    return error("no such job: it may have ended long ago, or belong to another browser",
                 status=404)


@never_cache
@limited
async def api_job(request, job_id):
    if request.method != "GET":
        response = error("use GET", status=405)
        response["Allow"] = "GET"
        return response
    answer = await in_thread(_job_status, job_id[:64], _owner(request))
    if answer is None:
        return _not_found()
    return JsonResponse(answer)


def _cancel(job_id, owner):
    worker = get_worker()
    record = worker.store.get(job_id)
    if record is None or owner is None or record["reader"] != owner:
        return None
    if record["state"] in FINAL_STATES:
        return record["state"]
    worker.cancel(job_id)
    return "cancelled"


@csrf_exempt
@limited
async def api_cancel(request, job_id):
    refused = _post_only(request)
    if refused:
        return refused
    state = await in_thread(_cancel, job_id[:64], _owner(request))
    if state is None:
        return _not_found()
    return JsonResponse({"job": job_id, "state": state})


# -- predictions ----------------------------------------------------------------------------


def _prediction_input(request):
    data = _read_json(request, "the drawing")
    if not isinstance(data, dict) or "drawing" not in data:
        raise PayloadError("send {\"drawing\": {width, height, strokes}}")
    drawing = parse_drawing(data["drawing"])
    return strokes_to_input(drawing.strokes, drawing.width, drawing.height)


def _session_copy(owner):
    return taught.latest_copy(taught.SESSION, owner) if owner else None


@csrf_exempt
@limited
async def api_predict(request):
    refused = _post_only(request) or _too_large(request)
    if refused:
        return refused
    try:
        image = await in_thread(_prediction_input, request)
    except UnsupportedMediaType as exc:
        return error(str(exc), status=415)
    except (PayloadError, DrawingError) as exc:
        return error(str(exc))
    copy = await in_thread(_session_copy, _owner(request))
    try:
        production = await get_service().apredict(
            image, client=("teach", client_address(request)))
    except ModelUnavailable as exc:
        return error(f"no model available: {exc}", status=503)
    taught_probabilities = None
    if copy is not None:
        try:
            taught_probabilities = (await taught.apredict(copy, image)).probabilities
        except taught.CopyError as exc:
            logger.warning("taught copy %s cannot answer: %s", copy.pk, exc)
            copy = None
    return JsonResponse({"production": production.probabilities,
                         "taught": taught_probabilities,
                         "copy": str(copy.pk) if copy is not None else None,
                         "model": production.version})


# -- a class's copy -----------------------------------------------------------------------


def _class_job(request, code):
    """Everything of a class job that reads the database (sync): (work, owner, job id)
    or an error response."""
    room = class_drawings.teachable_room(code)
    if room is None:
        return error("no such class", status=404)
    if not class_drawings.is_teacher(request, room):
        return error("only the class's teacher (the browser that opened the class) may teach "
                     "its copy", status=403)
    try:
        data = _read_json(request, "the options") if request.body else {}
        if not isinstance(data, dict):
            raise jobs.TeachInputError("the body must be a JSON object")
        bounds = jobs.Bounds.from_settings(settings)
        replay, steps, _ = jobs.parse_options(data, bounds)
        exclude = jobs.parse_exclusions(data.get("exclude"))
    except UnsupportedMediaType as exc:
        return error(str(exc), status=415)
    except (PayloadError, jobs.TeachInputError) as exc:
        return error(str(exc))
    inputs, labels = class_drawings.class_examples(room, exclude)
    if len(labels) < bounds.min_examples:
        return error(f"the class's last game kept {len(labels)} drawings; teaching needs at "
                     f"least {bounds.min_examples} (play a game first)")
    base = versions.active_version()
    if base is None:
        return error("no model is being served yet", status=503)
    owner = taught.class_owner(room.code)
    job_id = secrets.token_urlsafe(12)
    return _work(taught.CLASS, owner, base, inputs, labels, steps, replay, job_id), owner, job_id


@csrf_exempt
@limited
async def api_class_jobs(request, code):
    refused = _post_only(request) or _too_large(request)
    if refused:
        return refused
    reader = _owner(request)
    if reader is None:
        return _no_session()
    refused = _too_often(request)
    if refused:
        return refused
    prepared = await sync_to_async(_class_job)(request, code[:40])
    if isinstance(prepared, JsonResponse):
        return prepared
    work, owner, job_id = prepared
    record, refused = await in_thread(_queue, work, job_id, reader, owner)
    return refused or _accepted(record)
