"""One settings module, configured by environment; safe local defaults, loud failure otherwise."""

import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, not {number:g}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def local_secret_key(path: Path) -> str:
    """The key this checkout generated on its first run (mode 0600), generated now if none.

    Written to a private temporary file and hard-linked into place, so two processes starting
    at once agree on one key and none ever reads a half-written file.
    """
    if not path.exists():
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(50) + "\n")
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Cannot write a secret key to {path} ({exc.strerror}): set DJANGO_SECRET_KEY"
            ) from exc
    key = path.read_text().strip()
    if len(key) < 32:
        raise ImproperlyConfigured(f"{path} holds no usable secret key: delete it for a new one")
    return key


# Safe by default: DEBUG (tracebacks and URL lists in error pages) is an opt-in for development,
# and a first run on loopback needs no configuration. Beyond loopback the key must come from the
# environment, so that every process and host of a deployment shares it.
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", LOOPBACK_HOSTS)
LOOPBACK_ONLY = set(ALLOWED_HOSTS) <= set(LOOPBACK_HOSTS)
SECRET_KEY_FILE = Path(os.environ.get("DJANGO_SECRET_KEY_FILE") or BASE_DIR / ".secret-key")

if not DEBUG:
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name at least one host")
    if "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name hosts, not '*'")
if os.environ.get("DJANGO_SECRET_KEY"):
    SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
    if not DEBUG and len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random value of 32+ characters")
elif DEBUG or LOOPBACK_ONLY:
    SECRET_KEY = local_secret_key(SECRET_KEY_FILE)
else:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_ALLOWED_HOSTS names hosts beyond loopback"
    )

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_eventstream",
    "ninja",
    "workflows",
    "executions",
    "schedules",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "c4c_site.middleware.refuse_nul",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# /workflow/ (API and SSE) is served by its own handler with this chain (see c4c_site/asgi.py).
API_MIDDLEWARE = ["c4c_site.middleware.api_guard"]

ROOT_URLCONF = "c4c_site.urls"
ASGI_APPLICATION = "c4c_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own error pages; the apps' templates come from their templates/ folders.
        "DIRS": [BASE_DIR / "c4c_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.auth_mode",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend with its statement rewrite memoised (c4c_site/sqlite/base.py says why).
    DATABASES["default"]["ENGINE"] = "c4c_site.sqlite"
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN so two
    # writers queue on the busy timeout instead of failing with "database is locked". An 8 MB
    # page cache per connection and no mmap keep the server's RSS small; the OS caches the file.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 30),
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
            "PRAGMA temp_store=MEMORY;"
            "PRAGMA cache_size=-8000;"
        ),
    }
    # One file per test process, so two test runs in one checkout never share a database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f"test-db-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Accounts and authentication (accounts/, c4c_site/middleware.py). C4C_REQUIRE_AUTH is on by
# itself when the server listens beyond loopback (`c4c serve --host` sets C4C_BIND_HOST) or
# DJANGO_ALLOWED_HOSTS names a host beyond loopback; false on a public bind refuses to start.
# Off (a first run on loopback), every page and endpoint is open, as the header says.
from datetime import timedelta  # noqa: E402

from accounts.binding import auth_needed, is_loopback, public_bind_refusal  # noqa: E402

C4C_BIND_HOST = os.environ.get("C4C_BIND_HOST", "").strip() or "127.0.0.1"
C4C_REQUIRE_AUTH = env_bool("C4C_REQUIRE_AUTH", auth_needed(C4C_BIND_HOST, ALLOWED_HOSTS))
if not C4C_REQUIRE_AUTH and not is_loopback(C4C_BIND_HOST):
    raise ImproperlyConfigured(public_bind_refusal(C4C_BIND_HOST))
