"""The README's sample outputs, rendered by replay's own renderers, so that they cannot go stale.

    python scripts/readme_samples.py --check [README]   exit 1 with a diff when a sample differs
    python scripts/readme_samples.py --write [README]   rewrite every sample in place (`make docs`)

Each sample in README.md sits between ``<!-- sample: NAME -->`` and ``<!-- /sample -->`` around one fenced
block; the text inside the fence is what ``SAMPLES[NAME]`` returns. Everything replay prints in a sample is
printed by the code the CLI uses (``replay.cli.verify.render``, ``replay.cli.batch.render`` and its live
table, ``replay.cli.show_error``, ``replay.cli.show.render_bundle``, ``replay.cli.bundle.render_packed``,
``replay.cli.registry.render_pushed``, ``replay.cli.capture.render_captured``,
``replay.cli.listing.render_rows``, ``replay.ui.RichReporter``), into ``replay.ui.recorded``: both
consoles as one plain buffer, 100 columns, no colour. Nothing here needs a Docker engine.

Where the typed results come from:

- ``verify-unseeded``: ``tests/cli/samples/verify-unseeded.json``, the real report (``replay verify
  --report``) of the ``unseeded`` end-to-end scenario, captured on the offline base on 2026-12-04 (only its
  ``capsule_path`` shortened), read back with ``VerifyReport.from_dict``.
- ``verify-investigate``: ``tests/cli/samples/verify-investigate.json``, the real report of ``replay verify
  --investigate`` of the ``inv-unseeded`` scenario, recorded the same way.
- ``capture-summary``, ``list``: ``tests/cli/samples/digits.replay.json`` (the manifest), ``digits-capture.json``
  (``capture --json``) and ``digits-list.json`` (``list --json``) of a real ``capture --run --verify`` of
  ``examples/digits-sklearn`` as ``make demo`` runs it, recorded on 2026-12-04 (the interpreter's and the
  capsule's paths put under ``/project``). ``list`` is rendered 120 columns wide: its table needs 105.
- ``lock-mismatch``: the real check (``replay.core.capture.lock.source.match``) of a one-package
  interpreter (numpy 2.4.6) against a lock that pins numpy 2.4.5.
- ``podman-session``, ``reviewer-bundle``, ``reviewer-registry``: ``tests/cli/samples/verify-digits.json``,
  reports of the digits capsule written after the runs the README describes (the verdicts, short IDs,
  sizes and timings those runs printed; digests are the 12 characters shown), with each target's
  provenance line made by the core (``Bundle.provenance``) or as the registry resolver words it.
- ``slurm-session``: ``tests/cli/samples/slurm-batch.json``, the two capsules' reports, written after the
  session of ``scripts/slurm-session.sh`` the README quotes (its verdicts, values, sizes and node; not a
  recorded file; that run's table showed image groups, so the two capsule image IDs are made up); the
  batch report around them is built by the core (``CapsuleLine``, ``explanation``, ``PlanSummary``), the
  live table's last frame from typed ``ExperimentRow``s.

Lines that are not replay's output (shell prompts and commands, ``ls``, ``id``, ``sinfo``, the training
script's own print) are literal text in this file.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DATA = ROOT / "tests" / "cli" / "samples"
WIDTH = 100
OPEN = re.compile(r"^<!-- sample: ([a-z0-9-]+) -->$")
CLOSE = "<!-- /sample -->"


def rendered(draw: Callable[[], None], width: int = WIDTH) -> str:
    """What ``draw`` prints through replay's consoles, as plain text at the README's width."""
    from replay import ui

    with ui.recorded(width) as buffer:
        draw()
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _report(raw: dict[str, Any], provenance: str | None = None) -> Any:
    from replay.core.verify.report import VerifyReport

    report = VerifyReport.from_dict(raw, "sample")
    report.provenance = provenance
    return report


def _verify(raw: dict[str, Any], provenance: str | None = None) -> str:
    from replay.cli.verify import render

    report = _report(raw, provenance)
    return rendered(lambda: render(report))


def _digits() -> dict[str, Any]:
    return dict(json.loads((DATA / "verify-digits.json").read_text()))


def _bundle_provenance(signer: str | None, signed: bool, allowed: str | None) -> str:
    from replay.core.share.bundle.read import Bundle

    bundle = Bundle(Path("digits.replay"), None, b"", b"sig" if signed else None, signer=signer)  # type: ignore[arg-type]
    return bundle.provenance(Path(allowed) if allowed else None)


# --- the samples ------------------------------------------------------------------------------------


def verify_unseeded() -> str:
    return _verify(json.loads((DATA / "verify-unseeded.json").read_text()))


def verify_investigate() -> str:
    return _verify(json.loads((DATA / "verify-investigate.json").read_text()))


def _digits_capsule() -> Any:
    from replay.manifest import load

    return load(DATA / "digits.replay.json")


def capture_summary() -> str:
    from replay.cli.capture import render_captured
    from replay.core.capture.pipeline import CaptureResult

    summary = json.loads((DATA / "digits-capture.json").read_text())
    m = _digits_capsule()
    result = CaptureResult(Path("/project/.replay/digits"), m, summary["timings"])
    return rendered(lambda: render_captured(result, summary["counts"], Path("/project")))


def list_capsules() -> str:
    from replay.cli.listing import render_rows
    from replay.core.capsules.list import CapsuleRow, LastVerify

    listed = json.loads((DATA / "digits-list.json").read_text())["capsules"][0]
    last = listed["last_verify"]
    row = CapsuleRow(Path(".replay/digits"), _digits_capsule(), capsule_bytes=listed["capsule_bytes"],
                     image_present=listed["image_present"],
                     last=LastVerify(last["verdict"], last["exit_code"], last["at"]) if last else None)
    # The list's columns need 105: at 100 its path column would be cut, so this one sample is 120 wide.
    return "$ replay list\n" + rendered(lambda: render_rows([row]), width=120)


def lock_mismatch() -> str:
    from replay.cli import show_error
    from replay.core.capture.lock.files import LockKind
    from replay.core.capture.lock.source import match
    from replay.core.pyenv import InstalledPackage, Interpreter, LockedRequirement
    from replay.errors import LockMismatch

    interp = Interpreter("/project/.venv/bin/python", "3.11.2", "cpython", "cp311", "x86_64",
                         packages=[InstalledPackage("numpy", "2.4.6")], virtualenv=True)
    lock = [LockedRequirement("numpy", "2.4.5", ["sha256:" + "0" * 64])]
    try:
        match(interp, Path("/project"), LockKind.REQUIREMENTS, "requirements.txt", lock)
    except LockMismatch as exc:
        error = exc
    else:  # pragma: no cover - the sample is of the refusal
        raise SystemExit("lock-mismatch: the lock was accepted")
    return rendered(lambda: show_error(error))


def _progress(*steps: tuple[str, str]) -> str:
    """Verify's progress lines on stderr: ("stage", NAME) or ("command", a line the training printed)."""
    from replay import ui

    def draw() -> None:
        with ui.RichReporter() as reporter:
            for kind, text in steps:
                reporter.stage(text) if kind == "stage" else reporter.log(text, source="command")

    return rendered(draw)


