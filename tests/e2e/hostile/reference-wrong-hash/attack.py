from pathlib import Path


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    # A reference copy edited after capture: what verify would explain from is not what was captured.
    copy = capsule / "reference" / "out" / "metrics.json"
    copy.write_text('{"accuracy": 0.999, "note": "trust me"}\n')
