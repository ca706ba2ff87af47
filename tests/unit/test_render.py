from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import tarfile
from pathlib import Path

import jinja2
import jinja2.meta
import pytest

from replay.core.capture import dockerfile as render
from replay.core.capture.dockerfile import (
    FIXED_MTIME,
    CapsuleLayerContext,
    DockerfileContext,
    render_capsule_dockerfile,
    render_dockerfile,
    write_build_context,
    write_capsule_context,
)

GOLDEN = Path(__file__).parent / "golden" / "Dockerfile.golden"
SITE_GOLDEN = Path(__file__).parent / "golden" / "Dockerfile.site-packages.golden"  # --auto-seed's hook files
DEBS_GOLDEN = Path(__file__).parent / "golden" / "Dockerfile.debs.golden"  # system packages the base lacks
CAPSULE_GOLDEN = Path(__file__).parent / "golden" / "capsule.Dockerfile.golden"
ENV_ID = "sha256:" + "e" * 64
BASE = "replay-base/python:3.11-bookworm"
ARGV = ["python", "train.py", "--seed", "7", "--name", 'run "a"']
RUN_ENV = [("OMP_NUM_THREADS", "2"), ("PYTHONHASHSEED", "7"), ("REPLAY_SEED", "7")]
ENV = [("PYTHONPATH", "/workspace/src")]
LABELS = [
    ("io.replay.name", "demo"),
    ("io.replay.schema-version", "1"),
    ("org.opencontainers.image.description", 'python train.py --seed 7 --name run "a"'),
    ("org.opencontainers.image.revision", "0123456789abcdef0123456789abcdef01234567"),
    ("org.opencontainers.image.source", "https://github.com/o/r.git"),
]


def context(**changes: object) -> DockerfileContext:
    ctx = DockerfileContext(base_ref=BASE, replay_version="0.1.0", venv="/opt/venv", workspace="/workspace",
                            env=list(ENV))
    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]


def capsule_context(**changes: object) -> CapsuleLayerContext:
    ctx = CapsuleLayerContext(
        environment_id=ENV_ID,
        replay_version="0.1.0",
        manifest_path="/replay/replay.json",
        workdir="/workspace/src",
        argv=list(ARGV),
        run_env=list(RUN_ENV),
        labels=list(LABELS),
    )
    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined as the Dockerfile parser does."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        out.append((keyword, args))
        pending = ""
    assert not pending, "a continuation runs off the end of the file"
    return out


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    froms = [i for i, (kw, _) in enumerate(steps) if kw == "FROM"]
    return steps[froms[-1]:]