def podman_session() -> str:
    report = _digits()["podman"]
    progress = _progress(("stage", "checking the capsule's reference copies"), ("stage", "checking the image"),
                         ("stage", "checking data"), ("stage", "replaying `python train.py`"),
                         ("command", report["run"]["log_tail"]), ("stage", "comparing outputs"))
    return "".join([
        "$ id -un; grep \"^$(id -un):\" /etc/subuid /etc/subgid; echo $XDG_RUNTIME_DIR\n",
        "rpm1\n/etc/subuid:rpm1:100000:65536\n/etc/subgid:rpm1:100000:65536\n/run/user/1001\n",
        "$ replay verify digits.replay --keep out --markdown verify.md\n",
        progress,
        _verify(report, _bundle_provenance(None, False, None)),
        "$ ls -ln out/out; rm -r out && podman ps -a --format \"{{.ID}}\" | wc -l\n",
        "total 48\n",
        "-rw-r--r-- 1 1001 1001    67 Dec  4 20:07 metrics.json\n",
        "-rw-r--r-- 1 1001 1001  5273 Dec  4 20:07 model.pkl\n",
        "-rw-r--r-- 1 1001 1001 36128 Dec  4 20:07 predictions.npy\n",
        "0\n",
    ])


def reviewer_pack() -> str:
    from replay.cli.bundle import render_packed
    from replay.core.share.bundle.pack import PackResult

    result = PackResult(Path("digits.replay"), int(123.7 * 2**20), ["digits"], images=1, members=17,
                        raw_bytes=int(445.3 * 2**20), seconds=121.3, signed=True)
    return "$ replay pack .replay/digits -o digits.replay --with-data --sign alice_key\n" + rendered(
        lambda: render_packed(result))


