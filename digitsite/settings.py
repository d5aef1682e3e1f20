"""Settings for the digit site.

Everything that differs between a laptop and a production host comes from the
environment. With no environment at all the site runs embedded: SQLite, the
in-memory channel layer and the shipped model, with DEBUG off.
"""

import logging
import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from digitsite.environment import (
    env_bool,
    env_checked,
    env_float,
    env_int,
    env_list,
    env_path,
    env_text,
)
from digitsite.proxies import parse_networks
from digitsite.secret_key import is_production, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


# Runtime data (SQLite database, trained models, the generated secret key)
# lives outside the source tree's tracked files.
VAR_DIR = env_path("DIGITSITE_VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
# Production: DIGITSITE_ENV=production, or (unset) ALLOWED_HOSTS naming a host
# other than this machine. There SECRET_KEY must come from the environment;
# elsewhere one is generated once into VAR_DIR and kept, so sessions survive
# a restart without anyone having to invent a secret for a local run.
PRODUCTION = is_production(os.environ.get("DIGITSITE_ENV"), ALLOWED_HOSTS)
SECRET_KEY = secret_key(os.environ.get("SECRET_KEY"), VAR_DIR, PRODUCTION)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "digitsite.admin_site.SiteAdminConfig",  # django.contrib.admin, throttled logins
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "recognizer",
    "recognizer.collection",  # its admin, found by the admin's discovery
    "trainer",
    "trainer.teach",
    "digitsite.game",
]

# Served by digitsite.middleware.ASGIHandler, which loads each of these
# Django classes as a subclass that runs its hooks on the event loop, not a
# thread hop each (digitsite/middleware.py says why and measures it).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "digitsite.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "digitsite.urls"
ASGI_APPLICATION = "digitsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    # A blank DATABASE_URL (`DATABASE_URL=` in an env file) means the
    # default, as a blank REDIS_URL does; dj_database_url.config read it as a
    # configuration without an engine, and every command failed on a KeyError.
    "default": dj_database_url.parse(
        env_text("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A kept connection is checked before reuse, so a database restart
        # costs a reconnect instead of failed requests.
        conn_health_checks=True,
    )
}
# How long a statement waits for a lock another transaction holds before it
# fails: 20 s by default. Shorter would turn a busy minute into failed joins
# and moves; a drawing's write is tried again after a failure anyway
# (GAME_WRITE_PATIENCE_SECONDS), and with the game's thread pool a waiting
# write no longer holds up the other rooms (digitsite/game/database.py).
DATABASE_LOCK_TIMEOUT = env_float("DATABASE_LOCK_TIMEOUT", 20.0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Game servers write from many coroutines at once: wait for the lock
    # instead of failing with "database is locked", take it when a transaction
    # starts (so two writers never deadlock upgrading a read lock), and use the
    # write-ahead log, which lets readers run beside the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": DATABASE_LOCK_TIMEOUT,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })

elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL waits for a lock for ever by default: game writes stuck
    # behind one long transaction (an admin action, a manual session) would
    # each hold a thread of the game's pool until it ended, and a few of them
    # the whole pool. With a bound they fail, a drawing's write is tried
    # again after a pause, and the threads serve other rooms meanwhile.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = " ".join(filter(None, [
        _options.get("options", ""), f"-c lock_timeout={int(DATABASE_LOCK_TIMEOUT * 1000)}"]))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_text("REDIS_URL")
# Connections each of a process's two Redis pools (the channel layer, the
# game's socket counts) may open. Redis accepts 10,000 clients by default:
# 500 leaves room for 10 processes at their busiest.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 500)


def redis_layer_host(url):
    """The channel layer's Redis connection settings (tests/test_redis_pool.py)."""
    # redis-py 8's pools hold at most 100 connections and raise at once past
    # them: 200 players of one process sending at the same time failed their
    # messages with "Too many connections" (bench/bench_load.py, one-services).
    return {"address": url, "socket_timeout": 15, "max_connections": REDIS_MAX_CONNECTIONS}

# How many undelivered messages the channel layer holds before it drops more.
# channels_redis keeps the messages for all of a process's connections under
# one Redis key, so its default of 100 is a process-wide limit: a burst such
# as 25 rooms ending a round together exceeds it, and group messages past it
# are dropped. Unread messages still expire after 60 s.
CHANNEL_LAYER_CAPACITY = env_checked("CHANNEL_LAYER_CAPACITY", 5000, kind=int,
                                     allowed=lambda value: value >= 1,
                                     must_be="a whole number above 0")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 gives sockets a 5 s read timeout, as long as the
                # layer's blocking receive: idle sockets would be torn down
                # every 5 s.
                "hosts": [redis_layer_host(REDIS_URL)],
                "capacity": CHANNEL_LAYER_CAPACITY,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "digitsite.channel_layer.BroadcastOnceChannelLayer",
                                  "CONFIG": {"capacity": CHANNEL_LAYER_CAPACITY}}}

