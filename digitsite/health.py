"""GET /healthz: is this process fit to serve?

A load balancer polls it on every server process. It answers 200 when the
database answers a query and takes a small write within a bound, the volumes
of var/, the models and the SQLite database have free space above a
threshold, the channel layer carries a message through a round trip, and the
active model version's file is intact and is the one this process serves;
503 with the failing part named otherwise (a process that serves an older
version because the active one does not load says which).

The details also say where this process's live guesses spent their time,
stage by stage (digitsite.game.guess_timing): what an operator reads when
players say the guesses are slow.

Anyone may ask, so the public answer is the overall status and ok/failing per
check, nothing more: a failure's text names database hosts, ports, roles and
the Redis host. The details (each check's findings, errors and timings, and
the process id, to tell which process behind the proxy replied) go to staff
users and to requests made on this machine straight to the process: from a
loopback address and with no proxy's forwarding header, since a proxy on the
same machine would otherwise make every visitor local.
"""

import asyncio
import ipaddress
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from digitsite.game.guess_timing import guess_timing
from recognizer import versions
from recognizer.checkpoints import sha256_of
from recognizer.inference import ModelUnavailable, get_service

logger = logging.getLogger(__name__)

# The write probe gives up waiting for a lock after this long, inside the
# database: a probe abandoned by the check's timeout
# (HEALTH_CHECK_TIMEOUT_SECONDS) would otherwise keep its thread waiting for
# the lock timeout (DATABASE_LOCK_TIMEOUT, 20 s). A lock is answered in this
# time however long the check may take.
WRITE_TIMEOUT_SECONDS = 2.0

# Hashing the model file on every probe would cost a read of the whole file;
# the digest is kept for as long as the file's size and mtime stay the same.
_digest_cache = {}


def _elapsed_ms(start):
    return round((time.perf_counter() - start) * 1000, 2)


def _failure(exc):
    return f"{type(exc).__name__}: {exc}"


def _database_check():
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            (value,) = cursor.fetchone()
        # Reading is not enough: with another writer holding SQLite's lock
        # (or a PostgreSQL lock on the table) reads go on while every move of
        # the game waits.
        _write_probe()
        return {"ok": value == 1, "vendor": connection.vendor, "write": True}
    finally:
        close_old_connections()


def _write_probe():
    """Rewrite the health row in a transaction that waits at most WRITE_TIMEOUT_SECONDS."""
    from digitsite.game.models import HealthProbe

    wait_ms = int(WRITE_TIMEOUT_SECONDS * 1000)
    if connection.vendor == "sqlite":
        # The busy timeout is the connection's; a kept connection gets its own back.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            (previous_ms,) = cursor.fetchone()
            cursor.execute(f"PRAGMA busy_timeout = {wait_ms}")
        try:
            _rewrite(HealthProbe)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {int(previous_ms)}")
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {wait_ms}")
                # Longer than the lock wait, so that a lock reads as one.
                statement_ms = int(settings.HEALTH_CHECK_TIMEOUT_SECONDS * 1000)
                cursor.execute(f"SET LOCAL statement_timeout = {statement_ms}")
        _rewrite(HealthProbe)


def _rewrite(model):
    with transaction.atomic():
        if not model.objects.filter(pk=1).update(checked_at=timezone.now()):
            # The row is made by the migration; a flushed database lacks it.
            model.objects.bulk_create([model(pk=1, checked_at=timezone.now())],
                                      ignore_conflicts=True)


def _watched_folders():
    """The folders whose volumes must have room: var/, the models, a SQLite database."""
    folders = {"var": Path(settings.VAR_DIR), "models": Path(settings.RECOGNIZER_MODEL_DIR)}
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite" and not name.startswith(("file:", ":memory:")):
        folders["database"] = Path(name).parent
    return folders


def _disk_check():
    """Free space on each watched volume against HEALTH_MIN_FREE_MB.

    A full disk fails writes of every kind (drawings, model versions, the
    SQLite journal), so the process reports it before that happens.
    """
    minimum = settings.HEALTH_MIN_FREE_MB
    free_mb, low = {}, []
    for name, folder in _watched_folders().items():
        # A folder not made yet (no model trained here) will live on its parent's volume.
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent
        free_mb[name] = round(shutil.disk_usage(folder).free / 2**20, 1)
        if free_mb[name] < minimum:
            low.append(name)
    result = {"ok": not low, "min_free_mb": minimum, "free_mb": free_mb}
    if low:
        result["error"] = f"less than {minimum:g} MiB free for {', '.join(low)}"
    return result


