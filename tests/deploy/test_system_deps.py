"""scripts/system-deps (the first step of `make test`): what it asks for, and how it says so."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "system-deps"

PACKAGES = [
    "chromium",
    "chromium-driver",
    "coturn",
    "caddy",
    "docker-compose",
    "redis-server",
    "postgresql",
    "nodejs",
    "npm",
    "iproute2",
    "janus",
    "prometheus",
]


def test_the_list_has_everything_the_suite_starts():
    """The packages are the suite's binaries plus janus and prometheus, which are coming."""
    result = subprocess.run([SCRIPT, "--list"], capture_output=True, text=True, check=True)
    assert result.stdout.split() == PACKAGES


def test_a_user_without_root_is_told_the_one_command_and_it_fails(tmp_path):
    """Not root, nothing installed: exit 1 with `sudo apt-get install <every package>`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    for fake in ("id", "dpkg-query"):
        (bin_dir / fake).chmod(0o755)
    (bin_dir / "grep").symlink_to(shutil.which("grep"))
    result = subprocess.run(
        [shutil.which("bash"), SCRIPT],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "  sudo apt-get install " + " ".join(PACKAGES)


def test_on_this_machine_everything_is_there():
    """Here (after make test's first step) the script finds everything and says nothing."""
    result = subprocess.run([SCRIPT], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")
