"""The verify report: a versioned JSON contract, plus JUnit XML and Markdown renderings of it.

Top-level keys of ``VerifyReport.to_dict()``, always all present, in this order:

``schema``          "replay.verify-report": what this document is.
``schema_version``  1. Bumped on any change a reader could notice; new optional keys inside the nested
                    objects do not bump it, renamed or removed keys do.
``capsule``         the capsule's name.
``capsule_path``    the capsule folder as given to ``replay verify``.
``image_id``        the image that was replayed (``sha256:...``), "" if none was reached.
``verdict``         "identical" (every output and metric the same), "equivalent" (the rest ignored or
                    within tolerance), "diverged", or "error" (no verdict: see ``error``).
``exit_code``       what ``replay verify`` exits with (0 identical/equivalent, 1 diverged, else the error's).
``outputs``         one object per output path, sorted: path, reference_sha256, replayed_sha256,
                    reference_size, replayed_size, status (identical | differs | within_tolerance | ignored |
                    missing | unexpected), ignored, explanation (``replay.core.verify.explanation``, or null),
                    tolerance (its description, or null).
``metrics``         one object per metric name, sorted: name, reference, replayed, abs_diff, rel_diff,
                    tolerance ("exact" or e.g. "abs 0.001"), status (identical | within_tolerance |
                    diverged | missing | unexpected).
``data``            the input data check: files, bytes, status.
``run``             the replayed command: exit_code, duration_s, timed_out, oom_killed, log_tail; and, where the
                    working tree was watched, ``undeclared_writes`` (the files it created or changed outside
                    the declared outputs, relative to the project, the first 1000) and ``undeclared_count``
                    (how many in all); both absent where the tree was not watched (new optional keys:
                    schema_version unchanged).
``diagnosis``       likely causes of a divergence, each {"kind": data | image | environment | hardware |
                    seed | command | noise, "message", "likely"}; empty unless diverged. ``noise``: an output
                    or metric whose differences are all timings, timestamps, addresses, temp paths or float
                    rounding, or that already varied between runs at capture (``replay.core.verify.noise``).
``hosts``           {"capture": HostInfo, "verify": HostInfo} as in replay.json's ``host``.
``timings``         seconds per stage, e.g. {"build": 0.0, "run": 41.2, "compare": 0.8, "total": 43.1}; an image
                    brought in first is a stage of its own: "pull" (a registry reference, first of all) or
                    "load" (a bundle's image, before "image").
``replay_version``  the replay that wrote the report.
``error``           one line when verdict is "error", else null.
``investigation``   ``verify --investigate`` on a divergence: {budget, extra_replays, seconds, cause (outside |
                    clock | hash_order | seed | threads | inside | unexplained), confirmed, finding, experiments:
                    [{name, changed, runs, agree, moved: [{name, between, detail, classes}], error}]}; else null.
``provenance``      where the capsule came from, in one line, for a bundle (signed by whom, unsigned, or
                    signature not checked) or a registry digest; null for a capsule folder.

Numbers that JSON cannot hold (NaN, Infinity, -Infinity: a diverged loss) are written as those strings, so
that the output is strict JSON that jq and every parser accepts.
"""

from __future__ import annotations

import enum
import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from replay import __version__, jsonio
from replay.core.verify.compare import MetricResult, MetricStatus, OutputResult, OutputStatus, Verdict
from replay.core.verify.diagnose import Finding
from replay.core.verify.explanation import from_dict as explanation_from_dict
from replay.display import number, short
from replay.errors import ManifestError
from replay.manifest import HostInfo
from replay.textsafe import md_code, md_text, xml_text
from replay.typedjson import build

SCHEMA = "replay.verify-report"
SCHEMA_VERSION = 1

# Outputs tables longer than this list only what is not identical (a PR comment holds 65,536 characters).
MARKDOWN_MAX_ROWS = 50


class DataStatus(enum.StrEnum):
    VERIFIED = "verified"
    MISMATCH = "mismatch"


