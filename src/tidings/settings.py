"""Tidings settings: one module, driven by environment variables.

Every setting an operator may change is read here with a small typed helper; a bad value
stops the start with a message that names the variable. Secrets are generated on first
run and kept in the data directory (never in the repository).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django_countries.data import COUNTRIES

BASE_DIR = Path(__file__).resolve().parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def envcountryyears(name: str) -> dict[str, int]:
    """ "DE=10, NL=7": years per ISO 3166-1 country code."""
    found: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in env(name).split(","))):
        code, _, years = item.partition("=")
        code = code.strip().upper()
        if code not in COUNTRIES or not years.strip().isdigit() or int(years) < 1:
            raise ImproperlyConfigured(
                f"{name} must list COUNTRY=YEARS pairs (DE=10, NL=7), not {item!r}"
            )
        found[code] = int(years)
    return found


def envnetworks(name: str) -> list[str]:
    """A comma-separated list of IP addresses or networks, as networks ("10.0.0.0/8")."""
    networks = []
    for entry in (e.strip() for e in env(name).split(",")):
        if not entry:
            continue
        try:
            if entry.isdigit():  # "0", "1": the number of hops this setting once was
                raise ValueError
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} lists the proxies' IP addresses or networks "
                f"(e.g. 10.0.0.5,10.1.0.0/16), not {entry!r}"
            ) from None
    return networks


DATA_DIR = Path(env("TIDINGS_DATA_DIR", str(Path.cwd() / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_file(name: str, make: Callable[[], str]) -> str:
    """Read a secret from the data directory, creating it (mode 600) on first run."""
    path = DATA_DIR / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


DEBUG = envbool("TIDINGS_DEBUG", False)
# Production hardening (secure cookies, HSTS, SSL redirect) is on unless the operator
# runs the local embedded default, which serves plain http on 127.0.0.1.
SECURE = envbool("TIDINGS_SECURE", False)
# A test clock the automations' scheduler and the A/B tests go by, moved forward with
# `tidings clock advance 2d` (core/clock.py): for trying a series by hand in development,
# never in production, so it needs TIDINGS_DEBUG and refuses TIDINGS_SECURE.
TEST_CLOCK = envbool("TIDINGS_TEST_CLOCK", False)
if TEST_CLOCK and (SECURE or not DEBUG):
    raise ImproperlyConfigured(
        "TIDINGS_TEST_CLOCK moves the schedulers' time and is for development only: it "
        "needs TIDINGS_DEBUG=true and cannot run with TIDINGS_SECURE=true"
    )
SECRET_KEY = env("TIDINGS_SECRET_KEY") or _secret_file(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
ALLOWED_HOSTS = [h.strip() for h in env("TIDINGS_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]
# Links use it with https when SECURE is on, whatever its scheme (core.baseurl).
# Without it, links point at the port this server listens on (TIDINGS_PORT), as
# `tidings up --port` makes them: a worker started alone makes the same links.
PORT = envint("TIDINGS_PORT", 8000)
BASE_URL = env("TIDINGS_BASE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
CSRF_TRUSTED_ORIGINS = [BASE_URL]
if SECURE and BASE_URL.lower().startswith("http://"):
    CSRF_TRUSTED_ORIGINS.append("https://" + BASE_URL[len("http://") :])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "ninja",  # serves the API docs page's own static files: no CDN
    "tidings.core",
    "tidings.accounts",
    "tidings.privacy",
    "tidings.staff",
    "tidings.billing",
    "tidings.breaches",
    "tidings.desk",
    "tidings.outbox",
    "tidings.public",
    "tidings.audience",
    "tidings.transfer",
    "tidings.campaigns",
    "tidings.sending",
    "tidings.automations",
    "tidings.consent",
    "anymail",
    "django_countries",  # the countries' names in French for the billing country
]

MIDDLEWARE = [
    "tidings.core.clientip.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tidings.core.headers.PrivacyHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The visitor's language: their choice (cookie) or the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # A logged-in user's own language and time zone (My Account) win over the browser's.
    "tidings.accounts.locale.UserLocaleMiddleware",
    "tidings.accounts.sessions.IdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Before anything reads a body (CSRF's check reads the form): a body over the upload
    # limit is refused with 413 unread (core/uploads.py).
    "tidings.core.uploads.BodySizeLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "tidings.consent.middleware.ConsentMiddleware",
    "tidings.consent.middleware.PageViewMiddleware",
]

ROOT_URLCONF = "tidings.urls"
WSGI_APPLICATION = "tidings.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tidings.core.context_processors.operator",
                "tidings.consent.context_processors.consent",
                "tidings.breaches.context_processors.breach_notices",
            ],
        },
    },
]

# Database: embedded SQLite in the data directory unless DATABASE_URL names another.
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'tidings.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker read while the other writes; IMMEDIATE
    # transactions turn lock upgrades into a short wait instead of "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
# Under ASGI (`tidings web` serves tidings.asgi) each request runs in a thread of its own:
# a connection kept per thread (CONN_MAX_AGE) would be opened anew for every request, so
# the web server's processes borrow theirs from a pool (psycopg_pool) instead. `tidings
# web` turns it on for its processes only (Celery's forked workers keep their own).
DB_POOL = envbool("TIDINGS_DB_POOL", False)
if DB_POOL and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": envint("TIDINGS_DB_POOL_SIZE", 20),
        "timeout": 10,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Cache: Redis when configured (login throttling is shared by every web process),
# otherwise a table in the database (atomic counters, which a file cache lacks). Django's
# Redis cache, with its client kept for the process (tidings/core/rediscache.py).
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "tidings.core.rediscache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "tidings_cache",
        }
    }

# Live chat (desk.chat): Channels' layer carries chat messages between the web server's
# processes, on Redis; without Redis it lives in the memory of the one process that
# `tidings web` then runs (the embedded default).
ASGI_APPLICATION = "tidings.asgi.application"
# HTTP requests each web process runs at once (each in a thread); more wait their turn.
WEB_THREADS = envint("TIDINGS_WEB_THREADS", 4)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s timeout by default: as long as the layer's
                # blocking receive (BZPOPMIN, 5 s), which then fails and kills the
                # socket's consumer (found by bench/chat_load.py).
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": "tidings-chat",
                "capacity": 1000,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
# Customers land on their dashboard (staff are sent on to My Account from there).
LOGIN_REDIRECT_URL = "sending:dashboard"
LOGOUT_REDIRECT_URL = "public:home"

# Login throttling and lockout (P9): counted in the cache, so no IP address or login
# name is written to the database.
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = envint("TIDINGS_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envint("TIDINGS_LOGIN_LOCKOUT_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
# Behind trusted proxies, the client address they report (TIDINGS_TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "tidings.core.clientip.client_ip"
# Failures are counted for the address in its stored form: a change of case is no new try.
AXES_USERNAME_CALLABLE = "tidings.accounts.throttling.login_identity"
# Failed logins one client may make in an hour, across all addresses (a password spray).
LOGIN_IP_FAILURE_LIMIT = envint("TIDINGS_LOGIN_IP_FAILURE_LIMIT", 30)
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_DISABLE_ACCESS_LOG = True

# Sessions and CSRF (P8, P9): HttpOnly, SameSite, and Secure + HSTS in production.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("TIDINGS_SESSION_HOURS", 12) * 3600
# A session unused this long ends (accounts.sessions): customers, and staff (shorter:
# they see personal data of every account).
SESSION_IDLE_MINUTES = envint("TIDINGS_SESSION_IDLE_MINUTES", 120)
STAFF_SESSION_IDLE_MINUTES = envint("TIDINGS_STAFF_SESSION_IDLE_MINUTES", 30)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
CSRF_COOKIE_HTTPONLY = True
# The cookie that remembers a visitor's consent choice (consent.cookies lists them all).
CONSENT_COOKIE_NAME = "tidings_consent"
# Our own page views (consent.services, P26): with Redis, each view is one HINCRBY and a
# worker task writes the counts every few seconds (`flush_page_views`, exactly once);
# without Redis each view writes its counter in the request (the embedded default).
PAGE_VIEW_BUFFER = envbool("TIDINGS_PAGE_VIEW_BUFFER", bool(REDIS_URL))
SECURE_SSL_REDIRECT = SECURE
SECURE_HSTS_SECONDS = 31536000 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Field encryption at rest (P8): a list of Fernet keys, newest first; older keys still
# decrypt, `tidings rotate-keys` re-encrypts everything with the newest.
FIELD_ENCRYPTION_KEYS = [
    k.strip()
    for k in (
        env("TIDINGS_FIELD_KEYS")
        or _secret_file(
            "field_keys",
            lambda: __import__("cryptography.fernet").fernet.Fernet.generate_key().decode(),
        )
    ).split(",")
    if k.strip()
]
# Keyed hash of erased emails for the suppression list (PROMISES "decisions").
SUPPRESSION_KEY = env("TIDINGS_SUPPRESSION_KEY") or _secret_file(
    "suppression_key", lambda: secrets.token_hex(32)
)
SUPPRESSION_ENABLED = envbool("TIDINGS_SUPPRESSION", True)

# Subscription forms (audience): the double opt-in window (a confirmation link expires,
# and an unconfirmed signup is deleted, after `confirm_days`), and the limits that keep
# bots and mail bombing out: sign-ups per IP address and per list each hour, and
# confirmation mails per address each day. Counted in the cache (Redis in production).
SIGNUP = {
    "confirm_days": envint("TIDINGS_SIGNUP_CONFIRM_DAYS", 7),
    "per_ip_hour": envint("TIDINGS_SIGNUP_PER_IP_HOUR", 10),
    "per_list_hour": envint("TIDINGS_SIGNUP_PER_LIST_HOUR", 600),
    "mails_per_address_day": envint("TIDINGS_SIGNUP_MAILS_PER_ADDRESS_DAY", 3),
}
# A restriction of processing (GDPR art. 18) ends this many days after the person was
# told it will (art. 18(3): told before it is lifted).
RESTRICTION_NOTICE_DAYS = envint("TIDINGS_RESTRICTION_NOTICE_DAYS", 14)
# A contact's preference link lets them edit their details for this many days; leaving
# a list through an authentic link works at any age (P21).
PREFERENCE_LINK_DAYS = envint("TIDINGS_PREFERENCE_LINK_DAYS", 180)
# Reverse proxies in front of Tidings (addresses or networks, comma-separated; empty:
# none). X-Forwarded-For and X-Forwarded-Proto are believed only from them.
TRUSTED_PROXIES = envnetworks("TIDINGS_TRUSTED_PROXIES")

LANGUAGE_CODE = "en"
# The interface, every mail and the policy exist in these languages (src/tidings/locale).
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Set only when a visitor picks a language in the footer (consent/cookies.py lists it).
LANGUAGE_COOKIE_NAME = "tidings_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = SECURE
TIME_ZONE = env("TIDINGS_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# The site-wide stylesheet lives in src/tidings/static, which is no app's static folder.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = DATA_DIR / "media"

# Mail: every message goes through Tidings's one pipeline (tidings.sending: ledger,
# connection slots, rate limits, DKIM); Django's own mail (password resets) enters it
# through this backend. Where it ends without a relay: the local outbox (readable by
# staff in the browser), the operator's SMTP server, or (tests only) memory.
EMAIL_BACKEND = "tidings.sending.backend.PipelineBackend"
EMAIL_DELIVERY = env("TIDINGS_EMAIL", "outbox")
if EMAIL_DELIVERY not in ("outbox", "smtp", "memory"):
    raise ImproperlyConfigured("TIDINGS_EMAIL must be 'outbox' or 'smtp'")
EMAIL_HOST = env("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
# The operator's SMTP server's limits, as a relay's: connections at once (all workers
# together), messages per second and per hour (0: no limit).
EMAIL_MAX_CONNECTIONS = envint("TIDINGS_EMAIL_MAX_CONNECTIONS", 4)
EMAIL_RATE_PER_SECOND = envint("TIDINGS_EMAIL_RATE_PER_SECOND", 0)
EMAIL_RATE_PER_HOUR = envint("TIDINGS_EMAIL_RATE_PER_HOUR", 0)
EMAIL_TIMEOUT = 30

# Celery: Redis or RabbitMQ when configured, otherwise a broker in the data directory
# that needs no server (kombu's filesystem transport).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue = DATA_DIR / "broker"
    for sub in ("in", "processed"):
        (_queue / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "in"),
        "data_folder_out": str(_queue / "in"),
        "processed_folder": str(_queue / "processed"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task of a worker that died unacknowledged goes back to the queue after this many
    # seconds. Re-running a sending batch is harmless (its claims are conditional).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": envint("TIDINGS_BROKER_VISIBILITY_TIMEOUT", 3600)
    }
CELERY_TASK_ALWAYS_EAGER = envbool("TIDINGS_TASKS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "beat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The sending engine (docs/sending.md).
SENDING: dict[str, Any] = {
    # A worker that has not finished a claimed delivery within this time is presumed
    # dead; its claims are recovered (at most once: the one in flight is not retried).
    "lease_seconds": envint("TIDINGS_SENDING_LEASE_SECONDS", 600),
    "batch_size": envint("TIDINGS_SENDING_BATCH", 500),
    "max_attempts": envint("TIDINGS_SENDING_MAX_ATTEMPTS", 6),
    "retry_base_seconds": envint("TIDINGS_SENDING_RETRY_SECONDS", 60),
    "soft_bounce_limit": envint("TIDINGS_SOFT_BOUNCE_LIMIT", 3),
    "smtp_timeout": envint("TIDINGS_SMTP_TIMEOUT", 30),
    # Seconds to open a connection to a relay: a host that swallows packets gives up
    # here instead of holding a worker for the whole command timeout.
    "smtp_connect_timeout": envint("TIDINGS_SMTP_CONNECT_TIMEOUT", 5),
    # The envelope sender (Return-Path) of campaigns; DSNs come back there.
    "bounce_address": env("TIDINGS_BOUNCE_ADDRESS"),
    # The bounce mailbox read by the scheduler: pop3://user:pass@host:port or pop3s://,
    # imap:// or imaps:// (empty: no mailbox).
    "bounce_mailbox": env("TIDINGS_BOUNCE_MAILBOX"),
    "tracking_days": envint("TIDINGS_TRACKING_DAYS", 30),
    # A click link in a campaign redirects this long after the campaign was sent, then
    # shows a page saying it has expired.
    "click_link_days": envint("TIDINGS_CLICK_LINK_DAYS", 365),
    # Opens and clicks go to a Redis stream (one XADD in the request) and a worker task
    # writes them in batches (`tracking.drain`, every few seconds); without Redis each
    # request writes its own (the embedded default).
    "tracking_stream": envbool("TIDINGS_TRACKING_STREAM", bool(REDIS_URL)),
    # The ledger of messages other than campaign deliveries (core.mail.post) keeps them
    # this long (TIDINGS_TRANSACTIONAL_DAYS is the older name of the same setting).
    "outbound_days": envint("TIDINGS_OUTBOUND_DAYS", envint("TIDINGS_TRANSACTIONAL_DAYS", 30)),
    # Connections one batch of a campaign opens to its relay at once, each with its
    # own claims (within the relay's max_connections): docs/sending.md.
    "streams": envint("TIDINGS_SENDING_STREAMS", 4),
    # A send to more recipients than this asks the customer to confirm their number
    # (sending.checklist; the page and the API both).
    "confirm_over": envint("TIDINGS_CONFIRM_SEND_OVER", 1_000),
}
# Hosts a customer names (their SMTP relay) must be public addresses (core.netguard):
# never loopback, private, link-local or the cloud's metadata service. The operator may
# allow some explicitly: comma-separated names, addresses or CIDRs, e.g. "10.0.5.0/24".
ALLOWED_RELAY_HOSTS = [
    h.strip() for h in env("TIDINGS_ALLOWED_RELAY_HOSTS").split(",") if h.strip()
]
# Due enrolments the automations' scheduler takes per transaction (docs/automations.md):
# each (automation, step) of them is done by a few set-based statements.
AUTOMATIONS_CHUNK = envint("TIDINGS_AUTOMATIONS_CHUNK", 25_000)
# The same for the customers' webhook endpoints (docs/automations.md): an endpoint is
# https on a public address, or plain http on a host the operator allows here.
ALLOWED_WEBHOOK_HOSTS = [
    h.strip() for h in env("TIDINGS_ALLOWED_WEBHOOK_HOSTS").split(",") if h.strip()
]
# Sending domains (docs/sending.md, "Sending domains"): a customer's domain is used in
# From only once a TXT record proves it is theirs and its DKIM key is published. The
# resolver asked ("host:port"; empty: the system's), and how often proof is checked again.
DNS_RESOLVER = env("TIDINGS_DNS_RESOLVER")
DNS_TIMEOUT_SECONDS = envint("TIDINGS_DNS_TIMEOUT", 5)
DOMAIN_RECHECK_HOURS = envint("TIDINGS_DOMAIN_RECHECK_HOURS", 24)
# The HTTP API's brakes, per key and per account: requests per minute (0: no limit).
API_RATE_PER_KEY = envint("TIDINGS_API_RATE_PER_KEY", 600)
API_RATE_PER_ACCOUNT = envint("TIDINGS_API_RATE_PER_ACCOUNT", 1200)
# Hard limits on rendering a customer's template (docs/campaigns.md): every render runs
# in a render process of its own, killed when one message takes longer than `timeout`
# seconds of wall-clock time or allocates more than `memory_mb` beyond what the process
# holds at its start; `processes` such processes at most per web or worker process.
RENDER: dict[str, Any] = {
    "timeout": envint("TIDINGS_RENDER_TIMEOUT", 5),
    "memory_mb": envint("TIDINGS_RENDER_MEMORY_MB", 512),
    "processes": envint("TIDINGS_RENDER_PROCESSES", 2),
}
# Provider webhooks (bounces, complaints) need HTTP basic auth "user:password"; without
# it the webhook URLs are not served at all, so no forged event can be accepted.
ANYMAIL = {
    "WEBHOOK_SECRET": env("TIDINGS_WEBHOOK_SECRET"),
    "MAILGUN_WEBHOOK_SIGNING_KEY": env("TIDINGS_MAILGUN_WEBHOOK_SIGNING_KEY"),
    # MailerSend signs its inbound route with a secret of its own (docs/desk.md).
    "MAILERSEND_INBOUND_SECRET": env("TIDINGS_MAILERSEND_INBOUND_SECRET"),
    # Brevo's inbound webhook names attachments only: anymail fetches them with this key.
    "BREVO_API_KEY": env("TIDINGS_BREVO_API_KEY"),
}

# The operator (P11, P34, DESIGN principle 7): everything the policy says about who runs
# this instance comes from here.
OPERATOR = {
    "name": env("TIDINGS_OPERATOR_NAME", "Example Mail Ltd"),
    "privacy_contact_name": env("TIDINGS_PRIVACY_CONTACT_NAME", "Privacy Officer"),
    "privacy_email": env("TIDINGS_PRIVACY_EMAIL", "privacy@example.com"),
    "support_email": env("TIDINGS_SUPPORT_EMAIL", "support@example.com"),
    "postal_address": env("TIDINGS_POSTAL_ADDRESS", "1 Example Street, 1000 Example City"),
    # On every invoice (EU VAT directive art. 226): the seller's VAT number and country
    # (two letters; a business buyer with a VAT number of another EU country is invoiced
    # under the reverse charge). Empty country: no reverse charge is applied.
    "vat_number": env("TIDINGS_OPERATOR_VAT_NUMBER", ""),
    "country": env("TIDINGS_OPERATOR_COUNTRY", "").upper(),
    "data_location": env("TIDINGS_DATA_LOCATION", "the European Union"),
    "authority_name": env("TIDINGS_AUTHORITY_NAME", "your national data-protection authority"),
    "authority_url": env(
        "TIDINGS_AUTHORITY_URL", "https://edpb.europa.eu/about-edpb/about-edpb/members_en"
    ),
}
if OPERATOR["country"] and OPERATOR["country"] not in COUNTRIES:
    raise ImproperlyConfigured(
        "TIDINGS_OPERATOR_COUNTRY must be an ISO 3166-1 two-letter code, "
        f"not {OPERATOR['country']!r}"
    )
# Personal-data breaches (docs/breaches.md): the jurisdictions besides the operator's own
# whose rules on telling of a breach apply ("CH,US-TX"; breaches.obligations.RULES says
# which are known, and the start stops on any other).
BREACHES = {
    "jurisdictions": [
        code.strip().upper()
        for code in env("TIDINGS_BREACH_JURISDICTIONS").split(",")
        if code.strip()
    ],
}
DEFAULT_FROM_EMAIL = env("TIDINGS_FROM_EMAIL", f"{OPERATOR['name']} <no-reply@example.com>")

# Orders and payment (docs/billing.md). The gateway customers pay on: "test" (served by
# Tidings itself, no money moves: the embedded default) or "stripe" (Stripe Checkout).
BILLING: dict[str, Any] = {
    "gateway": env("TIDINGS_PAYMENT_GATEWAY", "test"),
    # Payment by bank transfer offered beside the gateway; billing staff mark it paid.
    "bank_transfer": envbool("TIDINGS_BANK_TRANSFER", False),
    # Credits a new account gets (one credit = one message).
    "free_credits": envint("TIDINGS_FREE_CREDITS", 1_000),
    # Automatic recharges of one account at most, a day and in 30 days (billing.recharge):
    # a bug or a loop cannot drain a customer's card.
    "recharge_per_day": envint("TIDINGS_RECHARGE_PER_DAY", 3),
    "recharge_per_month": envint("TIDINGS_RECHARGE_PER_MONTH", 10),
    # Campaigns spend credits (or stay within a plan's contacts). Off: sending is free.
    "credits_required": envbool("TIDINGS_CREDITS_REQUIRED", True),
    # A webhook signed longer ago than this is refused (a replay).
    "webhook_tolerance": envint("TIDINGS_WEBHOOK_TOLERANCE_SECONDS", 300),
    # Raw webhook requests are kept this long (they hold billing identities).
    "raw_webhook_days": envint("TIDINGS_RAW_WEBHOOK_DAYS", 90),
    # The test gateway's signing secrets (comma-separated: two during a rotation);
    # empty: one derived from the secret key.
    "test_secrets": [s for s in env("TIDINGS_TEST_GATEWAY_SECRETS").split(",") if s],
    "stripe_api_key": env("TIDINGS_STRIPE_API_KEY"),
    "stripe_webhook_secrets": [s for s in env("TIDINGS_STRIPE_WEBHOOK_SECRETS").split(",") if s],
    # Tests point the official library at a local fake of the endpoints used.
    "stripe_api_base": env("TIDINGS_STRIPE_API_BASE"),
    # The EU's VIES service, asked whether a business buyer's VAT number is registered
    # before the reverse charge applies (billing/vies.py; tests point it at a local fake).
    "vies_url": env("TIDINGS_VIES_URL", "https://ec.europa.eu/taxation_customs/vies/rest-api"),
    "vies_timeout": envint("TIDINGS_VIES_TIMEOUT_SECONDS", 8),
}

# Retention (P12, P13, P14): days unless named otherwise.
RETENTION: dict[str, Any] = {
    "grace_days": envint("TIDINGS_ERASURE_GRACE_DAYS", 45),
    "erasure_deadline_days": envint("TIDINGS_ERASURE_DEADLINE_DAYS", 60),
    "invoice_years": envint("TIDINGS_INVOICE_RETENTION_YEARS", 10),
    # An invoice is kept for the longer of its seller's and its buyer's country's periods
    # (the law of either may require it); a country not listed: invoice_years.
    "invoice_years_by_country": envcountryyears("TIDINGS_INVOICE_RETENTION_YEARS_BY_COUNTRY"),
    "unconfirmed_signup_days": envint("TIDINGS_UNCONFIRMED_SIGNUP_DAYS", 14),
    "outbox_days": envint("TIDINGS_OUTBOX_DAYS", 30),
    "audit_years": envint("TIDINGS_AUDIT_RETENTION_YEARS", 3),
    "consent_years": envint("TIDINGS_CONSENT_RETENTION_YEARS", 3),
}
if RETENTION["grace_days"] >= RETENTION["erasure_deadline_days"]:
    raise ImproperlyConfigured(
        "TIDINGS_ERASURE_GRACE_DAYS must be shorter than TIDINGS_ERASURE_DEADLINE_DAYS"
    )


# A new third party takes effect this many days after it is announced to customers (P24);
# the policy promises at least MIN_SUBPROCESSOR_NOTICE_DAYS, so less stops the start.
MIN_SUBPROCESSOR_NOTICE_DAYS = 30
CONSENT_NOTICE_DAYS = envint("TIDINGS_SUBPROCESSOR_NOTICE_DAYS", MIN_SUBPROCESSOR_NOTICE_DAYS)
if CONSENT_NOTICE_DAYS < MIN_SUBPROCESSOR_NOTICE_DAYS:
    raise ImproperlyConfigured(
        f"TIDINGS_SUBPROCESSOR_NOTICE_DAYS must be at least {MIN_SUBPROCESSOR_NOTICE_DAYS} "
        f"(the notice the policy promises before a new sub-processor takes effect), "
        f"not {CONSENT_NOTICE_DAYS}"
    )
# The support desk (docs/desk.md): closed conversations are deleted after
# `retention_months` (P12); attachments larger than `attachment_max_bytes` are refused,
# and the inbound SMTP listener refuses messages larger than `message_max_bytes`.
DESK: dict[str, int] = {
    "retention_months": envint("TIDINGS_DESK_RETENTION_MONTHS", 24),
    "attachment_max_bytes": envint("TIDINGS_DESK_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024),
    "message_max_bytes": envint("TIDINGS_DESK_MESSAGE_MAX_BYTES", 25 * 1024 * 1024),
    # Acknowledgements to one address a day: a brake on mail loops.
    "acks_per_address_per_day": envint("TIDINGS_DESK_ACKS_PER_DAY", 5),
    # Public contact form: posts per client IP an hour; and the seconds a person takes
    # at least to fill it (faster is a bot), and at most before the form is stale.
    "form_posts_per_hour": envint("TIDINGS_DESK_FORM_POSTS_PER_HOUR", 10),
    "form_min_seconds": envint("TIDINGS_DESK_FORM_MIN_SECONDS", 3),
    "form_max_seconds": envint("TIDINGS_DESK_FORM_MAX_SECONDS", 86400),
    "inbound_port": envint("TIDINGS_INBOUND_PORT", 2525),
    # SLA clocks of a normal conversation: working hours (DESK_HOURS) to the first
    # answer and to the solution, paused while the conversation waits on the customer.
    "first_response_hours": envint("TIDINGS_DESK_FIRST_RESPONSE_HOURS", 8),
    "resolution_hours": envint("TIDINGS_DESK_RESOLUTION_HOURS", 72),
    # Live chat: the longest message (characters), and how many one conversation may
    # send in `chat_window_seconds` (more are refused, each told so).
    "chat_message_max_chars": envint("TIDINGS_CHAT_MESSAGE_MAX_CHARS", 4000),
    "chat_messages_per_window": envint("TIDINGS_CHAT_MESSAGES_PER_WINDOW", 20),
    "chat_window_seconds": envint("TIDINGS_CHAT_WINDOW_SECONDS", 10),
    # How long a visitor's chat link works, and how long an agent counts as online
    # after the desk's page last said so (it says so every 20 seconds).
    "chat_token_hours": envint("TIDINGS_CHAT_TOKEN_HOURS", 12),
    "chat_presence_seconds": envint("TIDINGS_CHAT_PRESENCE_SECONDS", 60),
}
# The SLA clocks count working time (desk/worktime.py): the operator's time zone,
# working days ("mon-fri", "mon,tue,thu"), hours ("09:00-17:00", or several periods
# "08:30-12:00,13:00-17:30") and holidays ("2026-12-25,2027-01-01"). Checked at start.
DESK_HOURS: dict[str, str] = {
    "time_zone": env("TIDINGS_DESK_TIME_ZONE", TIME_ZONE),
    "days": env("TIDINGS_DESK_WORKING_DAYS", "mon-fri"),
    "hours": env("TIDINGS_DESK_WORKING_HOURS", "09:00-17:00"),
    "holidays": env("TIDINGS_DESK_HOLIDAYS", ""),
}
# Per priority, hours of working time to the first answer and to the solution ("4,24");
# a normal conversation's are TIDINGS_DESK_FIRST_RESPONSE_HOURS / _RESOLUTION_HOURS.
DESK_SLA: dict[str, str] = {
    "low": env("TIDINGS_DESK_SLA_LOW", "16,120"),
    "high": env("TIDINGS_DESK_SLA_HIGH", "4,24"),
    "urgent": env("TIDINGS_DESK_SLA_URGENT", "1,8"),
}
# An urgent conversation's clocks count every hour, nights and weekends too.
DESK_URGENT_CALENDAR_TIME = envbool("TIDINGS_DESK_URGENT_CALENDAR_TIME", True)
# Where `tidings inbound` listens (the port is DESK's): loopback unless told otherwise.
DESK_INBOUND_HOST = env("TIDINGS_INBOUND_HOST", "127.0.0.1")
# The authserv-id of the operator's own MTA (or provider), whose Authentication-Results
# header is believed about inbound mail (desk/authentication.py); empty: none is.
DESK_INBOUND_AUTHSERV_ID = env("TIDINGS_INBOUND_AUTHSERV_ID", "")
# Forwarders whose ARC seal is believed about inbound mail (desk/authentication.py): the
# d= domains of their ARC-Seal, comma-separated (the operator's own MX, a list host).
DESK_INBOUND_ARC_SEALERS = [
    d.strip() for d in env("TIDINGS_INBOUND_ARC_SEALERS").split(",") if d.strip()
]
# An IMAP mailbox the desk polls for mail to the support address (docs/desk.md, "Mail
# in"); empty host: none. `tls` is "ssl" (port 993), "starttls" or "none" (loopback
# only). Each message stored is flagged Seen, or moved to `done_folder` when one is named.
DESK_IMAP: dict[str, Any] = {
    "host": env("TIDINGS_DESK_IMAP_HOST"),
    "port": envint("TIDINGS_DESK_IMAP_PORT", 993),
    "tls": env("TIDINGS_DESK_IMAP_TLS", "ssl").lower(),
    "user": env("TIDINGS_DESK_IMAP_USER"),
    "password": env("TIDINGS_DESK_IMAP_PASSWORD"),
    "folder": env("TIDINGS_DESK_IMAP_FOLDER", "INBOX"),
    "done_folder": env("TIDINGS_DESK_IMAP_DONE_FOLDER"),
    # A CA certificate file (PEM) to trust instead of the system's, for a private CA.
    "ca_file": env("TIDINGS_DESK_IMAP_CA_FILE"),
}
if DESK_IMAP["tls"] not in ("ssl", "starttls", "none"):
    raise ImproperlyConfigured(
        f"TIDINGS_DESK_IMAP_TLS must be ssl, starttls or none, not {DESK_IMAP['tls']!r}"
    )
EMAIL_CONFIRMATION_DAYS = envint("TIDINGS_EMAIL_CONFIRMATION_DAYS", 3)

# Imports and exports of contacts: where their files live, the largest upload accepted
# (enforced while the upload streams to disk), and how long exports and import reports
# stay downloadable before a scheduled job deletes them.
TRANSFER_DIR = DATA_DIR / "transfer"
TRANSFER_UPLOAD_MAX_BYTES = envint("TIDINGS_UPLOAD_MAX_BYTES", 2 * 1024**3)
# The largest image the media library takes (read into memory up to this, no further).
TIDINGS_MEDIA_MAX_BYTES = envint("TIDINGS_MEDIA_MAX_BYTES", 10 * 1024**2)
TRANSFER_FILE_DAYS = envint("TIDINGS_EXPORT_DAYS", 7)
# How long a worker holds a long job (import, export, archive) between two signs of life
# before the recovery sweep (every 5 minutes) gives it to another (core/leases.py).
JOB_LEASE_SECONDS = envint("TIDINGS_JOB_LEASE_SECONDS", 600)
# What a workbook (XLSX, XLS) may unpack to and hold, checked while it is read in the
# worker (transfer/workbooks.py): a 254 KB zip can unpack to 100 MB. A million contacts
# with a few columns fit well within these; past them the customer is asked for a CSV.
TRANSFER_SHEET_MAX_BYTES = envint("TIDINGS_SHEET_MAX_BYTES", 1024**3)
TRANSFER_SHEET_MAX_CELLS = envint("TIDINGS_SHEET_MAX_CELLS", 30_000_000)
TRANSFER_SHEET_MAX_STRINGS = envint("TIDINGS_SHEET_MAX_STRINGS", 3_000_000)
TRANSFER_SHEET_MAX_STRING_CHARS = envint("TIDINGS_SHEET_MAX_STRING_CHARS", 128 * 1024**2)
# Files under TRANSFER_DIR/imports that no import names (a request killed mid-upload, a
# worker killed mid-analysis) are deleted by the hourly sweep once this old.
# Files are taken only by the import's own upload handler; any other file part is dropped
# as it streams (core/uploads.py), so no temporary upload file can outlive its request.
FILE_UPLOAD_HANDLERS = ["tidings.core.uploads.DiscardFileUploadHandler"]
TRANSFER_ORPHAN_HOURS = envint("TIDINGS_ORPHAN_UPLOAD_HOURS", 6)
# "All my data" (P20): the customer's archive stays downloadable this many days, then the
# retention job deletes it. XLS sheets hold at most 65,535 rows (the format's limit), and
# xlwt keeps a workbook in memory until it is saved: a table goes on to a new .xls file
# after so many sheets, so memory stays bounded.
ACCOUNT_EXPORT_DIR = DATA_DIR / "archives"
ACCOUNT_EXPORT_DAYS = envint("TIDINGS_ACCOUNT_EXPORT_DAYS", 7)
ACCOUNT_EXPORT_XLS_SHEET_ROWS = 65_535
ACCOUNT_EXPORT_XLS_SHEETS_PER_FILE = envint("TIDINGS_ACCOUNT_EXPORT_XLS_SHEETS_PER_FILE", 1)
PASSWORD_RESET_TIMEOUT = 3600 * 2
STAFF_REQUIRE_2FA = envbool("TIDINGS_STAFF_2FA", True)
AUDIT_REASON_MINUTES = envint("TIDINGS_AUDIT_REASON_MINUTES", 60)
# The audit log's head, anchored outside the database (docs/operator.md, "The audit log"):
# signed checkpoints written here every day and mailed to the privacy contact. The key is
# an Ed25519 private key (32 random bytes, base64); its public half is in each checkpoint.
AUDIT_CHECKPOINT_DIR = Path(
    env("TIDINGS_AUDIT_CHECKPOINT_DIR", str(DATA_DIR / "audit-checkpoints"))
).resolve()
AUDIT_SIGNING_KEY = env("TIDINGS_AUDIT_SIGNING_KEY") or _secret_file(
    "audit_signing_key", lambda: __import__("base64").b64encode(secrets.token_bytes(32)).decode()
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("TIDINGS_LOG_LEVEL", "WARNING")},
}
