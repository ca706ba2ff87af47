"""Lock and download failures with the real pip-compile and pip, against a local package folder the test
makes (no index, no config files): each names its package and pip's reason, and how to reproduce it."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from replay.adapters import piptools
from replay.core.pyenv import Target, parse_lock
from replay.errors import BadInput
from tests import piplinks

TARGET = Target(python="3.11", abi="cp311", machine="x86_64", glibc=(2, 36))


@pytest.fixture
def links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "links"
    folder.mkdir()
    piplinks.wheel(folder, "okpkg", "1.0")
    piplinks.wheel(folder, "okpkg", "2.0")
    piplinks.wheel(folder, "needsok", "1.0", requires=("okpkg==2.0",))
    piplinks.wheel(folder, "linuxonly", "1.0", tag="py3-none-linux_x86_64")
    piplinks.sdist_with_extension(folder, "cext", "1.0")
    for key, value in piplinks.only_links(folder).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REPLAY_CACHE_DIR", str(tmp_path / "cache"))
    return folder


def lock_fails(tmp_path: Path, requirements_in: str) -> BadInput:
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(BadInput) as caught:
        piptools.compile_lock(work, requirements_in, "requirements.lock")
    return caught.value


def test_a_version_that_does_not_exist(tmp_path: Path, links: Path) -> None:
    error = lock_fails(tmp_path, "okpkg==9.9\n")
    assert error.message == "cannot lock okpkg: no version of okpkg matches ==9.9 (the index has 1.0, 2.0)"
    # The printed command reproduces the failure, from a folder that outlives the capture.
    again = error.hint.split("reproduce with: ", 1)[1]
    proc = subprocess.run(again, shell=True, capture_output=True, text=True)
    assert proc.returncode != 0 and "okpkg==9.9" in proc.stdout + proc.stderr
    assert shlex.split(again)[1] == str(tmp_path / "cache" / "failed-lock")


def test_two_conflicting_pins(tmp_path: Path, links: Path) -> None:
    error = lock_fails(tmp_path, "okpkg==1.0\nneedsok==1.0\n")
    assert error.message == ("cannot lock okpkg: conflicting pins: The user requested okpkg==1.0; "
                             "needsok 1.0 depends on okpkg==2.0")
    assert "pip check" in error.hint


def test_a_source_only_package_with_an_extension_is_named_with_the_way_out(tmp_path: Path, links: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    lock = piptools.compile_lock(work, "cext==1.0\n", "requirements.lock")  # its metadata is enough to lock
    with pytest.raises(BadInput) as caught:
        piptools.fetch_wheels(parse_lock(lock), TARGET)
    error = caught.value
    assert error.message == ("cext 1.0 exists only as a source distribution (no wheel on the index), which the "
                             "image cannot compile offline")
    assert "python -m pip wheel --no-deps cext==1.0 -w wheels/" in error.hint and "--requirements" in error.hint
    assert (tmp_path / "cache" / "failed-download" / "missing.txt").read_text().startswith("cext==1.0 --hash=sha256:")


def test_a_platform_with_no_wheel(tmp_path: Path, links: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    lock = piptools.compile_lock(work, "linuxonly==1.0\n", "requirements.lock")
    with pytest.raises(BadInput) as caught:
        piptools.fetch_wheels(parse_lock(lock), TARGET)
    assert caught.value.message == ("no wheel of linuxonly 1.0 fits the image (CPython 3.11 on linux x86_64 "
                                    "(glibc 2.36)): the index has wheels for py3-none-linux_x86_64")


def test_a_good_lock_reports_progress_and_bytes(tmp_path: Path, links: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    seen: list[str] = []
    lock = piptools.compile_lock(work, "okpkg==2.0\n", "requirements.lock", on_status=seen.append)
    assert "resolving okpkg" in seen and "hashing okpkg" in seen
    done: list[int] = []
    wheels = piptools.fetch_wheels(parse_lock(lock), TARGET, on_bytes=done.append)
    assert [w.name for w in wheels] == ["okpkg-2.0-py3-none-any.whl"]
    assert done and done[-1] == wheels[0].stat().st_size