def reviewer_bundle() -> str:
    from replay.cli.show import render_bundle
    from replay.core.share.bundle.format import CapsuleEntry, CapsuleFile, ImageEntry, Index, Member

    image = _digits()["bundle"]["image_id"]
    members = [Member(f"blobs/{n:064x}.zst", 0, "", 0, f"{n:064x}") for n in range(17)]
    files = [CapsuleFile(name, f"{n:064x}") for n, name in enumerate(
        ("replay.json", "requirements.in", "requirements.lock", "Dockerfile", "capsule.Dockerfile",
         "reference/out/metrics.json", "reference/out/model.pkl", "reference/out/predictions.npy"))]
    index = Index(members, [CapsuleEntry("digits", image, files, with_data=True)], [ImageEntry(image, [])],
                  created_by="replay 0.1.0")
    listing = rendered(lambda: render_bundle("digits.replay", int(123.7 * 2**20), index,
                                             _bundle_provenance(None, True, None), "digits.replay"))
    checked = _bundle_provenance("alice@example.org", True, "allowed_signers")
    return "".join([
        "$ ls\nallowed_signers\ndigits.replay\n\n",
        "$ docker image inspect fb77811ad4ce replay-demo/base-10115:1\nError: No such image (neither)\n\n",
        "$ replay show digits.replay\n", listing, "\n",
        "$ replay verify digits.replay --allowed-signers allowed_signers\n",
        _verify(_digits()["bundle"], checked),
    ])


def reviewer_registry() -> str:
    from replay.cli.registry import render_pushed
    from replay.core.share.registry import Pushed

    digest = "sha256:6a30f779176295777b91a1ed13d78807fac970b52abc0b8c06141f4ffa98f33c"
    repo = "127.0.0.1:47293/team/digits"
    pushed = Pushed(f"{repo}@{digest}", f"{repo}:fb77811ad4ce", Path(".replay/digits"))
    # As the registry resolver (replay.core.share.registry_target) words where the capsule came from.
    provenance = f"image pulled by digest {digest[:19]}: the digest pins its config, i.e. its ID"
    return "".join([
        f"$ replay push .replay/digits {repo}\n", rendered(lambda: render_pushed(pushed)), "\n",
        f"$ replay verify {pushed.ref}\n", _verify(_digits()["registry"], provenance),
    ])


def slurm_session() -> str:
    return "".join([
        "$ python tests/slurm/cluster.py /tmp/sess/cluster &\n",
        "export SLURM_CONF=/tmp/sess/cluster/slurm.conf   # one-node cluster up in 1.6 s; Ctrl-C stops it\n",
        "$ export SLURM_CONF=/tmp/sess/cluster/slurm.conf\n",
        "$ sinfo\n",
        "PARTITION   AVAIL  TIMELIMIT  NODES  STATE NODELIST\n",
        "replaytest*    up   infinite      1   idle vm\n",
        "$ replay capture --name seeded --base replay-base/python:3.11-bookworm --run --data data "
        "--metrics out/metrics.json --seed 7 -- python train.py\n",
        "$ replay capture --name noisy --base replay-base/python:3.11-bookworm --run --data data "
        "--metrics out/metrics.json -- python noisy.py   # no seed\n",
        "$ replay verify .replay --backend slurm --partition replaytest --jobs 2 --time 10 --report batch.json\n",
        _slurm_batch(),
        "$ echo $?\n1\n",
        "$ ls .replay/.replay-work/batch-*/\n",
        "log-0.txt  log-1.txt  result-0.json  result-1.json  run.sh  task-0.json  task-1.json\n",
    ])


