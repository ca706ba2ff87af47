"""What replay reads from pip-compile's and pip's output (replay.adapters.pipoutput), on recorded real output
(tests/unit/pip_outputs/: pip-compile 7 and pip 26 against a local find-links folder the recording made)."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.adapters import pipoutput

OUTPUTS = Path(__file__).parent / "pip_outputs"


def recorded(name: str) -> str:
    return (OUTPUTS / f"{name}.txt").read_text()


@pytest.mark.parametrize(("name", "package", "kind", "reason"), [
    ("compile-no-such-version", "okpkg", "no-version", "no version of okpkg matches ==9.9 (the index has 1.0, 2.0)"),
    ("compile-no-such-package", "nothere", "no-version",
     "no version of nothere matches ==1.0 (the index has no version of it)"),
    ("compile-conflict", "okpkg", "conflict",
     "conflicting pins: The user requested okpkg==1.0; needsok 1.0 depends on okpkg==2.0"),
    ("compile-sdist-metadata-fails", "badmeta", "metadata",
     "building the metadata of badmeta from its source failed (fatal error: Python.h: No such file or directory)"),
])
def test_compile_failures_name_the_package_and_pips_reason(name: str, package: str, kind: str, reason: str) -> None:
    failure = pipoutput.compile_failure(recorded(name))
    assert (failure.package, failure.kind, failure.reason) == (package, kind, reason)


def test_never_the_last_line_of_a_traceback() -> None:
    text = recorded("compile-sdist-metadata-fails")
    assert "raise error" in text
    assert pipoutput.plain_error(text) not in {"raise error from e", "raise error"}
    assert not pipoutput.plain_error(text).startswith("pip._internal")
    assert pipoutput.plain_error("Traceback (most recent call last):\n  File \"x\", line 1\n    raise error from e\n"
                                 "pip._internal.exceptions.X: boom\n") == "pip printed no reason"


def test_download_failures_and_why_no_file_fits() -> None:
    assert pipoutput.download_failure(recorded("download-cext")).package == "cext"
    assert pipoutput.skipped_files(recorded("diagnose-cext")) == (True, [])
    assert pipoutput.skipped_files(recorded("diagnose-linuxonly")) == (False, ["py3-none-linux_x86_64"])


def test_status_lines_while_resolving_and_hashing() -> None:
    reader = pipoutput.LineReader()
    lines = [
        "  Collecting narwhals>=2.0.1 (from scikit-learn==1.9.1->-r requirements.in (line 2))",
        "  Processing /opt/pypi/files/scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_x86_64.whl (from -r x (line 2))",
        "  Collecting scikit-learn==1.9.1",
        "Generating hashes:",
        "  numpy",
        "    Hashing numpy-2.4.6-cp311-cp311-win32.whl",
    ]
    assert [reader.status(line) for line in lines] == [
        "resolving narwhals", "resolving scikit_learn", "resolving scikit-learn", "hashing", "hashing numpy", None]


def test_bytes_from_raw_progress_and_saved_files() -> None:
    counter = pipoutput.ByteCounter()
    sizes = {"/w/a.whl": 1000}
    for line in ["Collecting a==1", "Progress 0 of 1000", "Progress 600 of 1000", "Saved /w/a.whl",
                 "Progress 50 of 70"]:
        counter.feed(line, sizes.get)
    assert counter.total == 1050
