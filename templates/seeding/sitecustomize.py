"""replay's start-up hook for the host run of `replay capture --run --auto-seed`.

replay puts the folder holding this file first on PYTHONPATH for that one command (next to
``_replay_seeding.py``, a copy of ``replay/seeding.py``). Python imports the first ``sitecustomize`` on
``sys.path`` at start-up: this one seeds (``_replay_seeding.start_hook``, a no-op unless REPLAY_AUTO_SEED=1),
then runs the ``sitecustomize`` it hides, when there is one (the user's own, or the system's such as
Debian's), so nothing is shadowed. The capsule image gets the same hook as a ``.pth`` file instead.
"""

import os as _os
import sys as _sys

if _os.environ.get("REPLAY_AUTO_SEED") == "1":
    import _replay_seeding

    _replay_seeding.start_hook()


def _run_hidden_sitecustomize() -> None:
    import importlib.machinery
    import importlib.util

    here = _os.path.dirname(_os.path.abspath(__file__))
    rest = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    _sys.modules["sitecustomize"] = module  # what `import sitecustomize` gives from now on: the hidden one
    spec.loader.exec_module(module)


_run_hidden_sitecustomize()