def _slurm_batch() -> str:
    """The live table's last frame (stderr), then the batch report (stdout), as one terminal shows them."""
    from replay.cli.batch import _LiveTable, render
    from replay.core.batch.plan import Plan, PlannedCapsule
    from replay.core.batch.report import BatchReport, CapsuleLine, PlanSummary, explanation, outcome_of
    from replay.core.batch.run import ExperimentRow, Phase

    raw = json.loads((DATA / "slurm-batch.json").read_text())
    reports = [_report(raw[name]) for name in ("noisy", "seeded")]  # target order: the folder's, sorted
    lines = [CapsuleLine(r.capsule, r.capsule_path, ".replay", f"E{i + 1}", "I1", "D1", "64ca986d37a7",
                         outcome_of(r), r.verdict, r.exit_code, explanation(r), r.error, r, node=r.run.node or "",
                         image_id=r.image_id)
             for i, r in enumerate(reports)]
    batch = BatchReport(lines, {}, PlanSummary(capsules=2, images=1, images_checked=1, data_sets=1, data_sets_checked=1,
                                               experiments=2, replays_run=2, jobs=2, stopped_early=False,
                                               backend="slurm"))
    plan = Plan([PlannedCapsule(i, r.capsule, Path(r.capsule_path), ".replay", None) for i, r in enumerate(reports)],
                [], [], [], jobs=2)
    live = _LiveTable(plan)
    live.update([ExperimentRow(line.experiment, "", [line.name], Phase.DONE, started=0.0, finished=1.3,
                               verdicts=[line.outcome], node="vm") for line in lines])

    def draw() -> None:
        from replay import ui

        ui.err.print(live._table())
        render(batch)

    return rendered(draw)


SAMPLES: dict[str, Callable[[], str]] = {
    "verify-unseeded": verify_unseeded,
    "verify-investigate": verify_investigate,
    "capture-summary": capture_summary,
    "lock-mismatch": lock_mismatch,
    "list": list_capsules,
    "podman-session": podman_session,
    "reviewer-pack": reviewer_pack,
    "reviewer-bundle": reviewer_bundle,
    "reviewer-registry": reviewer_registry,
    "slurm-session": slurm_session,
}


# --- the README's sample blocks -----------------------------------------------------------------------


def regenerate(text: str) -> str:
    """``text`` with every sample block's fenced content replaced by what its renderer prints now."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(lines):
        found = OPEN.match(lines[i].strip())
        out.append(lines[i])
        i += 1
        if not found:
            continue
        name = found.group(1)
        if name not in SAMPLES:
            raise SystemExit(f"README sample {name!r} has no renderer in {Path(__file__).name}: add it to SAMPLES")
        if name in seen:
            raise SystemExit(f"README sample {name!r} appears twice")
        seen.add(name)
        end = next((j for j in range(i, len(lines)) if lines[j].strip() == CLOSE), None)
        if end is None or end - i < 2 or not lines[i].lstrip().startswith("```") or lines[end - 1].strip() != "```":
            raise SystemExit(f"README sample {name!r}: expected one fenced block, then {CLOSE}")
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]  # a block inside a list item is indented
        body = "".join(f"{indent}{line}" if line.strip() else line for line in SAMPLES[name]().splitlines(keepends=True))
        out += [lines[i], body, lines[end - 1], lines[end]]
        i = end + 1
    missing = sorted(set(SAMPLES) - seen)
    if missing:
        raise SystemExit(f"samples not in the README: {', '.join(missing)} (mark their blocks with <!-- sample: NAME -->)")
    return "".join(out)


def stale(path: Path) -> list[str]:
    """The unified diff between the README's samples and what the renderers print (empty: up to date)."""
    text = path.read_text()
    return list(difflib.unified_diff(text.splitlines(keepends=True), regenerate(text).splitlines(keepends=True),
                                     f"{path.name} (as written)", f"{path.name} (as rendered)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff when a sample is stale")
    mode.add_argument("--write", action="store_true", help="rewrite the samples in place")
    parser.add_argument("readme", nargs="?", type=Path, default=README)
    args = parser.parse_args(argv)
    diff = stale(args.readme)
    if args.check:
        if diff:
            sys.stdout.writelines(diff)
            print(f"\n{args.readme}: samples are stale; run `make docs` (python scripts/readme_samples.py --write)")
            return 1
        return 0
    if diff:
        from replay.fsutil import atomic_write_text

        atomic_write_text(args.readme, regenerate(args.readme.read_text()))
        print(f"{args.readme}: samples rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