def docker_double_quoted(text: str) -> str:
    """What Docker makes of the inside of a "..." word (buildkit shell/lex.go processDoubleQuote), no build env:
    only \\" \\$ \\\\ are escapes, any other backslash stays literal, and $NAME / ${NAME} expand (here to "")."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"$\\':
            out.append(text[i + 1])
            i += 2
        elif ch == "$":
            match = re.match(r"\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])", text[i:])
            if match is None:
                out.append("$")
                i += 1
            else:
                i += match.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def key_values(args: str) -> list[tuple[str, str]]:
    """KEY="value" pairs of an ENV or LABEL instruction, decoded the way Docker decodes them."""
    pairs = re.findall(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S+)', args)
    return [(k, docker_double_quoted(v[1:-1]) if v.startswith('"') else v) for k, v in pairs]


# --- render_dockerfile ---------------------------------------------------------------------------------


def test_matches_golden_file() -> None:
    assert render_dockerfile(context()) == GOLDEN.read_text()


SITE = "/opt/venv/lib/python3.11/site-packages"


def test_site_packages_matches_its_golden_file() -> None:
    assert render_dockerfile(context(site_packages=SITE)) == SITE_GOLDEN.read_text()


def test_site_packages_are_one_copy_right_after_the_virtualenv() -> None:
    plain = render_dockerfile(context())
    text = render_dockerfile(context(site_packages=SITE))
    stage, plain_stage = final_stage(text), final_stage(plain)
    venv = stage.index(("COPY", "--from=packages /replay/requirements.lock /replay/requirements.lock"))
    assert stage[venv + 1] == ("COPY", f"site-packages/ {SITE}/")
    assert stage[:venv + 1] + stage[venv + 2:] == plain_stage  # nothing else changes
    assert instructions(text)[:len(instructions(plain)) - len(plain_stage)] == \
        instructions(plain)[:len(instructions(plain)) - len(plain_stage)]  # the packages stage stays cached
    assert "site-packages" not in plain


def test_system_packages_match_their_golden_file() -> None:
    assert render_dockerfile(context(has_debs=True)) == DEBS_GOLDEN.read_text()


def test_system_packages_install_offline_first_in_the_environment_stage() -> None:
    plain = final_stage(render_dockerfile(context()))
    stage = final_stage(render_dockerfile(context(has_debs=True)))
    assert stage[1:3] == [("COPY", "debs/ /tmp/debs/"), ("RUN", "dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs")]
    assert stage[:1] + stage[3:] == plain  # before the user and the virtualenv: the rarely changing layers first
    assert "debs" not in render_dockerfile(context())


def test_capsule_layer_matches_golden_file() -> None:
    assert render_capsule_dockerfile(capsule_context()) == CAPSULE_GOLDEN.read_text()


def test_environment_stage_structure() -> None:
    text = render_dockerfile(context())
    steps = instructions(text)
    assert [args for kw, args in steps if kw == "FROM"] == [f"{BASE} AS packages", f"{BASE} AS environment"]
    stage = final_stage(text)
    keywords = [kw for kw, _ in stage]
    assert keywords == ["FROM", "RUN", "COPY", "COPY", "ENV", "COPY", "LABEL"]
    env = dict(key_values(next(args for kw, args in stage if kw == "ENV")))
    assert env == {
        "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VIRTUAL_ENV": "/opt/venv",
        "PYTHONDONTWRITEBYTECODE": "1",
        **dict(ENV),
        "PYTHONUNBUFFERED": "1",
    }
    assert stage[-1] == ("LABEL", 'io.replay.stage="environment"')


def test_environment_holds_nothing_of_the_run() -> None:
    # The environment image's ID must not depend on the run: no command, seed, name, labels, user or manifest.
    text = render_dockerfile(context())
    for word in ("CMD", "USER", "WORKDIR", "replay.json", "REPLAY_SEED", "OMP_NUM_THREADS", "io.replay.name"):
        assert word not in "\n".join(line for line in text.splitlines() if not line.startswith("#")), word


def test_capsule_layer_structure() -> None:
    stage = instructions(render_capsule_dockerfile(capsule_context()))
    assert [kw for kw, _ in stage] == ["FROM", "COPY", "ENV", "LABEL", "USER", "WORKDIR", "CMD"]
    assert stage[0] == ("FROM", ENV_ID)
    assert stage[1] == ("COPY", "replay.json /replay/replay.json")
    assert key_values(stage[2][1]) == RUN_ENV
    assert key_values(stage[3][1]) == LABELS
    assert ("USER", "10001:10001") in stage
    assert ("WORKDIR", "/workspace/src") in stage
    assert json.loads(stage[-1][1]) == ARGV


def test_capsule_layer_without_run_env_has_no_env() -> None:
    stage = instructions(render_capsule_dockerfile(capsule_context(run_env=[])))
    assert [kw for kw, _ in stage] == ["FROM", "COPY", "LABEL", "USER", "WORKDIR", "CMD"]


def test_values_are_docker_quoted() -> None:
    text = render_capsule_dockerfile(capsule_context())
    assert 'ENV OMP_NUM_THREADS="2" \\\n' in text
    assert 'org.opencontainers.image.description="python train.py --seed 7 --name run \\"a\\""' in text


def test_uid_is_used_for_user_and_group() -> None:
    text = render_dockerfile(context(uid=4242))
    assert "groupadd --system --gid 4242 replay" in text
    assert "useradd --system --uid 4242 " in text
    assert "10001" not in text
    assert ("USER", "4242:4242") in instructions(render_capsule_dockerfile(capsule_context(uid=4242)))


def test_no_packages_omits_pip_install() -> None:
    with_packages = render_dockerfile(context())
    without = render_dockerfile(context(has_packages=False))
    assert "pip install" in with_packages
    assert "pip install" not in without
    assert [kw for kw, _ in instructions(without)].count("RUN") == 2  # venv + useradd
    removed = [line for line in with_packages.splitlines() if line not in without.splitlines()]
    assert removed == [
        "RUN /opt/venv/bin/python -m pip install --no-index --find-links /tmp/wheels --require-hashes --no-cache-dir \\",
        "        --disable-pip-version-check -r /replay/requirements.lock",
    ]
    assert "COPY wheels/ /tmp/wheels/\nLABEL io.replay.stage=\"packages\"\n" in without


def test_pip_compiles_hash_checked_pycs_so_a_rebuilt_stage_has_the_same_bytes() -> None:
    steps = instructions(render_dockerfile(context()))
    assert steps[1] == ("ENV", "SOURCE_DATE_EPOCH=315532800")  # before the venv and pip compile anything
    assert ("ENV", "SOURCE_DATE_EPOCH=315532800") not in final_stage(render_dockerfile(context()))


def test_empty_env_keeps_env_valid() -> None:
    stage = final_stage(render_dockerfile(context(env=[])))
    env = [args for kw, args in stage if kw == "ENV"]
    assert len(env) == 1
    assert [k for k, _ in key_values(env[0])] == ["PATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"]


@pytest.mark.parametrize("template,fields", [("Dockerfile.j2", DockerfileContext),
                                             ("capsule.Dockerfile.j2", CapsuleLayerContext)])
def test_template_uses_exactly_the_context_fields(template: str, fields: type) -> None:
    source = (render.templates_dir() / template).read_text()
    used = jinja2.meta.find_undeclared_variables(render.template_environment().parse(source))
    assert used == {f.name for f in dataclasses.fields(fields)}


def test_strict_undefined_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ok.j2").write_text("FROM {{ base_ref }}\n")
    (tmp_path / "bad.j2").write_text("FROM {{ base_ref }}\nUSER {{ no_such_field }}\n")
    monkeypatch.setattr(render, "templates_dir", lambda: tmp_path)
    assert render_dockerfile(context(), template="ok.j2") == f"FROM {BASE}\n"  # keep_trailing_newline
    with pytest.raises(jinja2.UndefinedError, match="no_such_field"):
        render_dockerfile(context(), template="bad.j2")


def test_strict_undefined_attribute_of_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "attr.j2").write_text("{{ base_ref.nope }}")
    monkeypatch.setattr(render, "templates_dir", lambda: tmp_path)
    with pytest.raises(jinja2.UndefinedError):
        render_dockerfile(context(), template="attr.j2")


def test_no_html_autoescape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "raw.j2").write_text("RUN {{ workspace }}")
    monkeypatch.setattr(render, "templates_dir", lambda: tmp_path)
    assert render_dockerfile(context(workspace="a<b>&'c\""), template="raw.j2") == "RUN a<b>&'c\""


@pytest.mark.parametrize("value", ["--filter x>0&y<1", "--name it's", "--price $5 --dir ${HOME}/x"])
def test_label_and_env_values_survive_docker_quoting(value: str) -> None:
    text = render_capsule_dockerfile(capsule_context(labels=[("org.opencontainers.image.description", value)],
                                                     run_env=[("EXTRA", value)]))
    stage = instructions(text)
    assert key_values(next(args for kw, args in stage if kw == "LABEL")) == [
        ("org.opencontainers.image.description", value)
    ]
    assert dict(key_values(next(args for kw, args in stage if kw == "ENV")))["EXTRA"] == value


def test_docker_quote_decoder_itself() -> None:
    # The helper above must read Docker's quoting right for this test to mean anything.
    assert docker_double_quoted(r"a \"b\" c\\d \u0026 $HOME ${X}y \$5 $") == 'a "b" c\\d \\u0026  y $5 $'


# --- write_build_context -------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[Path], list[str]]:
    code = tmp_path / "project"
    files = {
        "train.py": b"print('train')\n",
        "run.sh": b"#!/bin/sh\npython train.py\n",
        "pkg/__init__.py": b"",
        "pkg/sub/mod.py": b"X = 1\n",
        "a.txt": b"a",
    }
    for rel, data in files.items():
        (code / rel).parent.mkdir(parents=True, exist_ok=True)
        (code / rel).write_bytes(data)
    (code / "run.sh").chmod(0o755)
    (code / "train.py").chmod(0o644)
    wheels_dir = tmp_path / "wheelhouse"
    wheels_dir.mkdir()
    wheels = [wheels_dir / "zlib_thing-1.0-py3-none-any.whl", wheels_dir / "alpha-2.0-py3-none-any.whl"]
    for w in wheels:
        w.write_bytes(b"PK\x03\x04" + w.name.encode())
    return code, wheels, ["train.py", "run.sh", "pkg/sub/mod.py", "pkg/__init__.py", "a.txt"]  # unsorted on purpose


def build(tree: tuple[Path, list[Path], list[str]]) -> bytes:
    code, wheels, rels = tree
    out = io.BytesIO()
    write_build_context(out, "FROM scratch\n", b"numpy==1.26.4\n", wheels, code, rels)
    return out.getvalue()


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_context_entries_in_order(tree: tuple[Path, list[Path], list[str]]) -> None:
    names = [m.name for m in members(build(tree))]
    assert names == [
        "Dockerfile",
        "requirements.lock",
        "wheels",
        "wheels/alpha-2.0-py3-none-any.whl",
        "wheels/zlib_thing-1.0-py3-none-any.whl",
        "code",
        "code/a.txt",
        "code/pkg",
        "code/pkg/__init__.py",
        "code/pkg/sub",
        "code/pkg/sub/mod.py",
        "code/run.sh",
        "code/train.py",
    ]


def test_context_site_files_come_after_the_wheels_sorted(tree: tuple[Path, list[Path], list[str]]) -> None:
    code, wheels, rels = tree
    out = io.BytesIO()
    site = {"replay/seeding.py": b"S", "_replay_seeding.py": b"H", "replay/__init__.py": b"I"}
    write_build_context(out, "FROM scratch\n", b"", wheels, code, rels, site)
    names = [m.name for m in members(out.getvalue())]
    start = names.index("site-packages")
    assert names[start - 1] == "wheels/zlib_thing-1.0-py3-none-any.whl"
    assert names[start:start + 5] == ["site-packages", "site-packages/_replay_seeding.py", "site-packages/replay",
                                      "site-packages/replay/__init__.py", "site-packages/replay/seeding.py"]
    assert names[start + 5] == "code"
    assert "site-packages" not in [m.name for m in members(build(tree))]  # none asked for: no folder


def test_capsule_context_holds_only_its_dockerfile_and_manifest() -> None:
    out = io.BytesIO()
    write_capsule_context(out, "FROM sha256:e\n", b'{"schema_version": 1}\n')
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.getnames() == ["Dockerfile", "replay.json"]
        handle = tar.extractfile("replay.json")
        assert handle is not None and handle.read() == b'{"schema_version": 1}\n'
        assert all((m.mtime, m.uid, m.gid) == (FIXED_MTIME, 0, 0) for m in tar.getmembers())


def test_context_contents(tree: tuple[Path, list[Path], list[str]]) -> None:
    code, wheels, _ = tree
    data = build(tree)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        def read(name: str) -> bytes:
            handle = tar.extractfile(name)
            assert handle is not None
            return handle.read()

        assert read("Dockerfile") == b"FROM scratch\n"
        assert read("requirements.lock") == b"numpy==1.26.4\n"
        assert read("wheels/alpha-2.0-py3-none-any.whl") == wheels[1].read_bytes()
        assert read("code/pkg/sub/mod.py") == b"X = 1\n"
        assert read("code/run.sh") == (code / "run.sh").read_bytes()
        assert read("code/pkg/__init__.py") == b""


def test_context_metadata_is_normalized(tree: tuple[Path, list[Path], list[str]]) -> None:
    modes = {}
    for m in members(build(tree)):
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (FIXED_MTIME, 0, 0, "", ""), m.name
        modes[m.name] = (m.type, m.mode)
    assert FIXED_MTIME == 315532800
    assert modes["code/run.sh"] == (tarfile.REGTYPE, 0o755)
    assert modes["code/train.py"] == (tarfile.REGTYPE, 0o644)
    assert modes["Dockerfile"] == (tarfile.REGTYPE, 0o644)
    assert modes["code/pkg/sub"] == (tarfile.DIRTYPE, 0o755)
    assert modes["wheels"] == (tarfile.DIRTYPE, 0o755)
    assert {mode for name, (kind, mode) in modes.items() if kind == tarfile.REGTYPE and name != "code/run.sh"} == {0o644}


def test_context_is_byte_identical_across_mtime_and_mode_changes(tree: tuple[Path, list[Path], list[str]]) -> None:
    code, wheels, _ = tree
    first = build(tree)
    for path in [*code.rglob("*"), *wheels]:
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (code / "train.py").chmod(0o600)
    (code / "a.txt").chmod(0o664)
    (code / "run.sh").chmod(0o700)
    (code / "pkg" / "sub").chmod(0o700)
    second = build(tree)
    assert second == first
    assert build(tree) == first


def test_context_changes_with_content(tree: tuple[Path, list[Path], list[str]]) -> None:
    code, _, _ = tree
    first = build(tree)
    (code / "pkg" / "sub" / "mod.py").write_bytes(b"X = 2\n")
    assert build(tree) != first
    (code / "pkg" / "sub" / "mod.py").write_bytes(b"X = 1\n")
    (code / "train.py").chmod(0o755)  # becoming executable is a real change
    assert build(tree) != first
