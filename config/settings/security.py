"""Who may do what, and over what: the secret key, hosts, logins, HTTPS, CSP and sessions."""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.settings.calls import SIGNALING_URL
from config.settings.env import DEBUG, DOMAIN, env_bool, env_int, env_list, env_str

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (see .env.example); "
            "for local development set DEBUG=true or use `make run`."
        )
    # Only ever used with DEBUG on: sessions signed with it are worthless elsewhere.
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105


ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", DOMAIN or "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", f"https://{DOMAIN}" if DOMAIN else "")

# --- Accounts: passwords, logins, sign-ups -------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses (429) while a client is locked out, before any password check.
    "axes.backends.AxesStandaloneBackend",
    # Authenticates nobody: marks the attempts that get their password hashed.
    "accounts.backends.PasswordCheckMark",
    "django.contrib.auth.backends.ModelBackend",
]
# Login brute-force protection (django-axes): after AXES_FAILURE_LIMIT wrong
# passwords for one username from one client address, that pair is refused
# with 429 for LOGIN_LOCKOUT_MINUTES. The address is the ASGI client address:
# behind the proxy, daphne's --proxy-headers takes it from the proxy's
# X-Forwarded-For, and only the proxy can reach daphne (docs/deployment.md);
# a client's own X-Forwarded-For is never read.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("LOGIN_LOCKOUT_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "accounts.views.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_VERBOSE = False
# Failed logins per client address (accounts/limits.py), whatever the username:
# a script trying fresh usernames costs a password hash each. LIMIT at once (a
# classroom of 30 behind one NAT address with three typos each fits), then one
# per WINDOW/LIMIT seconds (6 s: ten hashes a minute); past it 429 with
# Retry-After, before any hash. Logins that succeed are not counted.
LOGIN_FAILURE_ADDRESS_LIMIT = env_int("LOGIN_FAILURE_ADDRESS_LIMIT", 100, minimum=1)
LOGIN_FAILURE_ADDRESS_WINDOW = env_int("LOGIN_FAILURE_ADDRESS_WINDOW", 600, minimum=1)
# Sign-up forms submitted per client address, valid or not (each one says
# whether its username is taken): LIMIT at once, then one per WINDOW/LIMIT
# seconds; past it 429 saying only when to try again.
SIGNUP_ATTEMPT_ADDRESS_LIMIT = env_int("SIGNUP_ATTEMPT_ADDRESS_LIMIT", 100, minimum=1)
SIGNUP_ATTEMPT_ADDRESS_WINDOW = env_int("SIGNUP_ATTEMPT_ADDRESS_WINDOW", 600, minimum=1)
CSRF_FAILURE_VIEW = "accounts.views.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "lobby"
LOGOUT_REDIRECT_URL = "login"
# --- HTTPS, proxy, CSP, Permissions-Policy and sessions ---------------------------

# Behind the TLS proxy the app sees plain HTTP; the proxy says what the
# browser used. Only trust the header when a proxy that sets it is in front.
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = False

# Secure by default: with DEBUG off the site is served over HTTPS, so every
# HTTPS protection is on unless a variable turns it off (a plain-http test
# rig on loopback does; `make run` has DEBUG on and needs none of this).
_HTTPS_DEFAULT = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HTTPS_DEFAULT)
# The health probes answer plain HTTP too: the compose healthchecks ask a
# worker directly, not through the proxy. They set no cookie and show nothing
# private (config/health.py).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", _HTTPS_DEFAULT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _HTTPS_DEFAULT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
# HSTS preload stays off unless asked for. The `preload` token is the domain
# owner's consent to the browsers' built-in HSTS list: with it anyone may
# submit the domain at hstspreload.org, the list then binds the registrable
# domain and every subdomain to HTTPS in shipped browsers, and getting off it
# takes months of browser releases. hstspreload.org itself asks projects that
# offer HSTS not to send `preload` by default. Django's `check --deploy` warns
# when it is off (security.W021) only because a domain without it cannot be
# submitted; that warning is silenced while preload is off, on purpose. Set
# SECURE_HSTS_PRELOAD=true once you have decided to submit the domain.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): pages run only this site's own files.
# Scripts are ES modules and styles app.css, never inline (server data reaches
# a page through json_script, a data block that is never run), so neither
# script-src nor style-src allows 'unsafe-inline'. connect-src 'self' covers
# fetch() and, in CSP Level 3 browsers, ws:/wss: to the same host and port
# (tests/e2e/test_csp.py calls through it in Chromium); SIGNALING_URL's origin
# is added when it is set, for browsers older than that and for a signaling
# host of its own. Videos play MediaStreams through srcObject, which no fetch
# directive governs, so media-src and img-src need nothing beyond 'self'. No
# plugins, no <base> pointing elsewhere, forms post only here, and no site may
# frame the pages (X_FRAME_OPTIONS says the same to older browsers). Django
# admin needs no exception: its templates have no inline script, style or
# handler either.
_SIGNALING = urlsplit(SIGNALING_URL)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "media-src": [SELF],
        "connect-src": [SELF]
        + ([f"{_SIGNALING.scheme}://{_SIGNALING.netloc}"] if SIGNALING_URL else []),
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Permissions-Policy (config/permissions_policy.py): a call needs the camera,
# the microphone and screen sharing on this site's own pages, and the room
# page also plays audio and video as it arrives, picks the speaker and copies
# the room link; every other powerful feature is denied to every page and
# frame. Only names Chromium knows are listed: it warns about any other.
PERMISSIONS_POLICY = {
    "camera": ["self"],
    "microphone": ["self"],
    "display-capture": ["self"],
    "autoplay": ["self"],
    "speaker-selection": ["self"],
    "clipboard-write": ["self"],
    "fullscreen": ["self"],
    "picture-in-picture": ["self"],
    **{
        feature: []
        for feature in (
            "accelerometer",
            "browsing-topics",
            "captured-surface-control",
            "clipboard-read",
            "compute-pressure",
            "encrypted-media",
            "gamepad",
            "geolocation",
            "gyroscope",
            "hid",
            "identity-credentials-get",
            "idle-detection",
            "keyboard-map",
            "local-fonts",
            "magnetometer",
            "midi",
            "otp-credentials",
            "payment",
            "publickey-credentials-create",
            "publickey-credentials-get",
            "screen-wake-lock",
            "serial",
            "storage-access",
            "usb",
            "window-management",
            "xr-spatial-tracking",
        )
    },
}
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
# Sessions read through the cache (Redis with several workers), written to the
# database too: every WebSocket opened is a session read, and a join burst is
# many at once.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
