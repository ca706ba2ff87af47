from pathlib import Path

from tests.e2e.test_hostile import edit_manifest

# Clear screen, home, a fake green banner, an OSC window title, an OSC 8 link, a carriage return.
REPAINT = "\x1b[2J\x1b[H\x1b[32mIDENTICAL (exit 0)\x1b[0m\x1b]0;all good\x07\x1b]8;;http://evil.example\x1b\\x\x1b]8;;\x1b\\\r"


def attack(capsule: Path, project: Path, sentinel: Path) -> None:
    """Terminal escapes, raw HTML and characters XML cannot hold, from the capsule's host facts and from
    the replayed command's own log (which then writes no outputs: the verdict is diverged)."""
    log = ("print('\\x1b[1;31mEpoch 1\\x1b[0m \\x00\\x0b <script>alert(1)</script> ``' + chr(27) + '[2J'); "
           "raise SystemExit(0)")

    def change(m: dict) -> None:
        m["host"]["cpu_model"] = REPAINT + "<script>alert(1)</script>"
        m["host"]["os"] = "Debian `12` | <img src=x onerror=alert(1)>"
        m["code"]["branch"] = REPAINT
        m["command"]["argv"] = ["python", "-c", log]

    edit_manifest(capsule, change)
