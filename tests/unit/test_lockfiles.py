"""Existing lock files parsed (replay.core.capture.lock.files): real shapes of each format, and properties over
arbitrary text: entries or one BadInput, never another exception."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.core.capture.lock import files as lockfiles
from replay.core.capture.lock.files import LockKind
from replay.core.pyenv import LockedRequirement, parse_lock
from replay.errors import BadInput


def h(char: str) -> str:
    return char * 64


REQUIREMENTS = f"""\
# uv export / pip-compile style
--index-url https://example.invalid/simple
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:{h("1")} \\
    --hash=sha256:{h("2")}
    # via tqdm
numpy==2.4.6 \\
    --hash=sha256:{h("3")}
six==1.16.0 --hash=sha256:{h("4")}  # a trailing comment
"""

POETRY = f"""\
[[package]]
name = "numpy"
version = "2.4.6"
description = ""
optional = false
python-versions = ">=3.11"
groups = ["main"]
files = [
    {{file = "numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl", hash = "sha256:{h("a")}"}},
    {{file = "numpy-2.4.6.tar.gz", hash = "sha256:{h("b")}"}},
]

[[package]]
name = "pytest"
version = "8.0.0"
groups = ["dev"]
markers = "python_version >= \\"3.8\\""
files = [{{file = "pytest-8.0.0-py3-none-any.whl", hash = "sha256:{h("c")}"}}]

[[package]]
name = "mylib"
version = "0.1"
files = []
[package.source]
type = "directory"
url = "../mylib"

[metadata]
lock-version = "2.1"
python-versions = ">=3.11"
content-hash = "x"
"""

POETRY_1_0 = f"""\
[[package]]
name = "six"
version = "1.16.0"
category = "main"

[metadata]
content-hash = "x"

