"""classify(): where each of the training interpreter's packages comes from in the image (the project's own
code from the snapshot, local folders built into wheels, index pins), as the probe reported them."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.core.capture.lock.environment import classify
from replay.core.pyenv import InstalledPackage, Interpreter
from replay.errors import BadInput


def interpreter(*packages: InstalledPackage) -> Interpreter:
    return Interpreter("/venv/bin/python", "3.11.7", "CPython", "cp311", "x86_64", list(packages))


def editable(name: str, folder: Path, roots: list[Path] | None = None, **extra: object) -> InstalledPackage:
    return InstalledPackage(name, "0.1", {"url": folder.as_uri(), "dir_info": {"editable": True}},
                            location=f"/venv/lib/python3.11/site-packages/{name}-0.1.dist-info",
                            import_roots=None if roots is None else [str(r) for r in roots], **extra)  # type: ignore[arg-type]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def test_an_editable_project_is_imported_from_the_roots_the_probe_found(project: Path) -> None:
    (project / "src" / "pkg").mkdir(parents=True)
    sources = classify(interpreter(editable("pkg", project, [project / "src"])), project)

    assert [(p.name, p.version, p.paths, p.kind) for p in sources.project] == [("pkg", "0.1", ["src"], "editable")]
    assert sources.project_paths == ["src"] and sources.pins == [] and sources.local_sources == []


def test_a_flat_layout_imported_from_the_project_root_is_recorded_as_dot(project: Path) -> None:
    sources = classify(interpreter(editable("pkg", project, [project])), project)

    assert sources.project_paths == ["."]


def test_a_monorepo_records_each_package_and_their_roots_once(project: Path) -> None:
    a, b = project / "packages" / "a", project / "packages" / "b"
    for folder in (a / "src", b):
        folder.mkdir(parents=True)
    sources = classify(interpreter(editable("a", a, [a / "src"]), editable("b", b, [b]),
                                   InstalledPackage("numpy", "2.4.6")), project)

    assert {p.name: p.paths for p in sources.project} == {"a": ["packages/a/src"], "b": ["packages/b"]}
    assert sources.project_paths == ["packages/a/src", "packages/b"]
    assert sources.pins == ["numpy==2.4.6"]


def test_roots_outside_the_project_are_not_recorded_and_an_empty_answer_falls_back_to_the_usual_layouts(
        project: Path, tmp_path: Path) -> None:
    (project / "src").mkdir()
    sources = classify(interpreter(editable("pkg", project, [tmp_path / "elsewhere"])), project)

    assert sources.project_paths == [".", "src"]


def test_an_editable_install_outside_the_project_and_a_non_editable_path_install_are_built_into_wheels(
        project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "sibling"
    inside = project / "libs" / "helper"
    inside.mkdir(parents=True)
    from_path = InstalledPackage("helper", "1.0", {"url": inside.as_uri(), "dir_info": {}})

    sources = classify(interpreter(editable("sibling", outside, [outside]), from_path), project)

    assert sources.local_sources == [outside, inside] and sources.project == []


def test_a_percent_encoded_path_is_read_as_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "my project"
    root.mkdir()
    sources = classify(interpreter(editable("pkg", root, [root])), root)

    assert sources.project_paths == ["."]


def legacy(name: str, egg_info: Path) -> InstalledPackage:
    """What the probe reports for a legacy `setup.py develop`: an .egg-info found on sys.path, no direct_url."""
    return InstalledPackage(name, "0.5", None, location=str(egg_info), import_roots=[str(egg_info.parent)])


def test_a_legacy_develop_install_inside_the_project_is_the_projects_code(project: Path) -> None:
    (project / "setup.py").write_text("")
    sources = classify(interpreter(legacy("legpkg", project / "legpkg.egg-info")), project)

    assert [(p.name, p.version, p.paths, p.kind) for p in sources.project] == [("legpkg", "0.5", ["."], "develop")]
    assert sources.pins == []


def test_a_legacy_develop_install_of_a_src_layout_finds_its_setup_py_one_folder_up(project: Path) -> None:
    (project / "setup.py").write_text("")
    (project / "src").mkdir()
    sources = classify(interpreter(legacy("legpkg", project / "src" / "legpkg.egg-info")), project)

    assert [p.paths for p in sources.project] == [["src"]]


def test_a_legacy_develop_install_elsewhere_is_built_into_a_wheel(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text("")
    sources = classify(interpreter(legacy("other", other / "other.egg-info")), project)

    assert sources.local_sources == [other] and sources.project == []


def test_installed_metadata_outside_site_packages_without_build_files_is_an_index_package(
        project: Path, tmp_path: Path) -> None:
    # `pip install --target DIR` on PYTHONPATH: real installs, with .dist-info (or old .egg-info) there.
    target = tmp_path / "target"
    target.mkdir()
    found = [InstalledPackage("six", "1.16.0", None, location=str(target / "six-1.16.0.dist-info"),
                              import_roots=[str(target)]),
             InstalledPackage("old", "1.0", None, location=str(target / "old-1.0.egg-info"), import_roots=[])]

    assert classify(interpreter(*found), project).pins == ["six==1.16.0", "old==1.0"]


def test_an_index_package_found_before_the_project_is_pinned(project: Path) -> None:
    # The probe itself no longer sees the working directory's leftover NAME.egg-info (test_probe.py), but an
    # index package stays an index package.
    sources = classify(interpreter(InstalledPackage("numpy", "2.4.6", None,
                                                    location="/venv/lib/python3.11/site-packages/numpy.dist-info")),
                       project)
    assert sources.pins == ["numpy==2.4.6"]


def test_a_module_mapped_to_a_folder_of_another_name_is_refused_with_a_way_out(project: Path) -> None:
    pkg = editable("pkg", project, [], remapped={"pkg": str(project / "lib")})

    with pytest.raises(BadInput) as caught:
        classify(interpreter(pkg), project)

    assert "pkg" in caught.value.message and "lib" in caught.value.message
    assert caught.value.exit_code == 2 and "pip install -e" in caught.value.hint


def test_a_vcs_install_is_set_apart(project: Path) -> None:
    vcs = InstalledPackage("fancy", "0.3", {"url": "https://git.example.invalid/fancy.git", "vcs_info": {}})
    assert classify(interpreter(vcs), project).vcs == [vcs]
