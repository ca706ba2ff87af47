"""The project's own packages in the image: one .pth of import roots, a minimal dist-info for each package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from replay.core.capture import projectcode
from replay.manifest import ProjectPackage, PythonEnv


def python_env(*packages: ProjectPackage) -> PythonEnv:
    paths = sorted({p for pkg in packages for p in pkg.paths})
    return PythonEnv("3.11.7", "CPython", "/venv/bin/python", project_paths=paths, project_packages=list(packages))


def test_no_project_package_needs_no_file() -> None:
    assert projectcode.image_site_files(python_env()) == {}


def test_the_pth_lists_the_import_roots_in_the_workspace() -> None:
    files = projectcode.image_site_files(python_env(ProjectPackage("a", "1.0", ["packages/a/src"]),
                                                    ProjectPackage("b", "2.0", ["."])))

    assert files[projectcode.PTH_NAME] == b"/workspace\n/workspace/packages/a/src\n"
    assert sorted(files) == [projectcode.PTH_NAME, "a-1.0.dist-info/INSTALLER", "a-1.0.dist-info/METADATA",
                             "b-2.0.dist-info/INSTALLER", "b-2.0.dist-info/METADATA"]


def test_the_dist_info_name_escapes_as_wheel_installers_do() -> None:
    assert projectcode.dist_info_name("my.pkg-name", "1.0.dev3+g12ab") == "my_pkg_name-1.0.dev3+g12ab.dist-info"


def test_importlib_metadata_and_import_read_the_files_as_a_site_packages_would(tmp_path: Path) -> None:
    """The files laid into a real site folder: a fresh interpreter imports the package from the root the .pth
    names and reads its version, as `pkg.__version__ = metadata.version("my-pkg")` does."""
    site, workspace = tmp_path / "site", tmp_path / "workspace"
    (workspace / "src" / "my_pkg").mkdir(parents=True)
    (workspace / "src" / "my_pkg" / "__init__.py").write_text(
        "from importlib import metadata\n__version__ = metadata.version('my-pkg')\n")
    files = projectcode.image_site_files(python_env(ProjectPackage("my-pkg", "0.3.1", ["src"])))
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data.replace(b"/workspace", str(workspace).encode()))

    out = subprocess.run([sys.executable, "-I", "-c", f"import site; site.addsitedir({str(site)!r}); "
                          "import my_pkg; print(my_pkg.__version__, my_pkg.__file__)"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout.split()

    assert out == ["0.3.1", str(workspace / "src" / "my_pkg" / "__init__.py")]


ENTRY_POINTS_TXT = """[console_scripts]
train-digits = digits.cli:main
nested = digits.cli:group.run [extras]

[trainer.plugins]
basic = digits.plugins:basic
module-only = digits.plugins

[bad group!]
x = y:z
[gui_scripts]
../escape = digits.cli:main
sneaky = os:system('rm -rf /')
"""


def test_entry_points_are_parsed_keeping_only_what_the_image_can_recreate() -> None:
    assert projectcode.parse_entry_points(ENTRY_POINTS_TXT) == {
        "console_scripts": {"nested": "digits.cli:group.run", "train-digits": "digits.cli:main"},
        "trainer.plugins": {"basic": "digits.plugins:basic", "module-only": "digits.plugins"},
    }
    assert projectcode.parse_entry_points("") == {}


def test_console_scripts_become_bin_scripts_and_every_entry_point_is_in_the_dist_info(tmp_path: Path) -> None:
    """The scripts run for real: a console script imports its callable from the package and exits with it."""
    entry = projectcode.parse_entry_points(ENTRY_POINTS_TXT)
    env = python_env(ProjectPackage("digits", "1.0", ["."], entry_points=entry))
    scripts = projectcode.image_scripts(env, "/opt/venv")
    assert sorted(scripts) == ["nested", "train-digits"]
    assert scripts["train-digits"].startswith(b"#!/opt/venv/bin/python\n")
    files = projectcode.image_site_files(env)
    assert files["digits-1.0.dist-info/entry_points.txt"].decode() == projectcode.render_entry_points(entry)
    assert projectcode.parse_entry_points(files["digits-1.0.dist-info/entry_points.txt"].decode()) == entry

    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "__init__.py").write_text("")
    (tmp_path / "digits" / "cli.py").write_text(
        "import sys\n\ndef main():\n    print('trained', sys.argv[1:])\n    return 3\n\n"
        "class group:\n    @staticmethod\n    def run():\n        return 0\n")
    for name, text in scripts.items():
        body = text.decode().split("\n", 1)[1]  # without the image's #! line: run by this interpreter
        (tmp_path / name).write_text(body)
    ran = subprocess.run([sys.executable, str(tmp_path / "train-digits"), "--epochs", "2"], capture_output=True,
                         text=True, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert (ran.returncode, ran.stdout) == (3, "trained ['--epochs', '2']\n")
    assert subprocess.run([sys.executable, str(tmp_path / "nested")], cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path)}).returncode == 0
