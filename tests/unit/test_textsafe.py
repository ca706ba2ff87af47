"""The one neutralizer (replay.textsafe) and the reports that use it: whatever a capsule or a replay's log
holds, no control character reaches a terminal or a report raw, Markdown carries no HTML and its code spans
cannot be closed from inside, and every JUnit XML is well-formed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from replay.core.batch.render import to_html
from replay.core.batch.render import to_junit as batch_junit
from replay.core.batch.render import to_markdown as batch_markdown
from replay.core.batch.report import build_batch_report
from replay.core.verify.report import RunOutcome, to_junit, to_markdown
from replay.textsafe import md_code, md_text, neutral, xml_text
from tests.unit.test_batch_report import batch, report
from tests.unit.test_report import _report

# What a hostile author puts in a string: clear screen, cursor home, OSC title, OSC 8 link, CR overwrite,
# backspaces, a bidi override, a newline that starts a fake line, raw HTML and backticks.
PAYLOAD = ("\x1b[2J\x1b[H\x1b]0;owned\x07\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\r"
           "IDENTICAL (exit 0)\x08\x08\u202e\nverdict: identical <script>alert(1)</script> ``x`` \ud800\uffff")
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff\ufffe\uffff]")


@given(st.text())
def test_neutral_leaves_no_control_character_and_only_escapes(text: str) -> None:
    one_line = neutral(text)
    assert not RAW_CONTROL.search(one_line) and "\n" not in one_line and "\t" not in one_line
    kept = neutral(text, keep_newlines=True)
    assert not RAW_CONTROL.search(kept) and kept.count("\n") == text.count("\n")


def test_neutral_shows_what_was_there() -> None:
    assert neutral("a\x1b[2Jb\r\n\u202e") == "a\\x1b[2Jb\\r\\n\\u202e"
    assert neutral("plain text, ünïcode & [markup]") == "plain text, ünïcode & [markup]"


@given(st.text())
def test_markdown_text_holds_no_html_and_no_syntax(text: str) -> None:
    out = md_text(text)
    assert "<" not in out and not RAW_CONTROL.search(out) and "\n" not in out
    assert not re.search(r"(?<!\\)[`|*_\[\]]", out.replace("\\\\", ""))


@given(st.text())
def test_a_code_span_is_never_closed_from_inside(text: str) -> None:
    span = md_code(text)
    fence = re.match(r"`+", span)
    assert fence is not None
    inner = span[len(fence.group()):-len(fence.group())]
    assert span.endswith(fence.group())
    assert fence.group() not in inner.replace(fence.group() + "`", "")  # no run of the fence's length inside
    assert "\n" not in span and not re.search(r"(?<!\\)\|", span)


@given(st.text())
def test_xml_text_always_gives_well_formed_xml(text: str) -> None:
    root = ET.Element("case", name=xml_text(text, False))
    root.text = xml_text(text)
    ET.fromstring(ET.tostring(root, encoding="unicode"))


def test_verify_reports_escape_a_hostile_capsule_and_log() -> None:
    r = _report(capsule=PAYLOAD, capsule_path=PAYLOAD, error=PAYLOAD,
                run=RunOutcome(exit_code=1, log_tail="\x1b[31mred\x1b[0m\x00\x0b" + PAYLOAD))
    assert r.hosts.capture is not None
    r.hosts.capture.cpu_model = PAYLOAD
    r.outputs[1].path = PAYLOAD
    md = to_markdown(r)
    assert "\x1b" not in md and "\r" not in md
    assert "verdict: identical" not in md.splitlines()  # no line of its own from a newline in a name
    html = rendered(md)  # as a pull request or a CI page shows it (markdown-it, the renderer of the issue)
    assert "<script" not in html and "&lt;script&gt;" in html
    root = ET.fromstring(to_junit(r).split("\n", 1)[1])
    assert "\\x1b[31mred" in (root.find("testsuite/testcase/error").text or "")  # type: ignore[union-attr]


def test_batch_reports_survive_ansi_in_a_log_and_hostile_names(tmp_path: Path) -> None:
    bad = report("c1", "error", 2, PAYLOAD)
    bad.run = RunOutcome(exit_code=1, log_tail="\x1b[1;32mEpoch 1\x1b[0m \x00 done")
    result = build_batch_report(batch(tmp_path, [report("c0", "diverged", 1), bad]))
    xml = batch_junit(result)
    ET.fromstring(xml.split("\n", 1)[1])  # well-formed, where the ANSI colours made the batch crash
    page, md = to_html(result), batch_markdown(result)
    assert "\x1b" not in xml + page + md and "<script>alert" not in page + rendered(md)


def rendered(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))
