"""The architecture, checked from the source.

Every import counts: at module level, inside a function, and under ``TYPE_CHECKING``. An import inside a
function only hides a circle from Python at start-up; it is still a circle for whoever reads the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "replay"

# The core's packages, and the core packages each may import. The few modules loose in core (ports,
# events, limits, layout, pyenv) are shared by every workflow; data is the floor everything stands on.
LOOSE = {"ports", "events", "limits", "layout", "pyenv"}
ALLOWED: dict[str, set[str]] = {
    "loose": {"data"},
    "data": set(),
    "verify": {"data"},
    "check": {"verify", "data"},
    "capture": {"check", "verify", "data"},
    "share": {"data"},
    "batch": {"verify", "check", "share", "data"},
    "capsules": {"verify", "data"},
}


def module_name(path: Path, root: Path = PKG) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_graph(root: Path) -> dict[str, frozenset[str]]:
    """Every module of the package at ``root`` and the modules of it that it imports, anywhere in its source."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> frozenset[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: against this module's package
                package = name.split(".")
                package = package if path.name == "__init__.py" else package[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in modules else base)
    return frozenset(m for m in out if m in modules and m != name)


def find_cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


GRAPH = read_graph(PKG)


def core_group(name: str) -> str | None:
    parts = name.split(".")
    if parts[:2] != ["replay", "core"] or len(parts) < 3:
        return None
    if len(parts) == 3 and parts[2] in LOOSE:
        return "loose"
    return parts[2]


def test_the_cycle_finder_sees_circles_hidden_in_functions_and_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "replay"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import replay.b\n")
    (pkg / "b.py").write_text("def f():\n    from replay import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from replay.sub import d\n")
    (pkg / "sub" / "d.py").write_text("from .. import c\n")
    graph = read_graph(pkg)
    assert graph["replay.b"] == {"replay.a"} and graph["replay.sub.d"] == {"replay.c"}
    assert find_cycles(graph) == [["replay.a", "replay.b"], ["replay.c", "replay.sub.d"]]


def test_no_import_cycles_among_replay_modules() -> None:
    assert find_cycles(GRAPH) == []


def test_every_core_module_is_in_a_known_package() -> None:
    unknown = {m for m in GRAPH if core_group(m) not in (None, *ALLOWED)}
    assert not unknown, f"core modules outside the known packages: {sorted(unknown)}"


def test_core_packages_import_only_what_they_are_allowed_to() -> None:
    wrong = []
    for name in GRAPH:
        group = core_group(name)
        if group is None:
            continue
        for dep in GRAPH[name]:
            other = core_group(dep)
            if other is not None and other != group and other != "loose" and other not in ALLOWED[group]:
                wrong.append(f"{name} -> {dep}")
    assert not wrong, "core imports across packages that the layout does not allow:\n" + "\n".join(sorted(wrong))


def test_every_core_package_names_its_entry_point() -> None:
    for init in (PKG / "core").rglob("__init__.py"):
        if init.parent == PKG / "core":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc and "TODO" not in doc and "." in doc, f"{init} says in one line which function is its entry point"


def test_core_imports_no_adapter_and_no_ui_library() -> None:
    for path in (PKG / "core").rglob("*.py"):
        name = module_name(path)
        tree = ast.parse(path.read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not roots & {"typer", "rich", "docker"}, name
        assert not any(m.startswith("replay.adapters") or m in ("replay.factory", "replay.ui") for m in GRAPH[name]), name


def test_no_cli_module_constructs_a_concrete_engine_or_backend() -> None:
    for name in GRAPH:
        if name.startswith("replay.cli"):
            found = {m for m in GRAPH[name] if m.startswith("replay.adapters")}
            assert not found, f"{name} imports {sorted(found)}: ask replay.factory instead"


# How Python starts a program: the subprocess module, replay's own helper for following a child, and the
# os functions that run or replace a process.
_RUNS_PROGRAMS = {"subprocess", "replay.procs"}
_OS_RUNNERS = ("system", "popen", "exec", "spawn", "posix_spawn")


def runs_programs(source: str) -> list[str]:
    """What in ``source`` can start another program: imports of subprocess or replay.procs, and the os calls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name in _RUNS_PROGRAMS]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            found += [module] if module in _RUNS_PROGRAMS else []
            found += [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in _RUNS_PROGRAMS]
            if module == "os":
                found += [f"os.{a.name}" for a in node.names if a.name.startswith(_OS_RUNNERS)]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            found += [f"os.{node.attr}"] if node.attr.startswith(_OS_RUNNERS) else []
    return found


def test_the_program_finder_sees_every_way_of_starting_one() -> None:
    source = """
import subprocess
import replay.procs
from replay import procs
from replay.procs import follow
from os import execvp, posix_spawn
import os
os.system("x")
os.spawnv(os.P_WAIT, "x", [])
wrapper = "os.execvp(sys.argv[1], sys.argv[1:])"  # a string for another interpreter runs nothing here
os.environ.get("HOME")
"""
    assert runs_programs(source) == ["subprocess", "replay.procs", "replay.procs", "replay.procs", "os.execvp",
                                     "os.posix_spawn", "os.system", "os.spawnv"]


def test_no_module_outside_the_adapters_runs_a_program() -> None:
    """Outside programs (git, pip-tools, ssh-keygen, nvidia-smi, the training command) are reached through
    adapters; core says what it needs through a port."""
    found = {module_name(path): runs_programs(path.read_text()) for path in (PKG / "core").rglob("*.py")}
    assert not {name: how for name, how in found.items() if how}