[metadata.files]
six = [
    {{file = "six-1.16.0-py2.py3-none-any.whl", hash = "sha256:{h("d")}"}},
]
"""

PIPFILE = json.dumps({
    "_meta": {"hash": {"sha256": "x"}, "pipfile-spec": 6},
    "default": {
        "numpy": {"hashes": [f"sha256:{h('e')}"], "index": "pypi", "version": "==2.4.6"},
        "pywin32": {"hashes": [f"sha256:{h('f')}"], "markers": "sys_platform == 'win32'", "version": "==306"},
        "mylib": {"editable": True, "path": "."},
    },
    "develop": {
        "numpy": {"hashes": [f"sha256:{h('0')}"], "version": "==1.0"},
        "pytest": {"hashes": [f"sha256:{h('9')}"], "version": "==8.0.0"},
    },
})


def pins(reqs: list[LockedRequirement]) -> list[tuple[str, str, str]]:
    return [(r.name, r.version, r.marker) for r in reqs]


def test_requirements_lock_keeps_markers_and_hashes() -> None:
    reqs = lockfiles.parse_requirements_lock(REQUIREMENTS, "requirements.txt")
    assert pins(reqs) == [("colorama", "0.4.6", "sys_platform == 'win32'"), ("numpy", "2.4.6", ""), ("six", "1.16.0", "")]
    assert reqs[0].hashes == [h("1"), h("2")] and reqs[2].hashes == [h("4")]


def test_kind_by_name_then_content(tmp_path: Path) -> None:
    assert lockfiles.kind_of(tmp_path / "uv.lock", "") is LockKind.UV
    assert lockfiles.kind_of(tmp_path / "poetry.lock", "") is LockKind.POETRY
    assert lockfiles.kind_of(tmp_path / "Pipfile.lock", "{}") is LockKind.PIPFILE
    assert lockfiles.kind_of(tmp_path / "reqs.txt", REQUIREMENTS) is LockKind.REQUIREMENTS
    assert lockfiles.kind_of(tmp_path / "requirements.txt", "numpy==2.4.6\n# --hash=sha256:x\n") is None


@pytest.mark.parametrize(("text", "said"), [
    (f"numpy>=2 --hash=sha256:{h('1')}\n", "not pinned to one version"),
    (f"numpy==2.4.6 --hash=sha256:{h('1')}\nsix==1.16.0\n", "line 2 (six==1.16.0) has no sha256 hash"),
    (f"-r base.txt\nnumpy==2.4.6 --hash=sha256:{h('1')}\n", "line 1 refers to other files"),
    (f"-e .\nnumpy==2.4.6 --hash=sha256:{h('1')}\n", "installs a local path"),
    ("numpy==2.4.6 --hash=sha256:abc\n", "not sha256:HEX"),
    (f"numpy==2.4.6 --hash=sha512:{h('1')}\n", "has no sha256 hash"),
])
def test_requirements_lock_refusals_name_the_line(text: str, said: str) -> None:
    with pytest.raises(BadInput, match=re.escape(said)) as caught:
        lockfiles.parse_requirements_lock(text, "requirements.txt")
    assert caught.value.message.startswith("requirements.txt") and caught.value.hint


def test_uv_export_drops_local_lines() -> None:
    text = f"-e ./packages/core\n./vendored/lib\nsix==1.16.0 \\\n    --hash=sha256:{h('4')}\n"
    assert pins(lockfiles.parse(LockKind.UV, text, "uv.lock")) == [("six", "1.16.0", "")]


def test_poetry_lock_files_hashes_and_local_sources_left_out() -> None:
    reqs = lockfiles.parse_poetry_lock(POETRY, "poetry.lock")
    assert pins(reqs) == [("numpy", "2.4.6", ""), ("pytest", "8.0.0", 'python_version >= "3.8"')]
    assert reqs[0].hashes == [h("a"), h("b")]
    assert pins(lockfiles.parse_poetry_lock(POETRY_1_0, "poetry.lock")) == [("six", "1.16.0", "")]


def test_pipfile_lock_default_wins_over_develop() -> None:
    reqs = lockfiles.parse_pipfile_lock(PIPFILE, "Pipfile.lock")
    assert pins(reqs) == [("numpy", "2.4.6", ""), ("pywin32", "306", "sys_platform == 'win32'"), ("pytest", "8.0.0", "")]
    assert reqs[0].hashes == [h("e")]


@pytest.mark.parametrize(("parser", "text", "said"), [
    (lockfiles.parse_poetry_lock, "[[package]\nname=", "not valid TOML"),
    (lockfiles.parse_poetry_lock, '[[package]]\nname = "x"\nversion = "1"\n', "has no sha256 hash"),
    (lockfiles.parse_poetry_lock, 'package = "x"\n', "not a poetry lock"),
    (lockfiles.parse_pipfile_lock, "{", "not valid JSON"),
    (lockfiles.parse_pipfile_lock, '{"default": {"x": {"version": ">=1", "hashes": []}}}', "not pinned to one version"),
    (lockfiles.parse_pipfile_lock, '{"default": []}', "not a Pipfile.lock"),
])
def test_malformed_locks_are_one_clear_line(parser, text: str, said: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput, match=said):
        parser(text, "the.lock")


def test_render_reparses_with_the_lock_parser() -> None:
    reqs = lockfiles.parse_requirements_lock(REQUIREMENTS, "requirements.txt")
    text = lockfiles.render(reqs, ["Taken from requirements.txt"])
    assert text.startswith("# Taken from requirements.txt\n") and ";" not in text
    assert [(r.name, r.version, r.hashes) for r in parse_lock(text)] == [(r.name, r.version, r.hashes) for r in reqs]


# --- properties ---------------------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,6}(?:[-_.][A-Za-z0-9]{1,4})?", fullmatch=True)
versions = st.from_regex(r"[0-9]{1,3}(?:\.[0-9]{1,3}){0,3}(?:rc[0-9])?", fullmatch=True)
digests = st.text("0123456789abcdef", min_size=64, max_size=64)
entries = st.lists(st.tuples(names, versions, st.lists(digests, min_size=1, max_size=3, unique=True)),
                   min_size=1, max_size=8, unique_by=lambda e: e[0].lower())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_entries_or_one_bad_input(text: str) -> None:
    for kind in LockKind:
        try:
            reqs = lockfiles.parse(kind, text, "the.lock")
        except BadInput as exc:
            assert exc.message.startswith("the.lock") and "\n" not in exc.one_line()
        else:
            assert all(r.hashes and all(len(d) == 64 for d in r.hashes) for r in reqs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["[[package]]", "name = 1", 'name = "a"', 'version = "1"', "files = [{}]",
                                 'files = [{hash = "md5:1"}]', "[metadata.files]", "a = 3", "[package.source]",
                                 'type = "git"', "package = []", '"x" = [{file="f", hash = 5}]']), max_size=12))
def test_poetry_shaped_garbage_is_one_bad_input(lines: list[str]) -> None:
    with contextlib.suppress(BadInput):
        lockfiles.parse_poetry_lock("\n".join(lines), "poetry.lock")


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                    max_leaves=12))
def test_pipfile_shaped_garbage_is_one_bad_input(doc: object) -> None:
    for text in (json.dumps(doc), json.dumps({"default": doc}), json.dumps({"default": {"x": doc}})):
        with contextlib.suppress(BadInput):
            lockfiles.parse_pipfile_lock(text, "Pipfile.lock")


@settings(max_examples=100, deadline=None)
@given(entries)
def test_every_format_round_trips(items: list[tuple[str, str, list[str]]]) -> None:
    expected = [(n, v, hs) for n, v, hs in items]
    req_text = "".join(f"{n}=={v} " + " ".join(f"--hash=sha256:{d}" for d in hs) + "\n" for n, v, hs in items)
    poetry = "".join(f'[[package]]\nname = "{n}"\nversion = "{v}"\nfiles = ['
                     + ", ".join(f'{{file = "f", hash = "sha256:{d}"}}' for d in hs) + "]\n\n" for n, v, hs in items)
    pipfile = json.dumps({"default": {n: {"version": f"=={v}", "hashes": [f"sha256:{d}" for d in hs]}
                                      for n, v, hs in items}})
    for kind, text in ((LockKind.REQUIREMENTS, req_text), (LockKind.POETRY, poetry), (LockKind.PIPFILE, pipfile)):
        assert [(r.name, r.version, r.hashes) for r in lockfiles.parse(kind, text, "x")] == expected
    rendered = lockfiles.render([LockedRequirement(n, v, hs) for n, v, hs in items], [])
    assert sorted((r.name, r.version, r.hashes) for r in lockfiles.parse_requirements_lock(rendered, "x")) == \
        sorted(expected, key=lambda e: e[0])
