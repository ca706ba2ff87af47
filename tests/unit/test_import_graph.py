"""The architecture, checked from the source: core talks to adapters only through ports, one factory picks
them, and compare/explain no longer import each other."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "replay"



def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_core_imports_no_adapter() -> None:
    offenders = {p.name for p in (PKG / "core").glob("*.py")
                 if any(m == "replay.adapters" or m.startswith("replay.adapters.") for m in imports(p))}
    assert not offenders, f"core modules importing replay.adapters: {sorted(offenders)}"


def test_core_never_imports_the_ui_libraries() -> None:
    for p in (PKG / "core").glob("*.py"):
        assert not {m.split(".")[0] for m in imports(p)} & {"typer", "rich", "docker"}, p.name


def test_no_cli_module_constructs_a_concrete_engine_or_backend() -> None:
    for p in (PKG / "cli").glob("*.py"):
        found = {m for m in imports(p) if m.startswith("replay.adapters")}
        assert not found, f"{p.name} imports {sorted(found)}: ask replay.factory instead"


def test_explain_and_the_tolerance_leaf_do_not_import_compare() -> None:
    assert not any(m.startswith("replay.core.compare") for m in imports(PKG / "core" / "explain.py"))
    leaf = imports(PKG / "core" / "tolerance.py")
    assert not any(m.startswith(("replay.core.compare", "replay.core.explain")) for m in leaf)
