"""scripts/import_cycles.py: circles of modules are found, lazy imports included; ours has none."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import grimp

from tests.deploy.procs import REPO


def load_script():
    spec = importlib.util.spec_from_file_location(
        "import_cycles", REPO / "scripts/import_cycles.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_circle_is_found_and_nothing_else():
    """a->b->c->a and d<->e are two circles; f->a (into a circle, not back) is none."""
    graph = grimp.ImportGraph()
    for importer, imported in [
        ("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.e"), ("p.e", "p.d"),
        ("p.f", "p.a"),
    ]:  # fmt: skip
        graph.add_import(importer=importer, imported=imported)
    assert load_script().cycles(graph) == [["p.a", "p.b", "p.c"], ["p.d", "p.e"]]


def test_our_modules_import_each_other_in_no_circle():
    """The check `make lint` runs passes on this checkout."""
    result = subprocess.run(
        [sys.executable, "scripts/import_cycles.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (0, "No import cycles between our modules.\n")
