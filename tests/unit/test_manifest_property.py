"""Property: any mutation of a valid replay.json (types, sizes, paths, deletions) is either refused with a
ManifestError (exit 2) or loads into a manifest that keeps every rule; nothing else ever escapes."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from replay import jsonio, manifest
from replay.core import layout
from replay.errors import BadInput, ManifestError
from replay.manifest_rules import NUMERICS_VARS, SEED_MAX, path_problem, refused_env_name
from tests.unit.test_manifest import full_manifest

VALID = json.loads(json.dumps(full_manifest().to_dict()))

HOSTILE_TEXT = ["", ".", "..", "../../etc/x", "/", "/etc/passwd", "out/../../x", "out//x", "out/./x", "a\0b",
                "[/x]", "[bold]", "out/model.pkl", "data/a.csv", "out", "data", "NaN", "Infinity", "-Infinity",
                "LD_PRELOAD", "PATH", "OMP_NUM_THREADS", "0", "-1", "x" * 5000, "é/ü", "sha256:" + "a" * 64,
                "a" * 64, "requirements.lock", "code.patch", "reference", "out/[/x]", "data/[/]", "[red]"]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([10**400, -(10**400), 2**63, 2**32, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE_TEXT), st.text(max_size=20),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=6)


def _containers(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``doc`` that holds something: the paths of its dicts and lists."""
    out = [path]
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        if isinstance(value, (dict, list)):
            out += _containers(value, (*path, key))
    return out


PLACES = _containers(VALID)


def examples(docs: list[dict[str, Any]]) -> Any:
    """``@example`` for each of ``docs``."""
    def decorate(test: Any) -> Any:
        for doc in docs:
            test = example(doc)(test)
        return test
    return decorate


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    values = st.one_of(st.sampled_from(HOSTILE_TEXT), json_values)  # half the time, a hostile string
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        place = draw(st.sampled_from(PLACES))
        try:
            container = _at(doc, place)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced this place
        if isinstance(container, dict):
            keys = sorted(container)
            action = draw(st.sampled_from(["set", "delete", "add"] if keys else ["add"]))
            if action == "delete":
                del container[draw(st.sampled_from(keys))]
            elif action == "set":
                container[draw(st.sampled_from(keys))] = draw(values)
            else:
                container[draw(st.sampled_from([*HOSTILE_TEXT[:12], *NUMERICS_VARS[:2]]))] = draw(values)
        elif isinstance(container, list):
            action = draw(st.sampled_from(["set", "delete", "append", "clear", "duplicate"] if container
                                          else ["append"]))
            if action == "append":
                container.append(draw(values))
            elif action == "clear":
                container.clear()
            else:
                i = draw(st.integers(min_value=0, max_value=len(container) - 1))
                if action == "set":
                    container[i] = draw(values)
                elif action == "delete":
                    del container[i]
                else:
                    container.append(copy.deepcopy(container[i]))
    return doc


def edited(change: Any) -> dict[str, Any]:
    """An explicit example: ``VALID`` with one hand edit."""
    doc = copy.deepcopy(VALID)
    change(doc)
    return doc


# Edits that once escaped as tracebacks, kept as fixed examples beside the random ones.
EXAMPLES = [
    edited(lambda d: d["outputs"]["metrics"].__setitem__("accuracy", 10**400)),
    edited(lambda d: d["outputs"]["files"][0].__setitem__("path", "out/[/x]/../..")),
    edited(lambda d: d.__setitem__("name", "[/x]")),
    edited(lambda d: d["command"].__setitem__("argv", ["[/]"])),
]


def check_invariants(m: manifest.Manifest) -> None:
    """What a loaded manifest promises to the code that places folders and builds the container."""
    for path in [*m.outputs.roots, *(f.path for f in m.outputs.files), *m.outputs.metrics_files, m.command.workdir]:
        assert path_problem(path) is None
        assert layout.container_path(path).startswith(manifest.IMAGE_WORKSPACE)
    for path in [*m.data.roots, *(f.path for f in m.data.files)]:
        assert path_problem(path, absolute=True) is None
    assert m.command.argv and all(isinstance(a, str) for a in m.command.argv)
    assert all(name in NUMERICS_VARS for name in m.command.numerics_env)
    assert all(refused_env_name(name) is None for name in m.command.env)
    assert m.command.seed is None or 0 <= m.command.seed <= SEED_MAX
    with contextlib.suppress(BadInput):  # an output in the top folder: refused at verify (exit 2), as at capture
        layout.output_mount_dirs(m.outputs)
    again = manifest.from_dict(json.loads(jsonio.dumps(m.to_dict())))  # writes strict JSON that reads back
    assert jsonio.dumps(again.to_dict()) == jsonio.dumps(m.to_dict())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
@examples(EXAMPLES)
def test_any_mutation_is_refused_or_keeps_every_rule(doc: dict[str, Any]) -> None:
    try:
        m = manifest.from_dict(doc)
    except ManifestError as exc:
        assert exc.exit_code == 2 and exc.message
        return
    check_invariants(m)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_as_replay_json_is_refused_or_loads(data: bytes) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "replay.json").write_bytes(data)
        with contextlib.suppress(ManifestError):
            manifest.load(Path(folder))
