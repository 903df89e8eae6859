"""Fail when modules of ours import each other in a circle, lazy (function-level) imports included.

import-linter's contracts (pyproject.toml) hold the direction between apps
and `acyclic_siblings` holds packages apart; neither names a circle of single
modules, such as a worker that imports the consumer that imports the worker
inside a function. This builds the same graph (grimp, which reads every
import statement, not only the module-level ones) and reports each strongly
connected group of modules. Imports under `if TYPE_CHECKING:` are left out:
they never run. `make lint` runs it.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def our_packages() -> list[str]:
    """Return the root packages import-linter checks (pyproject.toml), so both see one graph."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return list(config["root_packages"])


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Return the groups of two or more modules that reach each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    for start in sorted(graph.modules):
        if start in index:
            continue
        # Iterative depth-first search: (module, its imports still to visit).
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            module, imports = work[-1]
            for imported in imports:
                if imported not in index:
                    index[imported] = low[imported] = counter
                    counter += 1
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append(
                        (imported, iter(sorted(graph.find_modules_directly_imported_by(imported))))
                    )
                    break
                if imported in on_stack:
                    low[module] = min(low[module], index[imported])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == module:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return sorted(found)


def main() -> int:
    """Print each circle with one import that closes it; exit 1 if there is any."""
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*our_packages(), exclude_type_checking_imports=True)
    found = cycles(graph)
    for group in found:
        members = set(group)
        print(f"import cycle between {len(group)} modules:")
        for importer in group:
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
                lines = graph.get_import_details(importer=importer, imported=imported)
                where = ", ".join(f"line {d['line_number']}" for d in lines)
                print(f"  {importer} -> {imported} ({where})")
    if not found:
        print("No import cycles between our modules.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