INSTALLED_APPS += ["axes", "accounts"]
# Axes first: it refuses a locked-out sign-in before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
MIDDLEWARE += ["axes.middleware.AxesMiddleware", "c4c_site.middleware.site_auth"]
API_MIDDLEWARE += ["c4c_site.middleware.api_auth"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "executions:list"
LOGOUT_REDIRECT_URL = "login"
# Sign-in throttling (admin and dashboard): C4C_LOGIN_FAILURE_LIMIT failed attempts for one
# username from one address lock that pair out for C4C_LOGIN_COOLOFF_MINUTES (429 meanwhile).
# Attempts are kept in the database, so every server process shares them. Behind a proxy,
# REMOTE_ADDR is the proxy's: see django-axes' AXES_IPWARE_* settings.
AXES_FAILURE_LIMIT = env_int("C4C_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("C4C_LOGIN_COOLOFF_MINUTES", 60, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Served beyond loopback, cookies go over HTTPS only; on loopback plain http must keep working.
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG and not LOOPBACK_ONLY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": os.environ.get("ACCESS_LOG_LEVEL", "WARNING")},
        "django_eventstream": {"level": "WARNING"},
    },
}

# Workflows: where JSON definition files are discovered, and the engine's guard rails.
C4C_WORKFLOW_DIRS = [
    Path(p) for p in env_list("C4C_WORKFLOW_DIRS", [str(BASE_DIR / "workflow_definitions")])
]
C4C_MAX_STEPS = env_int("C4C_MAX_STEPS", 10_000)
# Characters of a procedure node's input and output copied onto its span (0: none, the default).
C4C_SPAN_PAYLOAD_CHARS = env_int("C4C_SPAN_PAYLOAD_CHARS", 0, minimum=0)
# A span per procedure attempt under its node's span ("all"), or the node's span alone ("none").
C4C_PROCEDURE_SPANS = os.environ.get("C4C_PROCEDURE_SPANS", "all")
if C4C_PROCEDURE_SPANS not in {"all", "none"}:
    raise ImproperlyConfigured(
        f"C4C_PROCEDURE_SPANS must be 'all' or 'none', not {C4C_PROCEDURE_SPANS!r}"
    )
# A workflow's memory cost is bounded: its definition (each run stores a copy; larger ones are
# refused at submit) and each node's input once its templates are expanded (the node fails).
C4C_MAX_DEFINITION_BYTES = env_int("C4C_MAX_DEFINITION_BYTES", 1024 * 1024)
C4C_MAX_EXPANDED_BYTES = env_int("C4C_MAX_EXPANDED_BYTES", 1024 * 1024)
# custom.delay waits this fraction of its configured time (tests and demos run examples fast).
try:
    C4C_DELAY_SCALE = float(os.environ.get("C4C_DELAY_SCALE") or 1.0)
except ValueError as exc:
    raise ImproperlyConfigured("C4C_DELAY_SCALE must be a number, like 0.1") from exc

# Executions: how much of one input/output is stored before it is replaced by a truncation
# marker, how many runs the in-process pool runs at once, and where runs are dispatched.
C4C_MAX_PAYLOAD_BYTES = env_int("C4C_MAX_PAYLOAD_BYTES", 64 * 1024)
# Logs per node (workflows.logs): lines and bytes of messages kept per procedure attempt.
C4C_MAX_LOG_LINES = env_int("C4C_MAX_LOG_LINES", 1_000, minimum=1)
C4C_MAX_LOG_BYTES = env_int("C4C_MAX_LOG_BYTES", 256 * 1024, minimum=1)
# SQLite has one write lock and the runs share one GIL: 4 run threads did 5-15% more executions/s
# than 8 at 8-32 clients, with a p99 a third to a half lower (2 did better still, but would leave
# too few runs that wait on slow procedures side by side). PostgreSQL takes concurrent writers.
_SQLITE = DATABASES["default"]["ENGINE"] == "c4c_site.sqlite"
C4C_WORKER_THREADS = env_int("C4C_WORKER_THREADS", 4 if _SQLITE else 8)
C4C_DISPATCH = os.environ.get("C4C_DISPATCH", "inline")
if C4C_DISPATCH not in {"inline", "celery"}:
    raise ImproperlyConfigured(f"C4C_DISPATCH must be 'inline' or 'celery', not {C4C_DISPATCH!r}")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if C4C_DISPATCH == "celery" and not CELERY_BROKER_URL:
    raise ImproperlyConfigured("C4C_DISPATCH=celery needs CELERY_BROKER_URL")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Deployments (or test runs) sharing one broker keep apart by queue; web and workers must agree.
