"""Write static/js/wire.js: the browser's protocol constants, generated from rooms/protocol.py.

The client imports message types, error and close codes, left reasons,
limits and patterns from that file instead of keeping hand copies, and
tests/rooms/test_wire.py fails when the committed file is not what this
command writes. Run it after changing rooms/protocol.py:

    make wire                                   # the same as the next line
    DEBUG=true python manage.py export_wire     # write the file
    DEBUG=true python manage.py export_wire --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rooms import protocol

COMMAND = "make wire"
IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def wire_path() -> Path:
    return Path(settings.BASE_DIR) / "static" / "js" / "wire.js"


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)


def _key(name: str) -> str:
    return name if IDENTIFIER.fullmatch(name) else _literal(name)


def render() -> str:
    """The text of static/js/wire.js for the protocol as it is now."""
    out = [
        "// GENERATED from rooms/protocol.py (client_constants()) by `manage.py export_wire`.",
        f"// Do not edit: change rooms/protocol.py and run `{COMMAND}`;",
        "// tests/rooms/test_wire.py fails when this file is out of date.",
        "",
    ]
    for name, value in protocol.client_constants().items():
        if isinstance(value, dict):
            out.append(f"export const {name} = Object.freeze({{")
            out.extend(f"  {_key(key)}: {_literal(item)}," for key, item in value.items())
            out.append("});")
        else:
            out.append(f"export const {name} = {_literal(value)};")
    return "\n".join(out) + "\n"


class Command(BaseCommand):
    help = "Write static/js/wire.js from rooms/protocol.py (the client's protocol constants)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; fail if the committed file differs from what would be written.",
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        path = wire_path()
        text = render()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if check:
            if current != text:
                raise CommandError(f"{path} is out of date: run `{COMMAND}`")
            self.stdout.write(f"{path} is up to date")
            return
        if current == text:
            self.stdout.write(f"{path} is up to date")
            return
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {path}")
