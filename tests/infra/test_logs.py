"""Log formats (infra/logs.py): plain lines with key=value fields, JSON lines for Loki/ELK."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from infra.logs import JsonFormatter, PlainFormatter


def record(msg: str = "join", fields=None, exc_info=None) -> logging.LogRecord:
    rec = logging.LogRecord("rooms.signaling", logging.INFO, __file__, 1, msg, (), exc_info)
    rec.created = 1_800_000_000.25
    if fields is not None:
        rec.fields = fields
    return rec


FIELDS = {"event": "join", "kind": "join", "outcome": "ok", "room": "482913075", "peer": None}


def test_plain_appends_fields_as_key_value():
    """Plain: the usual line, then key=value (None as -, spaces quoted), the event not repeated."""
    line = PlainFormatter().format(record(fields={**FIELDS, "note": "two words"}))
    assert line.endswith(
        ' INFO rooms.signaling join kind=join outcome=ok room=482913075 peer=- note="two words"'
    )


def test_json_is_one_object_per_line_with_the_fields():
    """JSON: time, level, logger, message and every field as keys; fields cannot override them."""
    line = JsonFormatter().format(record(fields={**FIELDS, "level": "forged", "user": 7}))
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2027-01-15T08:00:00.250+00:00",
        "level": "INFO",
        "logger": "rooms.signaling",
        "message": "join",
        **FIELDS,
        "user": 7,
    }


def test_json_carries_the_traceback_in_one_line():
    """An exception's traceback is the `exc` key, inside the one line."""
    try:
        raise ValueError("boom")
    except ValueError:
        line = JsonFormatter().format(record("failed", exc_info=sys.exc_info()))
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exc"]


def test_log_format_setting_picks_the_formatter():
    """LOG_FORMAT=json makes the process log JSON lines; values but plain and json are refused."""
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('rooms.signaling').info('join', extra={'fields': {'room': '1'}})"
    )
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stderr.strip())["room"] == "1"
    bad = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0
    assert "LOG_FORMAT must be 'plain' or 'json'" in bad.stderr