C4C_CELERY_QUEUE = os.environ.get("C4C_CELERY_QUEUE", "").strip() or "c4c"
CELERY_TASK_DEFAULT_QUEUE = C4C_CELERY_QUEUE
# Runs are sent with this app, imported at the first send: a web process on inline dispatch never
# loads Celery (c4c_site/__init__.py).
C4C_CELERY_APP = "c4c_site.celery.app"
# A broker that accepts connections and never answers must not hold a request: each send gives up
# after these connect and socket timeouts and is retried once (measured: ~2 s on Redis and
# RabbitMQ, where Redis's defaults hung for good); executions.dispatch stops waiting after
# C4C_BROKER_TIMEOUT whatever the transport does.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 2, "socket_connect_timeout": 2}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Durable runs (executions.leases): a run's lease lasts C4C_LEASE_SECONDS unrenewed, a queued
# run waits C4C_CLAIM_SECONDS for a worker before it is sent again, and a cancel reaches a run in
# another process within C4C_CANCEL_CHECK_SECONDS.
C4C_LEASE_SECONDS = env_int("C4C_LEASE_SECONDS", 30, minimum=1)
C4C_CLAIM_SECONDS = env_int("C4C_CLAIM_SECONDS", 300, minimum=1)
C4C_BROKER_TIMEOUT = env_int("C4C_BROKER_TIMEOUT", 5, minimum=1)

# Secrets (README, "Secrets"): C4C_SECRET_KEYS names the input keys whose values are redacted
# everywhere (comma-separated; replaces the default list of workflows.conf.DEFAULT_SECRET_KEYS).
# C4C_SECRETS_KEYS seals the real values a resumed run needs (comma-separated, newest first; the
# first seals, all unseal); unset, the key is derived from SECRET_KEY.
if "C4C_SECRET_KEYS" in os.environ:
    C4C_SECRET_KEYS = env_list("C4C_SECRET_KEYS", [])
C4C_SECRETS_KEYS = env_list("C4C_SECRETS_KEYS", [])

# The first part of a run's lease owner, `<server id>/<pid>/<boot>` (`c4c serve` sets host:port):
# it names the process in logs and the admin; liveness is the lease's, never the name's.
C4C_SERVER_ID = os.environ.get("C4C_SERVER_ID", "").strip() or socket.gethostname()
if "/" in C4C_SERVER_ID:
    raise ImproperlyConfigured(f"C4C_SERVER_ID must not contain '/', not {C4C_SERVER_ID!r}")

# Retention (executions.retention, `c4c prune`): how many days a finished run is kept, by its
# start time. Unset (the default) keeps every run forever: an upgrade deletes nothing by
# surprise. C4C_RETENTION_DAYS_COMPLETED / _FAILED / _CANCELLED override it per status ("forever"
# keeps that status). Running runs are never pruned. A serving process on inline dispatch prunes
# every C4C_PRUNE_INTERVAL_SECONDS; on Celery, beat does (c4c_site.celery). C4C_PRUNE_BATCH
# executions go per transaction (bench/prune.py times batch sizes; 200 had the lowest cost per row).


