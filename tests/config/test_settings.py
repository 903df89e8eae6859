"""config/settings/: with DEBUG off the HTTPS protections are on unless turned off by env.

The test process itself runs with them off (tests/testenv.py), so the
defaults are read in fresh processes whose environment holds only what each
test names.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HTTPS_NAMES = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SILENCED_SYSTEM_CHECKS",
)
ON = {
    "DEBUG": False,
    "SECURE_SSL_REDIRECT": True,
    "SECURE_REDIRECT_EXEMPT": ["^healthz$", "^readyz$"],
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": False,
    "SILENCED_SYSTEM_CHECKS": ["security.W021"],
}


def production_env(**extra: str) -> dict[str, str]:
    """Only what a deployment must set: SECRET_KEY and DOMAIN (plus `extra`)."""
    return {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DOMAIN": "video.example.org",
        **extra,
    }


def run_python(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def https_settings(env: dict[str, str]) -> dict:
    code = (
        "import json; from django.conf import settings as s\n"
        f"print(json.dumps({{k: getattr(s, k) for k in {HTTPS_NAMES!r}}}))"
    )
    return json.loads(run_python(code, env))


def test_check_deploy_is_clean_with_only_secret_key_and_domain():
    """`check --deploy --fail-level WARNING` passes with nothing but SECRET_KEY and DOMAIN."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The one silenced check is HSTS preload (security.W021), off on purpose.
    assert result.stdout == "System check identified no issues (1 silenced).\n"
    assert result.stderr == ""


def test_https_protections_are_on_by_default_with_debug_off():
    """DEBUG off: SSL redirect, secure cookies, one year of HSTS with subdomains, no preload."""
    assert https_settings(production_env()) == ON


def test_each_https_protection_is_turned_off_by_its_variable():
    """SECURE_SSL_REDIRECT, SECURE_COOKIES, SECURE_HSTS_SECONDS=0 turn each one off."""
    env = production_env(SECURE_SSL_REDIRECT="false", SECURE_COOKIES="false")
    assert https_settings({**env, "SECURE_HSTS_SECONDS": "0"}) == {
        **ON,
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
    }
    assert https_settings(production_env(SECURE_HSTS_INCLUDE_SUBDOMAINS="false")) == {
        **ON,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
    }
    assert https_settings(production_env(SECURE_HSTS_PRELOAD="true")) == {
        **ON,
        "SECURE_HSTS_PRELOAD": True,
        "SILENCED_SYSTEM_CHECKS": [],
    }


def test_debug_leaves_https_off_for_make_run():
    """DEBUG=true (`make run` on http://127.0.0.1:8000): no redirect, plain cookies, no HSTS."""
    assert https_settings({"PATH": os.environ["PATH"], "DEBUG": "true"}) == {
        **ON,
        "DEBUG": True,
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
    }


def test_production_defaults_on_the_wire(tmp_path):
    """Only SECRET_KEY and DOMAIN: http redirects to https, https gets HSTS and Secure cookies,
    and the health probes answer plain http."""
    code = """
import json
from django.test import Client
client = Client(HTTP_HOST="video.example.org")
out = {}
r = client.get("/accounts/login/")
out["http"] = [r.status_code, r.headers.get("Location")]
r = client.get("/accounts/login/", secure=True)
out["https"] = [
    r.status_code,
    r.headers.get("Strict-Transport-Security"),
    r.cookies["csrftoken"]["secure"],
]
for path in ("/healthz", "/readyz"):
    r = client.get(path)
    out[path] = [r.status_code, r.json()["status"], r.headers.get("Strict-Transport-Security")]
print(json.dumps(out))
"""
    # Where /readyz's query goes and how templates name static files: not HTTPS settings.
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", STATIC_MANIFEST="false"
    )
    assert json.loads(run_python(code, env)) == {
        "http": [301, "https://video.example.org/accounts/login/"],
        "https": [200, "max-age=31536000; includeSubDomains", True],
        "/healthz": [200, "ok", None],
        "/readyz": [200, "ok", None],
    }


@pytest.mark.django_db
def test_only_the_health_probes_are_exempt_from_the_ssl_redirect(client, settings):
    """With SECURE_SSL_REDIRECT on, /healthz and /readyz answer http; every other path redirects."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    for path in ("/", "/accounts/login/", "/api/config", "/admin/", "/healthz/", "/readyz/x"):
        response = client.get(path)
        assert (response.status_code, response["Location"]) == (301, f"https://testserver{path}")
