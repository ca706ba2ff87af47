"""The system-library scan of an environment, its resolution against a base, and the plan's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.adapters.dpkg import dpkg_owner
from replay.core.capture import syslibs
from replay.core.events import NullReporter
from replay.core.pyenv import InstalledPackage, Interpreter
from replay.errors import BadInput
from replay.manifest import LibraryNeed
from tests.unit.elfbuild import shared_object

BASE_ID = "sha256:" + "b" * 64
LDCONFIG = """3 libs found in cache `/etc/ld.so.cache'
\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1
\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
\tlibgomp.so.1 (libc6) => /lib32/libgomp.so.1
"""


def install(site: Path, name: str, files: dict[str, bytes]) -> InstalledPackage:
    """A package in ``site``: its files and a RECORD listing them (as pip leaves it)."""
    meta = site / f"{name}-1.0.dist-info"
    meta.mkdir(parents=True)
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    rows = [f"{rel},sha256=x,{len(data)}" for rel, data in files.items()] + [f"{meta.name}/RECORD,,"]
    (meta / "RECORD").write_text("\n".join(rows) + "\n")
    return InstalledPackage(name, "1.0", location=str(meta))


def interpreter(*packages: InstalledPackage, executable: str = "/nonexistent/python3") -> Interpreter:
    return Interpreter(executable, "3.11.7", "CPython", "cp311", "x86_64", list(packages))


def test_a_library_no_file_of_the_environment_provides_is_needed(tmp_path: Path) -> None:
    lgbm = install(tmp_path, "lightgbm", {
        "lightgbm/lib/lib_lightgbm.so": shared_object(["libgomp.so.1", "libc.so.6"]),
        "lightgbm/__init__.py": b"",
    })

    assert syslibs.scan(interpreter(lgbm)) == [LibraryNeed("libc.so.6", "lightgbm"),
                                               LibraryNeed("libgomp.so.1", "lightgbm")]


def test_a_wheels_own_libs_folder_and_origin_runpath_resolve_first(tmp_path: Path) -> None:
    numpy = install(tmp_path, "numpy", {
        "numpy/core/_multiarray.cpython-311-x86_64-linux-gnu.so":
            shared_object(["libopenblas-r0.so", "libc.so.6"], runpath="$ORIGIN/../../numpy.libs"),
        "numpy.libs/libopenblas-r0.so": shared_object(["libgfortran-1a2b.so.5.0.0"]),
        "numpy.libs/libgfortran-1a2b.so.5.0.0": shared_object([], soname="libgfortran-1a2b.so.5"),
    })
    torch = install(tmp_path, "torch", {
        "torch/lib/libtorch.so": shared_object(["libc10.so"], runpath="${ORIGIN}"),
        "torch/lib/libc10.so": shared_object(["libstdc++.so.6"]),
        "torch/_C.so": shared_object(["libgfortran-1a2b.so.5"]),  # another package's soname: still the environment's
    })

    found = syslibs.scan(interpreter(numpy, torch))

    assert found == [LibraryNeed("libc.so.6", "numpy"), LibraryNeed("libstdc++.so.6", "torch")]


def test_a_record_that_leaves_the_site_or_a_link_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.so"
    outside.write_bytes(shared_object(["libevil.so.1"]))
    site = tmp_path / "site"
    pkg = install(site, "sly", {"sly/ok.py": b""})
    (site / "sly" / "linked.so").symlink_to(outside)
    record = Path(pkg.location or "") / "RECORD"
    record.write_text(record.read_text() + "../elsewhere.so,,\nsly/linked.so,,\n/abs/x.so,,\n")

    assert syslibs.scan(interpreter(pkg)) == []


def test_local_code_and_metadata_elsewhere_are_not_scanned(tmp_path: Path) -> None:
    pkg = install(tmp_path, "mine", {"mine/x.so": shared_object(["libfoo.so.1"])})
    pkg.import_roots = [str(tmp_path)]
    egg = InstalledPackage("old", "1.0", location=str(tmp_path / "old.egg-info"))

    assert syslibs.scan(interpreter(pkg, egg)) == []


def test_the_interpreters_needs_count_but_never_its_own_libpython(tmp_path: Path) -> None:
    exe = tmp_path / "python3"
    exe.write_bytes(shared_object(["libpython3.11.so.1.0", "libc.so.6"]))

    assert syslibs.scan(interpreter(executable=str(exe))) == [LibraryNeed("libc.so.6", syslibs.INTERPRETER)]


def test_ldconfig_output_gives_the_64_bit_names() -> None:
    assert syslibs.ldconfig_names(LDCONFIG) == {
        "libz.so.1": ["/lib/x86_64-linux-gnu/libz.so.1"], "libc.so.6": ["/lib/x86_64-linux-gnu/libc.so.6"],
    }


def test_dpkg_answers_name_the_package() -> None:
    assert dpkg_owner("libgomp1:amd64: /usr/lib/x86_64-linux-gnu/libgomp.so.1\n") == "libgomp1"
    assert dpkg_owner("libc6:amd64, libc6-dev: /usr/lib/x\n") == "libc6"
    assert dpkg_owner("dpkg-query: no path found matching pattern x\n") is None
    assert dpkg_owner("") is None


class NoProvider:
    def provider(self, library: str) -> str | None:
        return None


@pytest.fixture
def cached_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The base's library list as an earlier capture cached it (no engine is asked)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("REPLAY_CACHE_DIR", str(cache))
    (cache / "bases").mkdir(parents=True)
    (cache / "bases" / f"{BASE_ID.replace(':', '-')}.libs.json").write_text(json.dumps(["libc.so.6"]))


def test_a_library_no_package_provides_is_refused_with_the_way_out(tmp_path: Path, cached_base: None) -> None:
    lgbm = install(tmp_path / "site", "lightgbm", {"lightgbm/lib.so": shared_object(["libgomp.so.1", "libc.so.6"])})

    with pytest.raises(BadInput) as info:
        syslibs.plan(interpreter(lgbm), BASE_ID, [], engine=None, system=NoProvider(),  # type: ignore[arg-type]
                     reporter=NullReporter())

    assert info.value.exit_code == 2
    assert "libgomp.so.1" in info.value.message and "lightgbm" in info.value.message
    assert "--apt" in info.value.hint and "--base" in info.value.hint


def test_what_the_base_has_needs_no_package(tmp_path: Path, cached_base: None) -> None:
    pkg = install(tmp_path / "site", "plain", {"plain/x.so": shared_object(["libc.so.6"])})

    plan = syslibs.plan(interpreter(pkg), BASE_ID, [], engine=None, system=NoProvider(),  # type: ignore[arg-type]
                        reporter=NullReporter())

    assert plan.packages == [] and plan.debs == []


@pytest.mark.parametrize("name", ["FFmpeg", "a", "-x", "ffmpeg;rm", "../x"])
def test_a_bad_apt_name_is_refused(name: str) -> None:
    with pytest.raises(BadInput, match="is not a Debian package name"):
        syslibs.plan(interpreter(), BASE_ID, [name], engine=None, system=None,  # type: ignore[arg-type]
                     reporter=NullReporter())


def test_the_plan_reads_versions_from_the_downloaded_files(tmp_path: Path) -> None:
    for name in ["libgomp1_12.2.0-14+deb12u1_amd64.deb", "libavcodec59_7%3a5.1.6-0+deb12u1_amd64.deb",
                 "not-a-deb.txt", "EVIL_1_amd64.deb"]:
        (tmp_path / name).write_bytes(b"!<arch>\n")
    (tmp_path / "versions.tsv").write_text("ffmpeg\t7:5.1.6-0+deb12u1\ncurl\t7.88.1-10+deb12u8\n")
    wanted = {"libgomp1": [LibraryNeed("libgomp.so.1", "lightgbm")], "ffmpeg": [LibraryNeed("", "--apt")]}

    plan = syslibs._read_plan(tmp_path, wanted)

    assert [(p.name, p.version, p.needed_by) for p in plan.packages] == [
        ("ffmpeg", "7:5.1.6-0+deb12u1", [LibraryNeed("", "--apt")]),  # already in the base: its version
        ("libavcodec59", "7:5.1.6-0+deb12u1", []),  # a dependency apt pulled in
        ("libgomp1", "12.2.0-14+deb12u1", [LibraryNeed("libgomp.so.1", "lightgbm")]),
    ]
    assert [d.name for d in plan.debs] == ["libavcodec59_7%3a5.1.6-0+deb12u1_amd64.deb",
                                           "libgomp1_12.2.0-14+deb12u1_amd64.deb"]