@dataclass
class DataCheck:
    """The input data check. Written without the fields that do not apply (a mismatch has no digest)."""

    status: DataStatus
    files: int | None = None
    bytes: int | None = None
    digest: str | None = None
    problems: list[dict[str, Any]] | None = None  # a mismatch: one object per path (replay.core.data.check)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DataCheck:
        problems = raw.get("problems")
        return cls(DataStatus(raw["status"]), _int(raw.get("files")), _int(raw.get("bytes")), _str(raw.get("digest")),
                   [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else None)


@dataclass
class RunOutcome:
    """The replayed command; ``node``, ``backend_state`` and ``detail`` only when a batch backend ran it."""

    exit_code: int | None = None
    duration_s: float | None = None
    timed_out: bool | None = None
    oom_killed: bool | None = None
    log_tail: str | None = None
    node: str | None = None
    backend_state: str | None = None
    detail: str | None = None
    unenforced: list[str] | None = None  # limits the engine could not enforce (rootless Podman on cgroup v1)
    undeclared_writes: list[str] | None = None  # files written outside the declared outputs (the first 1000)
    undeclared_count: int | None = None  # how many there were in all

    def undeclared_line(self, shown: int = 5) -> str | None:
        """ "wrote 12 files outside the declared outputs: runs/logs/a, ... (and 7 more)", or None."""
        count = self.undeclared_count or 0
        if not count:
            return None
        names = (self.undeclared_writes or [])[:shown]
        more = f" (and {count - len(names)} more)" if count > len(names) else ""
        files = "file" if count == 1 else "files"
        return (f"wrote {count} {files} outside the declared outputs: {', '.join(names)}{more}; they were thrown "
                "away with the container (declare one with --output, or leave it out with --ignore at capture)")

    def to_dict(self) -> dict[str, Any]:
        # exit_code and log_tail always (null when unknown); the rest when they apply.
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("exit_code", "log_tail")}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunOutcome:
        duration = raw.get("duration_s")
        return cls(
            exit_code=raw["exit_code"] if isinstance(raw.get("exit_code"), int) else None,
            duration_s=float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None,
            timed_out=_bool(raw.get("timed_out")), oom_killed=_bool(raw.get("oom_killed")),
            log_tail=_str(raw.get("log_tail")), node=_str(raw.get("node")),
            backend_state=_str(raw.get("backend_state")), detail=_str(raw.get("detail")),
            unenforced=[str(v)[:40] for v in raw["unenforced"][:8]] if isinstance(raw.get("unenforced"), list) else None,
            undeclared_writes=[w for w in raw["undeclared_writes"] if isinstance(w, str)]
            if isinstance(raw.get("undeclared_writes"), list) else None,
            undeclared_count=_int(raw.get("undeclared_count")),
        )


@dataclass
class Hosts:
    """The machine that captured and the one that replayed (a batch node's own, not the submitter's)."""

    capture: HostInfo | None = None
    verify: HostInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: asdict(v) for k, v in (("capture", self.capture), ("verify", self.verify)) if v is not None}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Hosts:
        return cls(*(build(HostInfo, raw[k], f"hosts.{k}") if isinstance(raw.get(k), dict) else None
                     for k in ("capture", "verify")))


@dataclass(kw_only=True)
class VerifyReport:
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION
    capsule: str
    capsule_path: str
    image_id: str = ""
    verdict: Verdict
    exit_code: int
    outputs: list[OutputResult] = field(default_factory=list)
    metrics: list[MetricResult] = field(default_factory=list)
    data: DataCheck | None = None  # written as {} when no data check ran (a report of an error before it)
    run: RunOutcome | None = None  # written as {} when nothing ran
    diagnosis: list[Finding] = field(default_factory=list)
    hosts: Hosts = field(default_factory=Hosts)
    timings: dict[str, float] = field(default_factory=dict)
    replay_version: str = __version__
    error: str | None = None
    provenance: str | None = None
    # `verify --investigate`: the extra replays, what each changed and showed, and the cause named
    # (replay.core.verify.investigate); null when none ran.
    investigation: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.verdict = Verdict(self.verdict)  # a verdict given as its string

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        # No data check or no run is an empty object, as it always was; error and provenance may be null.
        return {k: {} if v is None and k not in _NULLABLE else v for k, v in out.items()}

    def to_json(self) -> str:
        return jsonio.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Any, source: str = "report") -> VerifyReport:
        """Read back a report written by ``to_json`` (to render it again as JUnit or Markdown)."""
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
            raise ManifestError(f"{source} is not a replay verify report", "pass a file written by --json")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ManifestError(
                f"{source} has report schema version {raw.get('schema_version')}; this replay reads "
                f"{SCHEMA_VERSION}",
                "use the replay version that wrote it",
            )
        names = {f.name for f in fields(cls)}
        try:
            kwargs = {k: v for k, v in raw.items() if k in names}
            kwargs["outputs"] = [_output(o) for o in raw.get("outputs", [])]
            # Only metric values are known to be numbers; "NaN" in an explanation may be a CSV cell's text.
            kwargs["metrics"] = [
                MetricResult(**{**{k: _float(v) if k in _FLOAT_KEYS else v for k, v in m.items()},
                                "status": MetricStatus(m["status"])})
                for m in raw.get("metrics", [])
            ]
            kwargs["verdict"] = Verdict(raw["verdict"])
            kwargs["data"] = DataCheck.from_dict(raw["data"]) if raw.get("data") else None
            kwargs["run"] = RunOutcome.from_dict(raw["run"]) if raw.get("run") else None
            kwargs["hosts"] = Hosts.from_dict(raw.get("hosts") or {})
            kwargs["diagnosis"] = [Finding(str(d["kind"]), str(d["message"]), bool(d.get("likely")))  # type: ignore[arg-type]
                                   for d in raw.get("diagnosis") or []]
            return cls(**kwargs)
        except (TypeError, ValueError, KeyError, AttributeError, ManifestError) as exc:
            raise ManifestError(f"{source} is not a valid verify report ({exc})", "regenerate it") from None


