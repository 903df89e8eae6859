"""The deployment files: compose validates, make-env writes secrets, settings pass --deploy."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.procs import PYTHON, REPO, clean_environ, make_env, parse_env_file, require

SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "TURN_SECRET", "DJANGO_SUPERUSER_PASSWORD")


def compose_project(tmp_path: Path) -> Path:
    """A copy of the compose project (compose file, Dockerfile, deploy/) with a fresh .env."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore", "requirements.txt"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "deploy", project / "deploy")
    subprocess.run(
        [str(project / "deploy" / "make-env"), "video.example.org"],
        env={**clean_environ(), "ENV_FILE": ".env"},
        check=True,
        capture_output=True,
        timeout=30,
    )
    return project


def compose(project: Path, *args: str) -> subprocess.CompletedProcess:
    require("docker-compose")
    return subprocess.run(
        ["docker-compose", "--project-directory", str(project), *args],
        cwd=project,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def yaml_to_dict(text: str) -> dict:
    """Parse compose's YAML output with the YAML library docker-compose itself runs on."""
    script = Path(shutil.which("docker-compose") or "docker-compose").read_text().splitlines()[0]
    interpreter = script[2:].strip().split() if script.startswith("#!") else ["python3"]
    result = subprocess.run(
        [
            *interpreter,
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(result.stdout)


def test_compose_file_validates_with_generated_env(tmp_path):
    """`docker-compose config -q` accepts the file with a .env from deploy/make-env."""
    project = compose_project(tmp_path)
    result = compose(project, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_resolves_services_and_secrets_from_env(tmp_path):
    """Every service is there, wired to the .env secrets, with healthchecks and ordering."""
    project = compose_project(tmp_path)
    env = parse_env_file(project / ".env")
    result = compose(project, "config")
    assert result.returncode == 0, result.stderr
    config = yaml_to_dict(result.stdout)
    services = config["services"]
    assert set(services) == {
        *("proxy", "web", "postgres", "redis", "coturn", "janus", "prometheus", "grafana")
    }
    for name in services:
        assert "healthcheck" in services[name], name
    assert services["web"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["proxy"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert services["web"]["deploy"]["replicas"] == 2
    assert "ports" not in services["web"]  # only Caddy is exposed, so --scale works
    web_env = services["web"]["environment"]
    assert web_env["DATABASE_URL"] == (
        f"postgres://videorooms:{env['POSTGRES_PASSWORD']}@postgres:5432/videorooms"
    )
    assert web_env["SECRET_KEY"] == env["SECRET_KEY"]
    assert web_env["TURN_SECRET"] == services["coturn"]["environment"]["TURN_SECRET"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]
    assert services["coturn"]["network_mode"] == "host"
    assert services["proxy"]["environment"]["DOMAIN"] == "video.example.org"


def test_every_service_keeps_bounded_logs(tmp_path):
    """Every service's log rotates (json-file, 5 x 20 MB): a runaway one cannot fill the disk."""
    project = compose_project(tmp_path)
    result = compose(project, "config")
    assert result.returncode == 0, result.stderr
    services = yaml_to_dict(result.stdout)["services"]
    rotated = {"driver": "json-file", "options": {"max-size": "20m", "max-file": "5"}}
    assert {name: service.get("logging") for name, service in services.items()} == {
        "proxy": rotated,
        "web": rotated,
        "postgres": rotated,
        "redis": rotated,
        "coturn": rotated,
        "janus": rotated,
        "prometheus": rotated,
        "grafana": rotated,
    }


def test_prometheus_and_grafana_are_reachable_from_the_host_only(tmp_path):
    """Prometheus scrapes `web` on the internal network; both UIs listen on the host's loopback."""
    project = compose_project(tmp_path)
    result = compose(project, "config")
    assert result.returncode == 0, result.stderr
    config = yaml_to_dict(result.stdout)
    prometheus, grafana = config["services"]["prometheus"], config["services"]["grafana"]
    # Debian's build, the same release as the Prometheus test runs against.
    assert prometheus["build"]["context"] == f"{project}/deploy/prometheus"
    dockerfile = (Path(project) / "deploy/prometheus/Dockerfile").read_text()
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "prometheus"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"prometheus={installed} " in dockerfile
    assert grafana["image"] == "grafana/grafana:11.3.0"
    assert set(prometheus["networks"]) == {"backend", "monitoring"}
    assert set(grafana["networks"]) == {"monitoring"}
    assert "monitoring" not in config["services"]["web"]["networks"]
    assert config["networks"]["backend"]["internal"] is True
    assert prometheus["ports"] == ["127.0.0.1:9090:9090/tcp"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000/tcp"]
    assert grafana["profiles"] == ["monitoring"]
    mount = f"{project}/deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
    assert mount in prometheus["volumes"]


def test_prometheus_config_is_valid():
    """promtool (Debian's prometheus package) accepts deploy/prometheus.yml."""
    require("promtool")
    result = subprocess.run(
        ["promtool", "check", "config", str(REPO / "deploy" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_refuses_to_start_without_env(tmp_path):
    """Without .env the secrets are missing and compose stops with a message."""
    project = compose_project(tmp_path)
    (project / ".env").unlink()
    result = compose(project, "config", "-q")
    assert result.returncode != 0
    assert "run deploy/make-env" in result.stderr


def test_no_secret_in_the_repository_files():
    """The compose file and configs carry no secret values of their own."""
    text = (REPO / "docker-compose.yml").read_text() + (REPO / "deploy/turnserver.conf").read_text()
    assert "static-auth-secret=" not in text
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text


def test_make_env_writes_fresh_private_secrets(tmp_path):
    """deploy/make-env writes every secret, random and private, and never overwrites."""
    first = make_env(tmp_path / "a")
    second = make_env(tmp_path / "b")
    for name in SECRETS:
        assert len(first[name]) >= 24, name
        assert first[name] != second[name], name
    assert len(first["SECRET_KEY"]) >= 50
    env_file = tmp_path / "a" / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    before = env_file.read_text()
    result = subprocess.run(
        [str(REPO / "deploy" / "make-env")],
        env={**os.environ, "ENV_FILE": str(env_file)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "already exists" in result.stderr
    assert env_file.read_text() == before


def test_make_env_fills_urls_from_domain(tmp_path):
    """DOMAIN drives the TURN/STUN URLs the app hands out."""
    env = make_env(tmp_path / "x", "video.example.org")
    assert env["DOMAIN"] == "video.example.org"
    assert env["TURN_URLS"].split(",") == [
        "turn:video.example.org:3478?transport=udp",
        "turn:video.example.org:3478?transport=tcp",
        "turns:video.example.org:5349?transport=tcp",
    ]
    assert env["STUN_URLS"] == "stun:video.example.org:3478"


def production_environ(tmp_path: Path, domain: str = "video.example.org") -> dict[str, str]:
    env = make_env(tmp_path / "env", domain)
    return {
        **clean_environ(),
        **env,
        # As docker-compose.yml sets them for `web`.
        "DATABASE_URL": "postgres://videorooms:x@postgres:5432/videorooms",
        "REDIS_URL": "redis://redis:6379/0",
        "BEHIND_PROXY": "true",
    }


def test_check_deploy_passes_with_production_env(tmp_path):
    """`manage.py check --deploy --fail-level WARNING` passes with the generated .env."""
    result = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=production_environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_follow_domain(tmp_path):
    """With the production .env: secure cookies, HSTS, proxy-aware SSL, URLs from DOMAIN."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ("
        "'DEBUG', 'ALLOWED_HOSTS', 'CSRF_TRUSTED_ORIGINS', 'SIGNALING_URL', 'TURN_URLS', "
        "'SECURE_PROXY_SSL_HEADER', 'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
        "'SECURE_HSTS_PRELOAD')}))"
    )
    env = {**production_environ(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["video.example.org"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://video.example.org"]
    assert values["SIGNALING_URL"] == "wss://video.example.org/ws/signaling/"
    assert all("video.example.org" in url for url in values["TURN_URLS"])
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    # Preload is the domain owner's decision (config/settings/security.py), not make-env's.
    assert values["SECURE_HSTS_PRELOAD"] is False


def test_collectstatic_build_step(tmp_path):
    """The Dockerfile's collectstatic (manifest + compression) succeeds on the real static files."""
    code = (
        "import sys, django; from django.conf import settings; django.setup(); "
        "settings.STATIC_ROOT = sys.argv[1]; "
        "from django.core.management import call_command; "
        "call_command('collectstatic', interactive=False, verbosity=0)"
    )
    root = tmp_path / "static"
    env = {
        **clean_environ(),
        "DEBUG": "false",
        "SECRET_KEY": "collectstatic-at-build-time-only",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = subprocess.run(
        [PYTHON, "-c", code, str(root)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (root / "staticfiles.json").exists()
    assert list(root.rglob("*.gz")), "WhiteNoise compressed nothing"


@pytest.mark.parametrize(
    "line",
    [
        "use-auth-secret",
        "fingerprint",
        "no-cli",
        "no-multicast-peers",
        "stale-nonce=600",
        "no-rfc5780",
        "no-software-attribute",
        "response-origin-only-with-rfc5780",
        "no-tcp-relay",
        "user-quota=300",
        "total-quota=1000",
        "max-allocate-lifetime=300",
        "max-bps=625000",
        "min-port=49152",
        "max-port=50151",
        "tls-listening-port=5349",
        "denied-peer-ip=127.0.0.0-127.255.255.255",
        "denied-peer-ip=10.0.0.0-10.255.255.255",
        "denied-peer-ip=172.16.0.0-172.31.255.255",
        "denied-peer-ip=192.168.0.0-192.168.255.255",
        "denied-peer-ip=100.64.0.0-100.127.255.255",
        "denied-peer-ip=169.254.0.0-169.254.255.255",
        "denied-peer-ip=0.0.0.0-0.255.255.255",
        "denied-peer-ip=::1",
        "denied-peer-ip=::ffff:0.0.0.0-::ffff:255.255.255.255",
        "denied-peer-ip=172.29.80.0-172.29.80.255",
        "denied-peer-ip=172.29.81.0-172.29.81.255",
        "denied-peer-ip=172.29.82.0-172.29.82.255",
    ],
)
def test_turnserver_conf_is_hardened(line):
    """deploy/turnserver.conf carries each hardening line the deployment relies on."""
    lines = (REPO / "deploy" / "turnserver.conf").read_text().splitlines()
    assert line in lines
    assert "allow-loopback-peers" not in lines


def test_allocations_live_no_longer_than_a_credential(tmp_path):
    """coturn's max-allocate-lifetime is no longer than TURN_TTL: the settings' default and
    the one make-env writes (300 s each)."""
    lines = (REPO / "deploy" / "turnserver.conf").read_text().splitlines()
    (lifetime,) = [line.split("=", 1)[1] for line in lines if line.startswith("max-allocate-")]
    default = subprocess.run(
        [PYTHON, "-c", "from config import settings; print(settings.TURN_TTL)"],
        cwd=REPO,
        env={**clean_environ(), "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert (lifetime, default, make_env(tmp_path / "env", "x.example.org")["TURN_TTL"]) == (
        "300",
        "300",
        "300",
    )


def test_caddyfile_is_valid(tmp_path):
    """Caddy accepts deploy/Caddyfile as compose runs it (dynamic upstreams of `web`)."""
    require("caddy")
    result = subprocess.run(
        ["caddy", "validate", "--config", "deploy/Caddyfile", "--adapter", "caddyfile"],
        cwd=REPO,
        env={**clean_environ(), "DOMAIN": "video.example.org", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
