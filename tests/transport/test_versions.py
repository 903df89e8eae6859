"""transport/versions.py: a guarded speed-up refuses to start on a release not written for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import transport as testing
from transport import consumer, patches, versions

ROOT = Path(__file__).resolve().parents[2]


def test_same_series_passes_and_another_fails_with_what_to_do(monkeypatch):
    """4.2.9 passes for a piece written for 4.2.3; 4.3.0 fails naming the fix, as does absence."""
    found = {"daphne": "4.2.9"}
    monkeypatch.setattr(versions, "installed", lambda name: found.get(name))
    versions.require("transport.patches", {"daphne": "4.2.3"})

    found["daphne"] = "4.3.0"
    with pytest.raises(versions.VersionMismatch) as raised:
        versions.require("transport.patches", {"daphne": "4.2.3"})
    assert str(raised.value) == (
        "daphne 4.3.0 is installed, transport.patches was written for 4.2.x: re-measure and "
        "update WRITTEN_FOR in transport/versions.py, or pin daphne==4.2.3"
    )

    del found["daphne"]
    with pytest.raises(versions.VersionMismatch, match=r"^daphne is missing, transport\.patches"):
        versions.require("transport.patches", {"daphne": "4.2.3"})


def test_every_guarded_piece_matches_what_is_installed():
    """The releases each piece names are of the installed series (this checkout is consistent)."""
    for piece in (patches, consumer, testing):
        assert versions.mismatches(piece.__name__, piece.VERSIONS) == [], piece.__name__
    versions.check_all()


def test_every_guarded_release_is_pinned_exactly():
    """requirements.txt pins each guarded dependency at the release its piece was written for.

    Without the pin a fresh install takes whatever is newest (autobahn, Twisted
    and asgiref come in with daphne and channels), and the guard then, rightly,
    refuses to start: a fresh clone must install what was measured.
    """
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.split("[")[0].lower()] = version
    for piece in (patches, consumer, testing):
        for distribution, written_for in piece.VERSIONS.items():
            assert pins.get(distribution.lower()) == written_for, (piece.__name__, distribution)


@pytest.fixture
def newer_daphne(tmp_path) -> dict[str, str]:
    """An environment in which importlib.metadata finds daphne 4.3.0 first (a fake dist-info)."""
    info = tmp_path / "daphne-4.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: daphne\nVersion: 4.3.0\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "DEBUG": "true"}
    env.pop("REDIS_URL", None)
    return env


EXPECTED = (
    "daphne 4.3.0 is installed, transport.patches was written for 4.2.x: re-measure and "
    "update WRITTEN_FOR in transport/versions.py, or pin daphne==4.2.3"
)


@pytest.mark.slow
def test_the_launcher_refuses_to_start_on_another_daphne(newer_daphne):
    """`python -m config.serve` with daphne 4.3 installed exits at once, saying what to do."""
    result = subprocess.run(
        [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", "1"],
        cwd=ROOT,
        env=newer_daphne,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"VersionMismatch: {EXPECTED}" in result.stderr


@pytest.mark.slow
def test_django_refuses_to_load_on_another_daphne(newer_daphne):
    """`manage.py check` (any Django start: tests, migrate, the ASGI app) fails the same way."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=newer_daphne,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"VersionMismatch: {EXPECTED}" in result.stderr
