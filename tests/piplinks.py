"""A tiny local package folder for pip (``PIP_FIND_LINKS``), made by a test: pure-Python wheels written by
hand, and source-only packages whose in-tree build backend gives metadata but cannot build a wheel (as a
package with a C extension and no compiler)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path


def wheel(links: Path, name: str, version: str, tag: str = "py3-none-any", requires: tuple[str, ...] = ()) -> Path:
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{name}/__init__.py": f"__version__ = {version!r}\n", f"{dist}/METADATA": meta,
             f"{dist}/WHEEL": f"Wheel-Version: 1.0\nGenerator: replay-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"}
    record = ""
    for path, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content.encode()).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(content)}\n"
    files[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    out = links / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for path, content in files.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), content)
    return out


def sdist_with_extension(links: Path, name: str, version: str) -> Path:
    base = f"{name}-{version}"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    backend = (
        "import os\n"
        "def get_requires_for_build_wheel(config_settings=None):\n    return []\n"
        "def prepare_metadata_for_build_wheel(directory, config_settings=None):\n"
        f"    info = os.path.join(directory, '{base}.dist-info')\n    os.makedirs(info)\n"
        f"    open(os.path.join(info, 'METADATA'), 'w').write({meta!r})\n    return '{base}.dist-info'\n"
        "def build_wheel(directory, config_settings=None, metadata_directory=None):\n"
        f"    raise SystemExit('{name}: compiling _speedups.c needs a C compiler')\n"
    )
    files = {"PKG-INFO": meta, "backend.py": backend, "_speedups.c": "int speedup(void) { return 1; }\n",
             "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'}
    out = links / f"{base}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def only_links(links: Path) -> dict[str, str]:
    """pip settings that see nothing but ``links``: no config files (this machine's mirrors), no index."""
    return {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(links)}
