"""Settings for the digit site.

Everything that differs between a laptop and a production host comes from the
environment. With no environment at all the site runs embedded: SQLite, the
in-memory channel layer and the shipped model, with DEBUG off.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from digitsite.secret_key import is_production, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default):
    value = os.environ.get(name)
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name, default):
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


# Runtime data (SQLite database, trained models, the generated secret key)
# lives outside the source tree's tracked files.
VAR_DIR = Path(os.environ.get("DIGITSITE_VAR_DIR", BASE_DIR / "var"))
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
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "recognizer",
    "trainer",
    "digitsite.apps.GameConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A kept connection is checked before reuse, so a database restart
        # costs a reconnect instead of failed requests.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Game servers write from many coroutines at once: wait for the lock
    # instead of failing with "database is locked", take it when a transaction
    # starts (so two writers never deadlock upgrading a read lock), and use the
    # write-ahead log, which lets readers run beside the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# How many undelivered messages the channel layer holds before it drops more.
# channels_redis keeps the messages for all of a process's connections under
# one Redis key, so its default of 100 is a process-wide limit: a burst such
# as 25 rooms ending a round together exceeds it, and group messages past it
# are dropped. Unread messages still expire after 60 s.
CHANNEL_LAYER_CAPACITY = int(os.environ.get("CHANNEL_LAYER_CAPACITY", "5000"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 gives sockets a 5 s read timeout, as long as the
                # layer's blocking receive: idle sockets would be torn down
                # every 5 s.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "capacity": CHANNEL_LAYER_CAPACITY,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer",
                                  "CONFIG": {"capacity": CHANNEL_LAYER_CAPACITY}}}

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
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the source folders too, so a checkout works without a
# collectstatic step; production puts nginx in front of STATIC_ROOT.
WHITENOISE_USE_FINDERS = True

# Production hardening: on unless DEBUG, each switchable for a plain-HTTP
# deployment behind a proxy that terminates TLS elsewhere.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
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
X_FRAME_OPTIONS = "DENY"

# The API refuses bodies over 1 MiB itself with a JSON error; Django's own
# limit sits above it so that the API's message is the one clients see.
RECOGNIZER_MAX_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Recognizer
RECOGNIZER_MODEL_DIR = Path(os.environ.get("RECOGNIZER_MODEL_DIR", VAR_DIR / "models"))
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

# Trainer
MNIST_DATA_DIR = Path(os.environ.get("MNIST_DATA_DIR", VAR_DIR / "mnist"))

# Teaching pages: use only the first N MNIST test digits (0: all of them).
TEACHING_MNIST_LIMIT = env_int("TEACHING_MNIST_LIMIT", 0)

# Game
GAME_MAX_PLAYERS = env_int("GAME_MAX_PLAYERS", 8)
GAME_ROUNDS = env_int("GAME_ROUNDS", 5)
GAME_ROUND_SECONDS = env_float("GAME_ROUND_SECONDS", 20.0)
GAME_TARGET_CONFIDENCE = env_float("GAME_TARGET_CONFIDENCE", 0.9)
GAME_REJOIN_SECONDS = env_float("GAME_REJOIN_SECONDS", 60.0)

# Privacy: rooms nobody has used for this many days are deleted with their
# seats and round progress by `manage.py purge_old_data` (run it daily; see
# docs/deployment.md). Collected drawings are training data and are kept
# until staff delete them (or everything of their player) in the admin.
def _retention_days(name, default):
    raw = os.environ.get(name, "")
    try:
        days = float(raw) if raw.strip() else default
    except ValueError:
        days = float("nan")
    if not 0 < days <= 36500:  # also refuses nan and inf
        raise ImproperlyConfigured(f"{name} must be a number of days above 0 and at most "
                                   f"36500, not {raw!r}")
    return days


DATA_RETENTION_DAYS = _retention_days("DATA_RETENTION_DAYS", 30.0)

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# "plain" for a terminal, "json" (one object per line) for a log collector.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower() or "plain"
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