_NULLABLE = {"error", "provenance", "investigation"}


def _output(raw: dict[str, Any]) -> OutputResult:
    expl = raw.get("explanation")
    return OutputResult(**{**raw, "status": OutputStatus(raw["status"]),
                           "explanation": explanation_from_dict(expl) if expl is not None else None})


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(value.to_dict() if hasattr(value, "to_dict") else vars(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_FLOAT_KEYS = {"reference", "replayed", "abs_diff", "rel_diff"}


def _float(value: Any) -> Any:
    """The inverse of ``jsonio.finite`` for a metric field."""
    return float(value) if value in ("NaN", "Infinity", "-Infinity") else value


# --- JUnit ---------------------------------------------------------------------------------------------


def to_junit(report: VerifyReport) -> str:
    """One testsuite; a testcase per output, per metric, and one for the run itself."""
    root = ET.Element("testsuites")
    root.append(junit_suite(report))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def junit_suite(report: VerifyReport) -> ET.Element:
    """The report's testsuite element. Every string goes through ``xml_text``: a replay's log holds ANSI
    colours and other characters XML cannot carry, and the file must stay well-formed whatever it held."""
    x = xml_text
    suite = ET.Element("testsuite", name=x(f"replay verify {report.capsule}", False))
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", report.verdict),
        ("image_id", report.image_id),
        ("capsule_path", report.capsule_path),
        ("replay_version", report.replay_version),
    ):
        ET.SubElement(props, "property", name=name, value=x(str(value), False))
    failures = errors = 0

    run = ET.SubElement(suite, "testcase", classname="replay", name="run")
    outcome = report.run or RunOutcome()
    run.set("time", _seconds(outcome.duration_s))
    if report.error:
        errors += 1
        ET.SubElement(run, "error", message=x(report.error, False), type=x(report.verdict)).text = x(outcome.log_tail or "")
    else:
        note = "\n".join(t for t in (outcome.undeclared_line(shown=50), outcome.log_tail) if t)
        if note:
            ET.SubElement(run, "system-out").text = x(note)

    for out in report.outputs:
        case = ET.SubElement(suite, "testcase", classname="outputs", name=x(out.path, False))
        detail = out.explanation.summary() if out.explanation else ""
        if out.settled:
            note = _output_note(out, detail)
            if note:
                ET.SubElement(case, "system-out").text = x(note)
        else:
            failures += 1
            message = f"{out.status}: {detail}" if detail else out.status
            ET.SubElement(case, "failure", message=x(message, False), type=x(out.status)).text = x(_hashes(out))

    for met in report.metrics:
        case = ET.SubElement(suite, "testcase", classname="metrics", name=x(met.name, False))
        text = f"reference {met.reference}, replayed {met.replayed}, tolerance {met.tolerance}"
        if met.status.settled:
            if met.status == "within_tolerance":
                ET.SubElement(case, "system-out").text = x(f"within tolerance: {text}")
        else:
            failures += 1
            ET.SubElement(case, "failure", message=x(f"{met.status}: {text}", False), type=x(met.status))

    suite.set("tests", str(1 + len(report.outputs) + len(report.metrics)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", _seconds(_total(report.timings)))
    return suite


def _total(timings: dict[str, float]) -> float:
    """The verify's seconds: its "total" when recorded, else the sum of its stages (the container's start is a
    part of "run", not a stage of its own)."""
    if "total" in timings:
        return timings["total"]
    return sum(v for k, v in timings.items() if k != "container_start" and isinstance(v, (int, float)))


def _seconds(value: Any) -> str:
    return f"{float(value):.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "0"


def _output_note(out: OutputResult, detail: str) -> str:
    tail = f": {detail}" if detail else ""
    if out.status == "within_tolerance":
        return f"within tolerance {out.tolerance}{tail}"
    if out.status == "identical":
        return ""
    happened = "differs" if out.status == "ignored" else out.status
    return f"ignored (matches --ignore), {happened}{tail}"


def _hashes(out: OutputResult) -> str:
    def side(name: str, sha: str | None, size: int | None) -> str:
        return f"{name} sha256 {sha} ({size} bytes)" if sha else f"{name}: absent"

    return side("reference", out.reference_sha256, out.reference_size) + "\n" + side(
        "replayed", out.replayed_sha256, out.replayed_size
    )


# --- Markdown ------------------------------------------------------------------------------------------


def to_markdown(report: VerifyReport) -> str:
    """A summary for a pull-request comment or a CI job page."""
    # Every string a capsule or a replay controls goes through md_text or md_code (replay.textsafe): the
    # report is rendered as HTML by whoever reads it (a pull request, a CI page).
    lines = [f"### replay verify {md_code(report.capsule, in_table=False)}", "",
             f"**Verdict: {md_text(report.verdict)}** (exit {report.exit_code})"]
    if report.image_id:
        lines.append(f"\nImage {md_code(report.image_id, in_table=False)}, replay {md_text(report.replay_version)}")
    if report.error:
        lines += ["", f"Error: {md_text(report.error)}"]

    if report.outputs:
        shown = report.outputs
        if len(shown) > MARKDOWN_MAX_ROWS:
            shown = [o for o in shown if o.status != "identical"]
        lines += ["", "#### Outputs", "", "| Path | Reference | Replayed | Status |", "|---|---|---|---|"]
        for out in shown:
            status = out.status + (" (ignored)" if out.ignored and out.status != "ignored" else "")
            lines.append(f"| {md_code(out.path)} | {_hash(out.reference_sha256)} | {_hash(out.replayed_sha256)} "
                         f"| {md_text(status)} |")
        if len(shown) < len(report.outputs):
            lines.append(f"\n{len(report.outputs) - len(shown)} identical outputs not listed.")

    if report.metrics:
        lines += ["", "#### Metrics", "", "| Name | Reference | Replayed | Abs diff | Tolerance | Status |",
                  "|---|---|---|---|---|---|"]
        for met in report.metrics:
            lines.append(f"| {md_code(met.name)} | {_num(met.reference)} | {_num(met.replayed)} | "
                         f"{_num(met.abs_diff)} | {md_text(str(met.tolerance))} | {md_text(met.status)} |")

    explained = [o for o in report.outputs if o.explanation and o.status != "identical"]
    if explained:
        lines += ["", "#### Differences", ""]
        lines += [f"- {md_code(o.path, in_table=False)}: {md_text(o.explanation.summary() if o.explanation else '')}"
                  for o in explained]

    written = report.run.undeclared_line(shown=20) if report.run else None
    if written:
        lines += ["", "#### Undeclared writes", "", md_text(written)]

    if report.diagnosis:
        lines += ["", "#### Diagnosis", ""]
        for item in report.diagnosis:
            mark = "**likely** " if item.likely else ""
            lines.append(f"- {mark}{md_text(item.kind)}: {md_text(item.message)}")
        lines += _hosts_table(report.hosts)
    return "\n".join(lines) + "\n"


_HOST_ROWS = (
    ("os", "OS"),
    ("kernel", "Kernel"),
    ("arch", "Architecture"),
    ("cpu_model", "CPU"),
    ("cores", "Cores"),
    ("memory_bytes", "Memory"),
    ("gpus", "GPUs"),
    ("engine", "Engine"),
    ("docker_version", "Engine version"),
    ("cpu_flags", "CPU flags"),
)


def _hosts_table(hosts: Hosts) -> list[str]:
    both = hosts.to_dict()
    capture, verify = both.get("capture", {}), both.get("verify", {})
    if not capture and not verify:
        return []
    lines = ["", "#### Hosts", "", "| | Capture | Verify |", "|---|---|---|"]
    for key, label in _HOST_ROWS:
        a, b = _host_value(key, capture.get(key)), _host_value(key, verify.get(key))
        if key == "cpu_flags":
            lacks = sorted(set(capture.get(key) or []) - set(verify.get(key) or []))
            adds = sorted(set(verify.get(key) or []) - set(capture.get(key) or []))
            b += "".join(f"; {word} {_few(names)}" for word, names in (("lacks", lacks), ("adds", adds)) if names)
        # Bold marks the rows that differ, the ones a reader should look at.
        fmt = "**{}**" if a != b else "{}"
        lines.append(f"| {label} | {fmt.format(md_text(a))} | {fmt.format(md_text(b))} |")
    return lines


def _host_value(key: str, value: Any) -> str:
    if value in (None, "", [], 0):
        return "-"
    if key == "memory_bytes":
        return f"{value / (1 << 30):.1f} GiB"
    if key == "gpus":
        return ", ".join(f"{g.get('name')} (driver {g.get('driver') or '?'})" for g in value)
    if key == "cpu_flags":
        return f"{len(value)} flag" + ("s" if len(value) != 1 else "")
    return str(value)


def _few(names: list[str], limit: int = 10) -> str:
    return " ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _hash(sha: str | None) -> str:
    return f"`{short(sha)}`" if sha else "-"


def _num(value: Any) -> str:
    return number(value) if value is None or isinstance(value, (int, float)) else md_text(str(value))