def _file_digest(path):
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    digest = _digest_cache.get(key)
    if digest is None:
        digest = sha256_of(path)
        _digest_cache.clear()
        _digest_cache[key] = digest
    return digest


def _model_check():
    close_old_connections()
    try:
        row = versions.active_version()
    finally:
        close_old_connections()
    if row is None:
        return {"ok": False, "active": None, "loaded": get_service().current_version,
                "checksum_ok": False, "error": "no model version is active"}
    result = {"active": row.version, "checksum_ok": False}
    path = versions.resolve_path(row.path)
    try:
        result["checksum_ok"] = _file_digest(path) == row.sha256
        if not result["checksum_ok"]:
            result["error"] = f"the file of version {row.version} does not match its checksum"
    except OSError as exc:
        result["error"] = f"the file of version {row.version} cannot be read: {exc.strerror}"
    # Loading here (when due) means a fresh process reports a model as soon as
    # it can serve one, and an activation shows up without waiting for traffic.
    service = get_service()
    try:
        service.refresh()
    except ModelUnavailable as exc:
        result.setdefault("error", str(exc))
    result["loaded"] = service.current_version
    refused = service.refused
    if refused is not None and refused.version == row.version:
        # Serving an older version (or none) because the active one does not
        # load: a degraded process, which the balancer should see. A file
        # problem found above stays the headline; this says what serves.
        result["fallback"] = result["loaded"]
        result.setdefault("error", (
            f"the active version {row.version} cannot be loaded ({refused.error}); "
            + (f"serving {result['loaded']} instead" if result["loaded"] else "serving nothing")
        ))
    if result["checksum_ok"] and result["loaded"] != row.version:
        result.setdefault("error", f"this process serves {result['loaded']}, not {row.version}")
    result["ok"] = result["checksum_ok"] and result["loaded"] == row.version
    return result


def _layer_backend():
    try:
        layer = get_channel_layer()
    except Exception:  # a broken CHANNEL_LAYERS setting is reported by the check itself
        return None
    return type(layer).__name__ if layer is not None else None


async def _channel_layer_check():
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer is configured"}
    channel = await layer.new_channel("healthz")
    nonce = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "nonce": nonce})
    message = await layer.receive(channel)
    if message.get("nonce") != nonce:
        return {"ok": False, "error": "the channel layer returned a different message"}
    return {"ok": True}


async def _timed(name, coroutine, **known):
    start = time.perf_counter()
    try:
        result = await asyncio.wait_for(coroutine, settings.HEALTH_CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        result = {"ok": False,
                  "error": f"no answer within {settings.HEALTH_CHECK_TIMEOUT_SECONDS:g} s"}
    except Exception as exc:  # any failure of a dependency is a result, not a 500
        result = {"ok": False, "error": _failure(exc)}
    result = {**known, **result, "ms": _elapsed_ms(start)}
    if not result["ok"]:
        logger.warning("health check %s failed: %s", name, result.get("error"),
                       extra={"check": name})
    return name, result


# Headers a proxy adds: their presence means the loopback peer is a proxy
# relaying someone else.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _is_direct_loopback(request):
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    return peer.is_loopback and not any(h in request.META for h in FORWARDING_HEADERS)


async def _is_staff(request):
    """Whether the request comes from a logged-in staff user; False if that cannot be told.

    Looking up the session needs the database, which may be the very thing
    that is failing: a lookup that fails or hangs counts as anonymous.
    """
    try:
        user = await asyncio.wait_for(request.auser(), settings.HEALTH_CHECK_TIMEOUT_SECONDS)
    except Exception:  # the database is down or slow: no details, but no 500 either
        return False
    return bool(user.is_active and user.is_staff)


async def may_see_details(request):
    return _is_direct_loopback(request) or await _is_staff(request)


def public_answer(body):
    """The status and each check's ok/failing: no hosts, errors or timings."""
    return {
        "status": body["status"],
        "checks": {name: "ok" if check["ok"] else "failing"
                   for name, check in body["checks"].items()},
    }


@never_cache
async def healthz(request):
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"error": "use GET"}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    checks = dict(await asyncio.gather(
        _timed("database", sync_to_async(_database_check)()),
        _timed("disk", sync_to_async(_disk_check, thread_sensitive=False)()),
        _timed("channel_layer", _channel_layer_check(), backend=_layer_backend()),
        _timed("model", sync_to_async(_model_check)()),
    ))
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "failing", "pid": os.getpid(), "checks": checks}
    if await may_see_details(request):
        body["guess_timing"] = guess_timing.summary()
    else:
        body = public_answer(body)
    return JsonResponse(body, status=200 if healthy else 503)
