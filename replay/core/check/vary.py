"""`replay check --vary`: one thing about the replay's environment changed at a time, so that an output that
moves can be pinned on it. The names follow Debian's reprotest where they match (time, timezone, locales,
user_group, domain_host, num_cpus, umask); each variation is a change to the ``RunSpec`` of one extra run.

What each one really does, and its limits, is in ``Variation.applied`` and ``Variation.note``; the README
lists them. ``cwd`` is refused: the code sits at a fixed path in the image and outputs are written relative
to the working directory, so running from another folder is another command, not a variation of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from replay.core.ports import RunSpec
from replay.core.verify.diagnose import THREAD_VARS
from replay.errors import BadInput

NAMES = ("time", "timezone", "locale", "user", "hostname", "cpus", "umask")
ALIASES = {"locales": "locale", "user_group": "user", "domain_host": "hostname", "num_cpus": "cpus", "tz": "timezone"}

# 2001-09-09 01:46:40 UTC: far from any real "now", so a date that follows it is plain to see.
SHIFTED_EPOCH = "1000000000"
FAKETIME_LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)
# A POSIX TZ string (UTC+13:45) needs no tz database in the image, so it takes effect in any image.
SHIFTED_TZ = "RPL-13:45"
OTHER_USER = "10002:10002"
OTHER_HOST = "replay-vary-host"
UMASK = "077"
_UMASK_WRAPPER = "import os,sys;os.umask(0o{});os.execvp(sys.argv[1],sys.argv[1:])"

Probe = Callable[[list[str]], "str | None"]  # runs argv in the capsule's image; stdout, or None if it failed


@dataclass(frozen=True)
class Variation:
    name: str
    applied: str  # what the extra run changes, in words
    adjust: Callable[[RunSpec], RunSpec]
    note: str = ""  # where it falls short of the real thing


def parse(names: list[str]) -> list[str]:
    """Names as given (``all``, comma lists, reprotest's spellings) -> known names, in NAMES order."""
    wanted: set[str] = set()
    for item in names:
        for raw in item.split(","):
            name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
            if not name:
                continue
            if name == "all":
                wanted.update(NAMES)
            elif name in ("cwd", "build_path", "home"):
                raise BadInput(f"--vary {raw.strip()} is not offered",
                               "the code sits at a fixed path in the image and outputs are written relative to the "
                               f"working directory, so another one is another command; vary one of: {', '.join(NAMES)}")
            elif name not in NAMES:
                raise BadInput(f"--vary {raw.strip()} is not a variation replay knows",
                               f"use one of: {', '.join(NAMES)}, or all")
            else:
                wanted.add(name)
    return [n for n in NAMES if n in wanted]


def plan(names: list[str], control: RunSpec, probe: Probe) -> list[Variation]:
    """The variations asked for, worked out against the control run's spec and the image's contents."""
    builders = {"time": _time, "timezone": _timezone, "locale": _locale, "user": _user, "hostname": _hostname,
                "cpus": _cpus, "umask": _umask}
    return [builders[name](control, probe) for name in names]


def shortfall(variation: Variation, unenforced: list[str]) -> str:
    """What of ``variation`` the engine did not apply, given the limits it could not enforce on its run ("":
    all of it was applied). Rootless Podman on a cgroup v1 host cannot pin CPUs: ``cpus`` is then threads only."""
    if variation.name == "cpus" and {"cpuset", "cpus"} & set(unenforced):
        return ("the engine could not pin the run to one CPU here (rootless Podman on a cgroup v1 host): only the "
                "thread counts changed")
    return ""


def _env(**changes: str) -> Callable[[RunSpec], RunSpec]:
    return lambda spec: replace(spec, env={**spec.env, **changes})


def _time(control: RunSpec, probe: Probe) -> Variation:
    check = f"import os;print(*[p for p in {FAKETIME_LIBS!r} if os.path.exists(p)])"
    found = (probe(["python", "-c", check]) or "").split()
    if found:
        env = {"SOURCE_DATE_EPOCH": SHIFTED_EPOCH, "LD_PRELOAD": found[0], "FAKETIME": "-3650d"}
        return Variation("time", f"SOURCE_DATE_EPOCH={SHIFTED_EPOCH}, libfaketime clock shifted by -3650 days",
                         _env(**env))
    return Variation("time", f"SOURCE_DATE_EPOCH={SHIFTED_EPOCH}", _env(SOURCE_DATE_EPOCH=SHIFTED_EPOCH),
                     "libfaketime is not installed in the image: only SOURCE_DATE_EPOCH is set; a command that "
                     "reads the clock itself still sees the real time")


def _timezone(control: RunSpec, probe: Probe) -> Variation:
    tz = SHIFTED_TZ if control.env.get("TZ") != SHIFTED_TZ else "UTC0"
    return Variation("timezone", f"TZ={tz} (UTC+13:45, a POSIX rule that needs no tz database)", _env(TZ=tz))


def _locale(control: RunSpec, probe: Probe) -> Variation:
    listed = (probe(["locale", "-a"]) or "").split()
    current = control.env.get("LC_ALL") or control.env.get("LANG") or "C.UTF-8"
    others = [name for name in listed if name.lower() not in ("c", "posix", current.lower())]
    if others:
        choice = next((n for n in others if n.lower().startswith(("de_", "fr_"))), others[0])
        return Variation("locale", f"LANG=LC_ALL={choice}", _env(LANG=choice, LC_ALL=choice))
    choice = "C" if current.lower() != "c" else "C.UTF-8"
    return Variation("locale", f"LANG=LC_ALL={choice}", _env(LANG=choice, LC_ALL=choice),
                     "the image has no locale but C, POSIX and C.UTF-8: only those can be switched between")


def _user(control: RunSpec, probe: Probe) -> Variation:
    if os.geteuid() != 0:
        return Variation("user", "not applied", lambda spec: spec,
                         "replay runs as a non-root user here: the output folder is yours, and another uid could not "
                         "write to it; run check as root to vary the user")
    return Variation("user", f"uid:gid {OTHER_USER} instead of {control.user}",
                     lambda spec: replace(spec, user=OTHER_USER))


def _hostname(control: RunSpec, probe: Probe) -> Variation:
    return Variation("hostname", f"hostname {OTHER_HOST}", lambda spec: replace(spec, hostname=OTHER_HOST),
                     "ordinary runs already get a new hostname each (the container's ID)")


def _cpus(control: RunSpec, probe: Probe) -> Variation:
    threads = {name: "2" if control.env.get(name) == "1" else "1" for name in THREAD_VARS}
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    value = next(iter(threads.values()))
    if usable > 1 and control.cpuset is None:
        return Variation("cpus", f"one CPU (cpuset 0) and thread counts {value} ({', '.join(THREAD_VARS[:2])}, ...)",
                         lambda spec: replace(spec, cpuset="0", limits=replace(spec.limits, cpus=1.0),
                                             env={**spec.env, **threads}))
    return Variation("cpus", f"thread counts {value} ({', '.join(THREAD_VARS[:2])}, ...)", _env(**threads),
                     "this host has one usable CPU: only the thread counts change")


def _umask(control: RunSpec, probe: Probe) -> Variation:
    code = _UMASK_WRAPPER.format(UMASK)
    return Variation("umask", f"umask {UMASK} (set by a python wrapper that then execs the command)",
                     lambda spec: replace(spec, argv=["python", "-c", code, *spec.argv]),
                     "replay compares contents, not file modes: only a command that writes its umask or its "
                     "files' modes into an output can change")