# Shared by every process through Redis when there is one (login throttling
# must count a guesser's tries on all processes); one process's memory otherwise.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Failed logins (digitsite/login_throttle.py): this many for one user name, or
# from one address, within LOGIN_LOCKOUT_SECONDS lock it for that long.
# Each must be a whole number above 0: a lockout of 0 would divide by zero in
# every window computation, and a limit of 0 would lock every name on its first
# try; there is no "off" value (raise the counts instead).
def _positive_int(name, default):
    return env_checked(name, default, kind=int, allowed=lambda value: value > 0,
                       must_be="a whole number above 0")


LOGIN_FAILURES_PER_ACCOUNT = _positive_int("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_FAILURES_PER_IP = _positive_int("LOGIN_FAILURES_PER_IP", 20)
LOGIN_LOCKOUT_SECONDS = _positive_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the source folders too, so a checkout works without a
# collectstatic step; production puts nginx in front of STATIC_ROOT.
WHITENOISE_USE_FINDERS = True

# Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed
# (addresses or networks, e.g. "127.0.0.1,10.0.0.0/8"); from anyone else the
# headers are ignored (digitsite/proxies.py). Empty: no proxy is trusted, so
# a client cannot claim https or another address by sending the headers.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
try:
    parse_networks(TRUSTED_PROXIES)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# Production hardening: on unless DEBUG, each switchable for a plain-HTTP
# deployment behind a proxy that terminates TLS elsewhere. The proxy's https
# header counts only with TRUSTED_PROXIES set, and proxies.py strips it from
# requests that do not come through one of them.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe each process directly over plain HTTP; a redirect to
# https would read as a failed probe.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Everything is served from this site (see digitsite/csp.py); data: images are
# the generated 28x28 inputs. default-src covers fetch() and the WebSocket
# ('self' includes ws:/wss: to the same host).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# The API refuses bodies over 1 MiB itself with a JSON error; Django's own
# limit sits above it so that the API's message is the one clients see.
RECOGNIZER_MAX_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Any request body past this gets a 413 while it arrives, before the server or
# Django store it (digitsite/serve.py, digitsite/body_limit.py). Above the
# API's limit, so that the API's own message answers bodies between the two.
HTTP_MAX_BODY_BYTES = env_int("HTTP_MAX_BODY_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE)
# A request's headers and body must arrive within this many seconds of its
# first line, and an idle connection closes after it (digitsite/serve.py).
# A drawing is under 150 kB; 1 MiB at 512 kbit/s takes about 16 s.
HTTP_RECEIVE_TIMEOUT_SECONDS = env_float("HTTP_RECEIVE_TIMEOUT_SECONDS", 30.0)

# Recognizer
RECOGNIZER_MODEL_DIR = env_path("RECOGNIZER_MODEL_DIR", VAR_DIR / "models")
RECOGNIZER_MAX_BATCH = env_int("RECOGNIZER_MAX_BATCH", 64)
# How long the batcher waits for more requests before a forward pass; 0 means
# it takes only what is already queued, which adds no latency when idle.
RECOGNIZER_BATCH_WAIT_MS = env_float("RECOGNIZER_BATCH_WAIT_MS", 0.0)
# How often each process looks for a newly activated model version.
RECOGNIZER_RELOAD_SECONDS = env_float("RECOGNIZER_RELOAD_SECONDS", 2.0)
# Threads per forward pass in a server process. One: a batch of a few 28x28
# drawings is too small to gain from more, and several server processes (and
# the event loop) share the cores. 0 leaves torch's default.
RECOGNIZER_TORCH_THREADS = env_int("RECOGNIZER_TORCH_THREADS", 1)
RECOGNIZER_MAX_POINTS = 10_000
# Per-client limits of /api/recognize (recognizer/clients.py): requests being
# computed at once, and tokens a second with bursts, a request costing one
# token plus one per RECOGNIZER_API_BYTES_PER_TOKEN bytes of body past the
# first 10 kB (an ordinary drawing costs 1, the largest accepted one 37).
RECOGNIZER_API_MAX_IN_FLIGHT = env_int("RECOGNIZER_API_MAX_IN_FLIGHT", 2)
RECOGNIZER_API_RATE = env_float("RECOGNIZER_API_RATE", 20.0)
RECOGNIZER_API_BURST = env_int("RECOGNIZER_API_BURST", 40)
RECOGNIZER_API_BYTES_PER_TOKEN = env_int("RECOGNIZER_API_BYTES_PER_TOKEN", 2_500)
# Seconds a refused request waits for its 429 (at most its Retry-After): a
# client resending at once is slowed to one request a second per connection.
RECOGNIZER_API_REFUSAL_DELAY = env_float("RECOGNIZER_API_REFUSAL_DELAY", 1.0)
# The teaching endpoints' limits (/learn/api/*, the teach page's predict and
# job requests; recognizer/clients.py, SessionLimits), costed as the API's.
# Per browser session: a lesson page sends at most one request per 150 ms
# (6.7 a second) and two lessons' requests may overlap (the pad and the
# neuron inspector), so 4 at once and 20 a second leave room for two tabs.
TEACHING_API_SESSION_MAX_IN_FLIGHT = env_int("TEACHING_API_SESSION_MAX_IN_FLIGHT", 4)
TEACHING_API_SESSION_RATE = env_float("TEACHING_API_SESSION_RATE", 20.0)
TEACHING_API_SESSION_BURST = env_int("TEACHING_API_SESSION_BURST", 40)
# Per address, whatever the sessions: a class of 40 behind one school NAT
# drawing at once sends 40 x 6.7 = 270 requests a second with 40 in flight,
# plus the teach page's job polls (2.5 a second each); the ceiling is half
# as much again. Cycling session cookies gets a client no further than this.
TEACHING_API_ADDRESS_MAX_IN_FLIGHT = env_int("TEACHING_API_ADDRESS_MAX_IN_FLIGHT", 64)
TEACHING_API_ADDRESS_RATE = env_float("TEACHING_API_ADDRESS_RATE", 400.0)
TEACHING_API_ADDRESS_BURST = env_int("TEACHING_API_ADDRESS_BURST", 800)

# Trainer
MNIST_DATA_DIR = env_path("MNIST_DATA_DIR", VAR_DIR / "mnist")

# Teaching pages: use only the first N MNIST test digits (0: all of them).
TEACHING_MNIST_LIMIT = env_int("TEACHING_MNIST_LIMIT", 0)
# Lesson 1's "digits that excite this map most" (recognizer/teaching/top_digits.py):
# how many MNIST training digits and newest approved drawings are searched,
# once per model version (6,000 + 2,000 take a few seconds on one core).
TEACHING_TOP_DIGITS_SAMPLE = env_int("TEACHING_TOP_DIGITS_SAMPLE", 6000)
TEACHING_TOP_DIGITS_PLAYERS = env_int("TEACHING_TOP_DIGITS_PLAYERS", 2000)
# How long a process shows the model page's state (active version, approved
# drawings, version history) before reading it again: a change appears on
# `/learn/model/` within this time, as a newly activated version reaches the
# game within RECOGNIZER_RELOAD_SECONDS (recognizer/teaching/card_state.py).
MODEL_CARD_STATE_SECONDS = env_float("MODEL_CARD_STATE_SECONDS", 2.0)
# How long views of `/learn/model/` wait (from the first view that waits)
# for the model's accuracy on the approved drawings before they show the
# card without it, say it is being measured and reload themselves
# (recognizer/teaching/views.py). A process's first view of a version runs
# every approved drawing: 9.4 s for 20,000.
# A finite number, 0 or more: text, "nan" or "inf" (a view that never stops
# waiting) stops the site at start-up.
MODEL_CARD_WAIT_SECONDS = env_checked(
    "MODEL_CARD_WAIT_SECONDS", 1.0, kind=float,
    allowed=lambda value: math.isfinite(value) and value >= 0,
    must_be="a number of seconds, 0 or more")

# The teach page (trainer/teach/): a learner's drawings train a private copy
# of the served model's head. Each bound must be a whole number in its range:
# a wrong one would let one request hold a core for minutes or the queue grow
# without end.
def _teach_int(name, default, low, high):
    return env_checked(name, default, kind=int, allowed=lambda n: low <= n <= high,
                       must_be=f"a whole number from {low} to {high}")


# Trainings at once per process, each on one torch thread (TEACH_TORCH_THREADS).
TEACH_WORKERS = _teach_int("TEACH_WORKERS", 1, 1, 64)
# Trainings waiting per process beyond those; more are refused with a 503.
TEACH_MAX_QUEUE = _teach_int("TEACH_MAX_QUEUE", 64, 0, 10_000)
# Examples one training takes (about 1 in 4 is held out to measure it).
TEACH_MIN_EXAMPLES = _teach_int("TEACH_MIN_EXAMPLES", 6, 4, 1000)
TEACH_MAX_EXAMPLES = _teach_int("TEACH_MAX_EXAMPLES", 60, 4, 1000)
if TEACH_MAX_EXAMPLES < TEACH_MIN_EXAMPLES:
    raise ImproperlyConfigured("TEACH_MAX_EXAMPLES must not be below TEACH_MIN_EXAMPLES")
# Points of one example drawing: a digit drawn slowly on a large canvas has
# about 300; the game's limit (10,000) times 60 examples would be 60 renders
# of the worst drawing per request.
TEACH_MAX_POINTS = _teach_int("TEACH_MAX_POINTS", 2_000, 100, 10_000)
# Optimizer steps (batches of 128) a learner may ask for, and the default.
TEACH_MAX_STEPS = _teach_int("TEACH_MAX_STEPS", 1000, 20, 100_000)
TEACH_DEFAULT_STEPS = _teach_int("TEACH_DEFAULT_STEPS", 300, 20, 100_000)
if not TEACH_DEFAULT_STEPS <= TEACH_MAX_STEPS:
    raise ImproperlyConfigured("TEACH_DEFAULT_STEPS must not be above TEACH_MAX_STEPS")
# A training that has used this much CPU time is stopped (and fails).
TEACH_CPU_SECONDS = env_checked("TEACH_CPU_SECONDS", 30.0, kind=float,
                                allowed=lambda s: 1 <= s <= 3600,
                                must_be="a number of seconds from 1 to 3600")
# A taught copy is served for this long, then deleted.
TEACH_COPY_HOURS = env_checked("TEACH_COPY_HOURS", 2.0, kind=float,
                               allowed=lambda h: 0 < h <= 24 * 30,
                               must_be="a number of hours above 0 and at most 720")
# A job whose page has not asked for it for this long is cancelled (the page
# went away); the page asks every 0.4 s.
TEACH_ABANDON_SECONDS = env_checked("TEACH_ABANDON_SECONDS", 15.0, kind=float,
                                    allowed=lambda s: 2 <= s <= 3600,
                                    must_be="a number of seconds from 2 to 3600")
# MNIST train digits replayed beside a learner's drawings, and MNIST test
# digits measured before and after; their features are computed once per
# model version and process (19 MB and 12 MB as float16).
TEACH_REPLAY_DIGITS = _teach_int("TEACH_REPLAY_DIGITS", 3000, 0, 60_000)
TEACH_TEST_DIGITS = _teach_int("TEACH_TEST_DIGITS", 2000, 0, 10_000)
# Torch threads of one training.
TEACH_TORCH_THREADS = _teach_int("TEACH_TORCH_THREADS", 1, 1, 64)
# Teach requests (jobs, refused ones included) one address may send a minute,
# in bursts of as many, per process. 20: a class of 30 behind one school NAT
# pressing Teach at once gets 20 through at once and the other 10 within 30 s
# (one more every 3 s), so each teaches within two minutes; a loop of "teach,
# cancel" gets 20 jobs a minute instead of hundreds.
TEACH_JOBS_PER_MINUTE_PER_ADDRESS = _teach_int("TEACH_JOBS_PER_MINUTE_PER_ADDRESS", 20,
                                               1, 10_000)
# Teach drawings one browser session stores for review per clock hour (5 full
# requests of 60); past it its jobs still run, and their drawings are not kept.
TEACH_STORED_PER_SESSION_PER_HOUR = _teach_int("TEACH_STORED_PER_SESSION_PER_HOUR", 300,
                                               0, 100_000)

# Game
GAME_MAX_PLAYERS = env_int("GAME_MAX_PLAYERS", 8)
GAME_ROUNDS = env_int("GAME_ROUNDS", 5)
GAME_ROUND_SECONDS = env_float("GAME_ROUND_SECONDS", 20.0)
# The pause between rounds that shows a round's results, in seconds (0 to
# 60; like the defaults around it, checked with a room's other settings
# when a room is made).
GAME_RESULTS_SECONDS = env_float("GAME_RESULTS_SECONDS", 5.0)
GAME_TARGET_CONFIDENCE = env_float("GAME_TARGET_CONFIDENCE", 0.9)
GAME_REJOIN_SECONDS = env_float("GAME_REJOIN_SECONDS", 60.0)
# A room nobody was connected to for this long is closed: no longer listed
# nor joinable (its results and drawings stay).
GAME_EMPTY_ROOM_MINUTES = env_float("GAME_EMPTY_ROOM_MINUTES", 10.0)
# Rooms (solo ones included) one browser session, and one IP address, may
# create per GAME_ROOMS_WINDOW_SECONDS. One client once made 1,000 rooms in
# 20 s; people make one or two. The address limit is higher because a class
# or an office shares one address.
GAME_ROOMS_PER_SESSION = env_int("GAME_ROOMS_PER_SESSION", 5)
GAME_ROOMS_PER_IP = env_int("GAME_ROOMS_PER_IP", 20)
GAME_ROOMS_WINDOW_SECONDS = env_float("GAME_ROOMS_WINDOW_SECONDS", 60.0)
# Students one class may seat (the teacher's seat comes on top). A class's
# projector shows every student's drawing live, so its bandwidth grows with
# this number (docs/protocol.md, "Class rooms").
GAME_CLASS_MAX_STUDENTS = env_checked(
    "GAME_CLASS_MAX_STUDENTS", 40, kind=int, allowed=lambda n: 1 <= n <= 200,
    must_be="a whole number of students from 1 to 200")

# Privacy: rooms nobody has used for this many days are deleted with their
# seats and round progress by `manage.py purge_old_data` (run it daily; see
# docs/deployment.md). Collected drawings are training data and are kept
# until staff delete them (or everything of their player) in the admin.
DATA_RETENTION_DAYS = env_checked(
    "DATA_RETENTION_DAYS", 30.0, kind=float,
    allowed=lambda days: 0 < days <= 36500,  # also refuses nan and inf
    must_be="a number of days above 0 and at most 36500")

# Threads (and so database connections) per process for the game's database
# work: one slow call then holds up one of them, not every room
# (digitsite/game/database.py).
GAME_DB_THREADS = env_int("GAME_DB_THREADS", 4)
# How long a drawing that reached the server is kept in memory and its write
# tried again while the database refuses it (locked, restarting).
GAME_WRITE_PATIENCE_SECONDS = env_float("GAME_WRITE_PATIENCE_SECONDS", 300.0)
# How often each server process closes rounds whose deadline passed with
# nobody left to close them (a stopped or killed process); 0 turns it off.
GAME_SWEEP_SECONDS = env_float("GAME_SWEEP_SECONDS", 5.0)
# How long a graceful stop (SIGTERM) spends writing the drawings in hand and
# finishing its players' rounds before the process exits.
GAME_STOP_SECONDS = env_float("GAME_STOP_SECONDS", 10.0)

# A player's live drawings are written at most this often (seconds); the
# newest in between is held in memory and written when due, before `done`
# and when the socket closes (digitsite/game/drawing_writes.py). 0 writes
# every drawing before its guess.
GAME_DRAWING_WRITE_SECONDS = env_float("GAME_DRAWING_WRITE_SECONDS", 1.0)

# What one game WebSocket may make a server process hold (docs/protocol.md,
# "Limits per connection and per client"); 0 turns a bound off.
# Open game sockets per client address and per browser session, for the
# whole site when there is Redis (in each process without). An address is
# often a whole school behind one NAT: five classes of GAME_CLASS_MAX_STUDENTS
# (40) with their teachers and reconnecting tabs fit in 250. A browser needs
# one per open room tab.
GAME_WS_CONNECTIONS_PER_ADDRESS = env_int("GAME_WS_CONNECTIONS_PER_ADDRESS", 250)
GAME_WS_CONNECTIONS_PER_SESSION = env_int("GAME_WS_CONNECTIONS_PER_SESSION", 8)
# With REDIS_URL, those sockets are counted in Redis for all processes; a
# socket counts for this many seconds unless its process renews it (every
# third of it), so a killed process's sockets stop counting this long after.
# 0 counts them in each process instead.
GAME_WS_COUNT_SECONDS = env_float("GAME_WS_COUNT_SECONDS", 30.0)
# Message bytes one client address may send a second over all its game
# sockets in a process, in bursts (digitsite/game/message_rate.py): past it
# messages are dropped before they are decoded. A class of 40 on protocol 2
# sends about 120 kB a second; 0 turns it off. The burst is what may arrive
# at once: a class of 40 rejoining together with drawings of 260 points
# sends about 390 kB (tests/test_game_work_bounds.py). A burst of 1 MB let 20
# sockets of one client holding their largest drawings until the budget
# refilled have them all decoded and rendered together every 5 s: another
# player's p95 rose 1.4-5.5x (median 2.7x in turns with 512 kB, whose
# runs gave 1.1-1.5x; bench/bench_abuse.py --ws-bursts).
GAME_WS_BYTES_PER_SECOND_PER_ADDRESS = env_int("GAME_WS_BYTES_PER_SECOND_PER_ADDRESS",
                                               256_000)
GAME_WS_BYTES_BURST_PER_ADDRESS = env_int("GAME_WS_BYTES_BURST_PER_ADDRESS", 512_000)
# Drawings of one address being rendered and recognised at once (each
# connection has one at most; the others wait their turn). Twenty sockets of
# one client each with a worst-case drawing (tens of ms) in the thread pool
# otherwise sat ahead of every other player's drawing.
GAME_DRAWINGS_IN_FLIGHT_PER_ADDRESS = env_int("GAME_DRAWINGS_IN_FLIGHT_PER_ADDRESS", 4)
# Game drawings rendered at once in a process, whoever sent them; the others
# wait in one lane per address, taken round robin (recognizer/fair_gate.py).
# Rendering is mostly Python, so more threads at once add no throughput:
# they only share the interpreter, and a flood's worst drawings then slowed
# every other player's. 0: no limit.
GAME_DRAWINGS_RENDERED_AT_ONCE = env_int("GAME_DRAWINGS_RENDERED_AT_ONCE", 2)
# Game drawings of at most this many points, each stroke counting as one
# more, are rendered on the event loop itself; larger ones in a thread, in
# their turn (above). Rendering holds the interpreter anyway (only the
# compiled pen loop lets it go), so a thread added little but two hand-overs
# between threads a drawing, each waiting for the interpreter: at 32
# players, rendering these drawings on the loop made a guess's p50 106 ms ->
# 20 ms and its server CPU 0.81x (README, "Server CPU per guess, side by
# side"). The costliest such drawing, 144 dots (the most the ink limit
# allows) and empty strokes up to the bound, takes about 1 ms, 0.8 forward
# passes at batch 1 (bench/bench_worst_drawing.py, its rows "game, on the
# event loop"). While larger drawings are rendered in threads, or wait to
# be, small ones take their turn in the lanes too. 0: every drawing in a
# thread.
GAME_RENDER_ON_LOOP_POINTS = env_int("GAME_RENDER_ON_LOOP_POINTS", 400)
# Bytes of frames a connection may have waiting for the application before
# the server stops reading its socket (digitsite/websocket_bounds.py).
GAME_WS_INBOX_BYTES = env_int("GAME_WS_INBOX_BYTES", 1024 * 1024)
# Bytes written to a client and still unsent when the server writes again
# before the connection is closed with 4012 (the client does not read).
GAME_WS_MAX_UNSENT_BYTES = env_int("GAME_WS_MAX_UNSENT_BYTES", 1024 * 1024)
# The kernel's send buffer of each game socket (0: the kernel's own sizing,
# which grows it to 4 MiB for a client that does not read).
GAME_WS_SOCKET_BUFFER_BYTES = env_int("GAME_WS_SOCKET_BUFFER_BYTES", 256 * 1024)

# /healthz fails when the free space on the volume of var/, the model folder
# or the SQLite database falls under this many MiB.
HEALTH_MIN_FREE_MB = env_float("HEALTH_MIN_FREE_MB", 200.0)
# A /healthz check (database, channel layer, model, ...) that takes longer than
# this counts as failed: a proxy's probe has its own timeout, and a hung
# dependency must not hang the probe.
HEALTH_CHECK_TIMEOUT_SECONDS = env_float("HEALTH_CHECK_TIMEOUT_SECONDS", 3.0)

LOG_LEVEL = env_text("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in logging.getLevelNamesMapping():
    # logging itself refused "debug" (lower case) with an error naming no variable.
    raise ImproperlyConfigured(
        "LOG_LEVEL must be one of " + ", ".join(logging.getLevelNamesMapping())
        + f" (in any case), not {os.environ['LOG_LEVEL']!r}")
# "plain" for a terminal, "json" (one object per line) for a log collector.
LOG_FORMAT = env_text("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "digitsite.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # Reports group messages dropped for a full channel, at INFO.
        "channels_redis": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
