"""The version guard: a speed-up reaching into a dependency names the releases it was written for.

A module of `transport/` that uses a dependency's private names (or relies on
how a release behaves inside) declares

    VERSIONS = {"daphne": "4.2.3", "Twisted": "26.10.0"}

the exact releases it was written and measured against, and calls
`require(__name__, VERSIONS)` when it installs itself. A release of the same
series (same major and minor number: daphne 4.2.x) is accepted; anything else
raises `VersionMismatch` naming the installed release, the one expected and
what to do. There is no fallback: running a patch against internals it was not
written for is how silent breakage happens (a patched method that no longer
exists, a private attribute that now means something else).

The checks run when the launcher starts (`transport.server.main`) and when
Django loads (`transport.apps.TransportConfig.ready`), so `manage.py`, the
test suite and every worker refuse to start on an unchecked upgrade;
`transport.testing` (the test suite's communicator) checks itself on import.
"""

from __future__ import annotations

from importlib import metadata


class VersionMismatch(RuntimeError):
    """A guarded speed-up was not written for the installed release of a dependency."""


def series(version: str) -> tuple[str, ...]:
    """The release series of `version`: its first two numbers ("4.2.3" -> ("4", "2"))."""
    return tuple(version.split(".")[:2])


def installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def mismatches(module: str, versions: dict[str, str]) -> list[str]:
    """One sentence per dependency of `module` whose installed release is not of the series."""
    problems = []
    where = module.replace(".", "/") + ".py"
    for distribution, written_for in versions.items():
        found = installed(distribution)
        if found is not None and series(found) == series(written_for):
            continue
        wanted = ".".join(series(written_for)) + ".x"
        have = f"{distribution} {found} is installed" if found else f"{distribution} is missing"
        problems.append(
            f"{have}, {module} was written for {wanted}: re-measure and update VERSIONS in "
            f"{where}, or pin {distribution}=={written_for}"
        )
    return problems


def require(module: str, versions: dict[str, str]) -> None:
    """Raise VersionMismatch unless every dependency in `versions` is of the series named."""
    problems = mismatches(module, versions)
    if problems:
        raise VersionMismatch("; ".join(problems))


def check_all() -> None:
    """Check every guarded piece of transport/ at once (start-up of the launcher and of Django)."""
    from transport import consumer, server

    problems = []
    for piece in (server, consumer):
        problems += mismatches(piece.__name__, piece.VERSIONS)
    if problems:
        raise VersionMismatch("; ".join(problems))
