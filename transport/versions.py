"""The version guard: a speed-up reaching into a dependency names the releases it was written for.

A module of `transport/` that uses a dependency's private names (or relies on
how a release behaves inside) has its entry in WRITTEN_FOR below, the one
list of the exact releases each was written and measured against, and reads
it as its VERSIONS (`VERSIONS = WRITTEN_FOR[__name__]`). A guarded module
outside transport/ (the test suite's communicator) declares its own VERSIONS
and calls `require(__name__, VERSIONS)` on import. A release of the same
series (same major and minor number: daphne 4.2.x) is accepted; anything else
raises `VersionMismatch` naming the installed release, the one expected and
what to do. There is no fallback: running a patch against internals it was not
written for is how silent breakage happens (a patched method that no longer
exists, a private attribute that now means something else).

The checks run when the launcher starts (config/serve.py) and when Django
loads (`transport.apps.TransportConfig.ready`), so `manage.py`, the test
suite and every worker refuse to start on an unchecked upgrade. The list is
plain data: this module imports none of the modules it guards.
"""

from __future__ import annotations

from importlib import metadata

# The releases each guarded module of transport/ was written and measured
# against (same series accepted), and what of each it relies on.
WRITTEN_FOR: dict[str, dict[str, str]] = {
    "transport.patches": {
        "daphne": "4.2.3",  # Server.create_application, WebSocketProtocol.serverSend/serverClose
        # WebSocketServerFactory.setProtocolOptions(failByDrop=...), a protocol's
        # closeHandshakeTimeout
        "autobahn": "26.10.2",
        # tcp.Connection.write and its buffers (FileDescriptor's write queue), the asyncio reactor
        "Twisted": "26.10.0",
        "uvloop": "0.23.0",  # the lost-connection guard (MagicStack/uvloop#552)
    },
    # AsyncConsumer.__call__'s attributes, dispatch's contract
    "transport.consumer": {"channels": "4.3.2"},
}


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
    where = (
        "WRITTEN_FOR in transport/versions.py"
        if module in WRITTEN_FOR
        else "VERSIONS in " + module.replace(".", "/") + ".py"
    )
    for distribution, written_for in versions.items():
        found = installed(distribution)
        if found is not None and series(found) == series(written_for):
            continue
        wanted = ".".join(series(written_for)) + ".x"
        have = f"{distribution} {found} is installed" if found else f"{distribution} is missing"
        problems.append(
            f"{have}, {module} was written for {wanted}: re-measure and update {where}, "
            f"or pin {distribution}=={written_for}"
        )
    return problems


def require(module: str, versions: dict[str, str]) -> None:
    """Raise VersionMismatch unless every dependency in `versions` is of the series named."""
    problems = mismatches(module, versions)
    if problems:
        raise VersionMismatch("; ".join(problems))


def check_all() -> None:
    """Check every guarded module of transport/ at once (start-up of the launcher and of Django)."""
    problems = []
    for module, versions in WRITTEN_FOR.items():
        problems += mismatches(module, versions)
    if problems:
        raise VersionMismatch("; ".join(problems))
