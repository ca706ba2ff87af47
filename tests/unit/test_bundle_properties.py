"""Property tests for the parsers of untrusted bundle input: they refuse with BundleError, never crash."""

from __future__ import annotations

import contextlib
import json
import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from replay.core.share.bundle.format import BundleError, parse_header, parse_index, safe_relpath

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=150)
@given(st.text(max_size=60))
def test_safe_relpath_returns_only_plain_relative_paths(path: str) -> None:
    try:
        got = safe_relpath(path, "t")
    except BundleError:
        return
    assert not got.startswith("/") and ".." not in got.split("/") and posixpath.normpath(got) == got
    assert "\0" not in got and "\\" not in got


@settings(max_examples=150)
@given(st.dictionaries(st.sampled_from(["format", "version", "members", "images", "capsules", "x"]), json_values))
def test_parse_index_refuses_anything_malformed_with_bundle_error(doc: dict[str, object]) -> None:
    doc.setdefault("format", "replay-bundle")
    doc.setdefault("version", 1)
    with contextlib.suppress(BundleError):
        parse_index(json.dumps(doc).encode())


@settings(max_examples=150)
@given(st.binary(min_size=512, max_size=512))
def test_parse_header_refuses_random_blocks(block: bytes) -> None:
    with contextlib.suppress(BundleError):
        parse_header(block, "t")
