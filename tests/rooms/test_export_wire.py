"""static/js/wire.js, the client's copy of the protocol constants, is generated and current."""

from __future__ import annotations

import difflib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from rooms import protocol as p
from rooms.management.commands.export_wire import COMMAND, render, wire_path


def test_wire_js_is_what_export_wire_writes():
    """The committed static/js/wire.js matches rooms/protocol.py (no drift)."""
    committed = wire_path().read_text(encoding="utf-8")
    expected = render()
    if committed != expected:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                "static/js/wire.js (committed)",
                "static/js/wire.js (from rooms/protocol.py)",
            )
        )
        pytest.fail(f"static/js/wire.js is out of date: run `{COMMAND}`\n{diff}", pytrace=False)


def test_check_flag_refuses_a_stale_file(tmp_path, settings):
    """`export_wire --check` fails on a stale file and passes once the command has written it."""
    settings.BASE_DIR = tmp_path
    (tmp_path / "static" / "js").mkdir(parents=True)
    (tmp_path / "static" / "js" / "wire.js").write_text("// stale\n", encoding="utf-8")
    with pytest.raises(CommandError, match="out of date: run `make wire`"):
        call_command("export_wire", "--check")
    call_command("export_wire")
    call_command("export_wire", "--check")
    assert (tmp_path / "static" / "js" / "wire.js").read_text(encoding="utf-8") == render()


def test_every_type_and_code_constant_reaches_the_client():
    """Each string constant of rooms.protocol is exported as a type, an error code or a reason."""
    constants = p.client_constants()
    exported = {
        value
        for group in ("CLIENT_TYPES", "SERVER_TYPES", "ERROR_CODES", "LEFT_REASONS", "MEDIA_MODES")
        for value in constants[group].values()
    }
    left_out = {
        name: value
        for name, value in vars(p).items()
        if name.isupper() and type(value) is str and value not in exported
    }
    # A new server type needs a line in client_constants() (there is no registry of them).
    assert left_out == {}, "add server types to server_types in rooms.protocol.client_constants()"


def test_exported_groups_hold_what_the_protocol_defines():
    """Spot checks written out: the groups come from the registries and naming rules."""
    constants = p.client_constants()
    assert constants["PROTOCOL_VERSION"] == 1
    assert list(constants["CLIENT_TYPES"].values()) == list(p.VALIDATORS)
    assert constants["CLOSE_CODES"]["REPLACED"] == 4409
    assert constants["CLOSE_CODES"]["UNAUTHENTICATED"] == 4401
    assert constants["CLOSE_CODES"]["RECONNECT"] == 1012
    assert constants["ERROR_CODES"]["ROOM_CLOSED"] == "room-closed"
    assert constants["LIMITS"]["CAPACITY_MIN"] == 2
    assert constants["LIMITS"]["CAPACITY_MAX"] == 12
    assert constants["LIMITS"]["CHAT_MAX"] == 2000
    assert constants["PATTERNS"]["PIN"] == "[0-9]{4,12}"
    assert constants["PATTERNS"]["ROOM_NUMBER"] == "[1-9][0-9]{8}"
