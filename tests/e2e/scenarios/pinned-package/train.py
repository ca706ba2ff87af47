"""A pure-Python run whose one output records the version of the package it imported."""

from pathlib import Path

import six

Path("out").mkdir(exist_ok=True)
Path("out/version.txt").write_text(f"six {six.__version__}\n")
