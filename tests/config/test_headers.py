"""Content-Security-Policy and Permissions-Policy on every answer (config/settings/security.py,
config/permissions_policy.py), through the project's real middleware and URLconf."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.permissions_policy import header_value
from tests.config.test_settings import production_env, run_python

CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "media-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
PERMISSIONS_POLICY = (
    "camera=(self), microphone=(self), display-capture=(self), autoplay=(self), "
    "speaker-selection=(self), clipboard-write=(self), fullscreen=(self), "
    "picture-in-picture=(self), accelerometer=(), browsing-topics=(), "
    "captured-surface-control=(), clipboard-read=(), compute-pressure=(), encrypted-media=(), "
    "gamepad=(), geolocation=(), gyroscope=(), hid=(), identity-credentials-get=(), "
    "idle-detection=(), keyboard-map=(), local-fonts=(), magnetometer=(), midi=(), "
    "otp-credentials=(), payment=(), publickey-credentials-create=(), "
    "publickey-credentials-get=(), screen-wake-lock=(), serial=(), storage-access=(), usb=(), "
    "window-management=(), xr-spatial-tracking=()"
)


def directives(header: str) -> dict[str, list[str]]:
    """`a 'x' y; b z` -> {"a": ["'x'", "y"], "b": ["z"]}."""
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} twice"
        parsed[name] = sources
    return parsed


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/accounts/login/", "/accounts/signup/", "/admin/login/", "/healthz", "/static/css/app.css"],
)
def test_every_answer_carries_both_policies(client, settings, path):
    """Pages, Django admin (no exception for it), probes and static files: the same two headers."""
    # WhiteNoise serves from the source folders, as under DEBUG (nothing is collected here).
    settings.WHITENOISE_USE_FINDERS = True
    response = client.get(path)
    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"]) == CSP
    assert response["Permissions-Policy"] == PERMISSIONS_POLICY


@pytest.mark.django_db
def test_pages_of_a_logged_in_user_and_the_api_carry_the_policies(client, make_user):
    """The lobby, a room page and the JSON API answer with the policies too."""
    client.force_login(make_user())
    for path in ("/", "/api/config", "/accounts/logout/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert directives(response["Content-Security-Policy"]) == CSP, path
        assert response["Permissions-Policy"] == PERMISSIONS_POLICY, path
        # frame-ancestors 'none' for current browsers, X-Frame-Options for old ones.
        assert response["X-Frame-Options"] == "DENY", path


def test_a_deployments_signaling_origin_is_named_in_connect_src():
    """DOMAIN (so SIGNALING_URL wss://$DOMAIN/...) adds that origin to connect-src, nothing else."""
    code = (
        "import json; from django.conf import settings\n"
        "print(json.dumps(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']))"
    )
    assert json.loads(run_python(code, production_env())) == {
        **CSP,
        "connect-src": ["'self'", "wss://video.example.org"],
    }
    env = production_env(SIGNALING_URL="wss://signal.example.net:8443/ws/signaling/")
    assert json.loads(run_python(code, env))["connect-src"] == [
        "'self'",
        "wss://signal.example.net:8443",
    ]


def test_permissions_policy_header_value():
    """Allowlists become structured-field inner lists: self bare, origins quoted, none empty."""
    policy = {"camera": ["self", "https://meet.example.org"], "usb": []}
    assert header_value(policy) == 'camera=(self "https://meet.example.org"), usb=()'


@pytest.mark.parametrize("item", ["*", "'self'", "example.org", 'https://a"b'])
def test_permissions_policy_refuses_what_it_cannot_write(item):
    """Anything but self or an http(s) origin is a configuration error, not a silent header."""
    with pytest.raises(ImproperlyConfigured):
        header_value({"camera": [item]})