def env_days(name: str) -> float | None:
    """A retention in days (> 0), "forever" (infinity), or None when the variable is unset."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw == "forever":
        return float("inf")
    try:
        days = float(raw)
    except ValueError:
        days = 0.0
    if not days > 0:
        raise ImproperlyConfigured(f"{name} must be a number of days above 0 or 'forever'")
    return days


C4C_RETENTION_DAYS = env_days("C4C_RETENTION_DAYS")
C4C_RETENTION_DAYS_COMPLETED = env_days("C4C_RETENTION_DAYS_COMPLETED")
C4C_RETENTION_DAYS_FAILED = env_days("C4C_RETENTION_DAYS_FAILED")
C4C_RETENTION_DAYS_CANCELLED = env_days("C4C_RETENTION_DAYS_CANCELLED")
C4C_PRUNE_INTERVAL_SECONDS = env_int("C4C_PRUNE_INTERVAL_SECONDS", 600, minimum=1)
C4C_PRUNE_BATCH = env_int("C4C_PRUNE_BATCH", 200, minimum=1)


def redis_options(name: str, url: str) -> dict[str, Any]:
    """redis.Redis() keywords for a redis://, rediss:// or unix:// URL, as redis-py reads it.

    Nothing is dropped (user, password, db, TLS, query options): the hand-split URL this replaces
    lost the password, so every event failed against a Redis that requires one. Messages never
    repeat the URL, which may hold that password.
    """
    from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

    read_url: Callable[[str], dict[str, Any]] = parse_url  # redis-py leaves it unannotated
    try:
        options = read_url(url)
        path = urlsplit(url).path.strip("/")
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None
    connection_class = options.pop("connection_class", None)
    if connection_class is UnixDomainSocketConnection:
        options["unix_socket_path"] = options.pop("path")
    elif path and not path.isdigit():
        raise ImproperlyConfigured(f"{name}: the database after the host must be a number")
    if connection_class is SSLConnection:
        options["ssl"] = True
    return options


# Server-Sent Events. Replay for Last-Event-ID comes from a bounded in-process buffer: events per
# channel, channels, bytes in all. With C4C_EVENTS_REDIS_URL set, events fan out through Redis
# pub/sub to every web process and replay lives in Redis too, so a Celery worker's events reach
# every browser. EVENTSTREAM_* are django-eventstream's own settings, derived here.
for _old, _new in {
    "EVENTSTREAM_REPLAY_EVENTS": "C4C_REPLAY_EVENTS",
    "EVENTSTREAM_REPLAY_CHANNELS": "C4C_REPLAY_CHANNELS",
    "EVENTSTREAM_REPLAY_BYTES": "C4C_REPLAY_BYTES",
    "EVENTSTREAM_REDIS_URL": "C4C_EVENTS_REDIS_URL",
}.items():
    if _old in os.environ:
        raise ImproperlyConfigured(f"{_old} was renamed {_new}")
C4C_REPLAY_EVENTS = env_int("C4C_REPLAY_EVENTS", 500, minimum=1)
C4C_REPLAY_CHANNELS = env_int("C4C_REPLAY_CHANNELS", 5_000, minimum=1)
C4C_REPLAY_BYTES = env_int("C4C_REPLAY_BYTES", 8 * 1024 * 1024, minimum=1)
# Updates of one running execution within this many ms leave as one while the list stream is
# listened to (0: each as it comes).
C4C_UPDATE_COALESCE_MS = env_int("C4C_UPDATE_COALESCE_MS", 5, minimum=0)
# Group commit (executions.commits): node writes of concurrent runs committed together by one
# writer thread, waiting at most C4C_GROUP_COMMIT_WAIT_MS for more. Off by default (BENCHMARKS.md).
C4C_GROUP_COMMIT = env_bool("C4C_GROUP_COMMIT", False)
# Schedules (the schedules app; README "Schedules" says what each does).
C4C_SCHEDULES_ENABLED = env_bool("C4C_SCHEDULES_ENABLED", True)
C4C_SCHEDULE_MAX_CATCHUP = env_int("C4C_SCHEDULE_MAX_CATCHUP", 100, minimum=1)
C4C_SCHEDULE_GRACE_SECONDS = env_float("C4C_SCHEDULE_GRACE_SECONDS", 10, minimum=0)
C4C_SCHEDULE_TICK_SECONDS = env_float("C4C_SCHEDULE_TICK_SECONDS", 0.5, minimum=0.05)
C4C_SCHEDULE_RETRY_SECONDS = env_float("C4C_SCHEDULE_RETRY_SECONDS", 10, minimum=0.1)
C4C_GROUP_COMMIT_WAIT_MS = env_int("C4C_GROUP_COMMIT_WAIT_MS", 0, minimum=0)
# `c4c serve --workers N` hands its children its event hub's socket and key (c4c_site.cli,
# executions.live.fanout): without Redis, their events fan out and replay through it.
C4C_FANOUT_SOCKET = os.environ.get("C4C_FANOUT_SOCKET", "")
C4C_FANOUT_KEY = os.environ.get("C4C_FANOUT_KEY", "")
if os.environ.get("C4C_EVENTS_REDIS_URL"):
    EVENTSTREAM_REDIS = redis_options("C4C_EVENTS_REDIS_URL", os.environ["C4C_EVENTS_REDIS_URL"])
    EVENTSTREAM_STORAGE_CONNECTION = EVENTSTREAM_REDIS
    EVENTSTREAM_STORAGE_CLASS = "django_eventstream.storage.RedisStorage"
elif C4C_FANOUT_SOCKET:
    EVENTSTREAM_STORAGE_CLASS = "executions.live.fanout.HubEventStorage"
else:
    EVENTSTREAM_STORAGE_CLASS = "executions.live.buffer.MemoryEventStorage"
C4C_MAX_QUEUED = env_int("C4C_MAX_QUEUED", 1_000)
# POST /workflow/hooks/<hookId> (executions.api.hooks): a larger delivery is refused with 413.
C4C_HOOK_MAX_BYTES = env_int("C4C_HOOK_MAX_BYTES", 1024 * 1024, minimum=1)

# Bounded reads (executions.serializers, executions.api.views): no list page or execution body is
# larger than C4C_MAX_RESPONSE_BYTES (a page ends early with a nextCursor, an execution too large
# leaves out its heaviest parts and says so in `tooLarge`), and at most C4C_LIST_READS list pages
# are read at once per process, each thread resting as long as it computed, so clients paging
# through history never starve the runs.
C4C_MAX_RESPONSE_BYTES = env_int("C4C_MAX_RESPONSE_BYTES", 8 * 1024 * 1024, minimum=64 * 1024)
C4C_LIST_READS = env_int("C4C_LIST_READS", 1, minimum=1)

# Metrics (GET /metrics, executions.metrics). Without C4C_METRICS_DIR each process counts in its
# own memory: the server and its run pool are one process, so that is the whole service. Several
# processes on one host (more than one server, Celery workers) set C4C_METRICS_DIR to one
# directory: each writes its own files there (prometheus-client's multiprocess mode, which reads
# PROMETHEUS_MULTIPROC_DIR when first imported: hence set here) and /metrics sums them all.
C4C_METRICS_DIR = (
    os.environ.get("C4C_METRICS_DIR", "").strip()
    or os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
)
if C4C_METRICS_DIR:
    Path(C4C_METRICS_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = C4C_METRICS_DIR

# Headers. Pages get a Content-Security-Policy that allows nothing inline and nothing from
# elsewhere (django-csp); the API's own chain sends its policy and the other headers
# (c4c_site.headers). Behind a TLS-terminating proxy (README, "Behind TLS"):
# DJANGO_SECURE_PROXY_SSL_HEADER names the header the proxy sets to "https" (X-Forwarded-Proto),
# which also makes cookies Secure by default; HSTS is sent on HTTPS once DJANGO_SECURE_HSTS_SECONDS
# is above 0.
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)
API_MIDDLEWARE.insert(0, "c4c_site.headers.api_headers")
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
_PROXY_SSL_HEADER = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{_PROXY_SSL_HEADER.upper().replace('-', '_')}", "https")
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
