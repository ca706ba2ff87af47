"""Seed every random number generator a training run is likely to use, and say what was and was not seeded.

    from replay import seed_everything
    record = seed_everything()      # the seed from REPLAY_SEED (set by replay at replay time), else 0
    rng = record.rng                # a numpy.random.Generator from that seed (None without NumPy)

Standard library only, and no import of any other replay module: ``replay capture --auto-seed`` copies this
very file into the capsule image (as ``_replay_seeding.py``), where replay itself is not installed, and the
interpreter start-up hook there calls :func:`start_hook`. NumPy, PyTorch and TensorFlow are imported only when
they are installed (``importlib.util.find_spec``), and nothing here initializes CUDA.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SEED_ENV = "REPLAY_SEED"
AUTO_SEED_ENV = "REPLAY_AUTO_SEED"  # "1": the start-up hook seeds; anything else: it does nothing
DEFAULT_SEED = 0  # when no seed is given and REPLAY_SEED is unset: fixed, so a run repeats
SEED_MAX = 4294967295  # what PYTHONHASHSEED and NumPy's legacy seeding both accept
CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS reuses its workspace deterministically only with this (or :16:8)

# What seeding cannot make repeatable; the README's "Seeding" section says the same.
CANNOT_CONTROL = (
    "operating-system entropy: os.urandom, secrets, uuid.uuid4, random.SystemRandom",
    "generators a library makes from entropy on its own (e.g. random.Random() with no seed)",
    "thread and process scheduling: which worker finishes first, the order of parallel reductions",
    "floating-point atomics on a GPU (scatter/index add, some backward passes) where no deterministic kernel exists",
    "hardware, driver and library builds: a different CPU instruction set, CUDA, cuDNN or BLAS gives other bits",
)


@dataclass
class SeedRecord:
    """What :func:`seed_everything` did: the seed, where it came from, and per library what happened."""

    seed: int
    source: str  # "argument", "REPLAY_SEED" or "default"
    seeded: list[str] = field(default_factory=list)  # e.g. ["random", "numpy", "torch"]
    not_seeded: dict[str, str] = field(default_factory=dict)  # library -> why not
    settings: dict[str, str] = field(default_factory=dict)  # determinism switches set, and their values
    versions: dict[str, str] = field(default_factory=dict)
    cuda: dict[str, Any] = field(default_factory=dict)  # GPU facts, when PyTorch sees CUDA
    cannot_control: list[str] = field(default_factory=lambda: list(CANNOT_CONTROL))
    rng: Any = field(default=None, repr=False, compare=False)  # numpy.random.Generator(seed), or None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, without the generator."""
        return {
            "seed": self.seed, "source": self.source, "seeded": list(self.seeded),
            "not_seeded": dict(self.not_seeded), "settings": dict(self.settings), "versions": dict(self.versions),
            "cuda": dict(self.cuda), "cannot_control": list(self.cannot_control),
        }


def resolve_seed(seed: int | None = None, environ: Any = None) -> tuple[int, str]:
    """The seed to use and its source: the argument, else ``REPLAY_SEED``, else :data:`DEFAULT_SEED`."""
    environ = os.environ if environ is None else environ
    if seed is not None:
        source = "argument"
    elif environ.get(SEED_ENV, "").strip():
        text, source = environ[SEED_ENV].strip(), SEED_ENV
        try:
            seed = int(text)
        except ValueError:
            raise ValueError(f"{SEED_ENV}={text!r} is not an integer seed") from None
    else:
        return DEFAULT_SEED, "default"
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed {seed} is out of range: use 0 to {SEED_MAX}")
    return seed, source


def seed_everything(seed: int | None = None, *, deterministic: bool = True, warn_only: bool = False) -> SeedRecord:
    """Seed Python's ``random``, NumPy, PyTorch (CPU and CUDA) and TensorFlow, those that are installed.

    ``deterministic`` also asks the libraries for deterministic kernels (``torch.use_deterministic_algorithms``,
    cuDNN benchmark off, ``CUBLAS_WORKSPACE_CONFIG``; TensorFlow's op determinism); ``warn_only`` makes PyTorch
    warn instead of raising on an op that has no deterministic implementation. A library that fails to seed
    is named in ``not_seeded`` with the reason: this function never raises for a library's sake.
    """
    value, source = resolve_seed(seed)
    record = SeedRecord(seed=value, source=source)
    seed_python(record)
    libraries: dict[str, Callable[..., None]] = {"numpy": seed_numpy, "torch": seed_torch, "tensorflow": seed_tensorflow}
    for name, apply in libraries.items():
        try:
            module = _installed(name)
        except Exception as exc:  # installed but broken: say so, seed the rest
            record.not_seeded[name] = f"cannot import: {type(exc).__name__}: {exc}"
            continue
        if module is None:
            record.not_seeded[name] = "not installed"
            continue
        try:
            apply(module, record, deterministic=deterministic, warn_only=warn_only)
        except Exception as exc:  # a broken or odd library version must not stop the training run
            record.not_seeded[name] = f"{type(exc).__name__}: {exc}"
    return record


# --- one library at a time -----------------------------------------------------------------------------


def seed_python(record: SeedRecord) -> None:
    random.seed(record.seed)
    record.seeded.append("random")
    record.versions["python"] = sys.version.split()[0]
    if sys.flags.hash_randomization and os.environ.get("PYTHONHASHSEED") != str(record.seed):
        # str/bytes hashes (set and dict-of-set order) are fixed when the interpreter starts, never later.
        record.not_seeded["hash"] = "PYTHONHASHSEED must be set before Python starts (replay sets it for a replay)"


def seed_numpy(np: Any, record: SeedRecord, **_: Any) -> None:
    _seed_numpy_random(np.random, str(np.__version__), record)


def _seed_numpy_random(np_random: Any, version: str, record: SeedRecord) -> None:
    np_random.seed(record.seed)  # the legacy global RandomState behind np.random.rand & co.
    record.rng = np_random.default_rng(record.seed)
    record.seeded.append("numpy")
    record.versions["numpy"] = version


def seed_torch(torch: Any, record: SeedRecord, *, deterministic: bool = True, warn_only: bool = False) -> None:
    if deterministic:
        # cuBLAS reads it when it creates its handle: before the first CUDA matmul is early enough.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        record.settings["CUBLAS_WORKSPACE_CONFIG"] = os.environ["CUBLAS_WORKSPACE_CONFIG"]
    torch.manual_seed(record.seed)  # the CPU generator, and every CUDA device's (lazily: no CUDA init here)
    record.seeded.append("torch")
    record.versions["torch"] = str(torch.__version__)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
        record.settings["torch.use_deterministic_algorithms"] = "warn_only" if warn_only else "True"
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        record.settings["torch.backends.cudnn.benchmark"] = "False"
        record.settings["torch.backends.cudnn.deterministic"] = "True"
    record.cuda = cuda_facts(torch)
    if record.cuda.get("available"):
        record.seeded.append("torch.cuda")
        if record.cuda.get("initialized_before") and deterministic:
            record.not_seeded["cublas"] = "CUDA was already started: CUBLAS_WORKSPACE_CONFIG holds only for new handles"


def seed_tensorflow(tf: Any, record: SeedRecord, *, deterministic: bool = True, **_: Any) -> None:
    tf.keras.utils.set_random_seed(record.seed)  # Python's random, NumPy and TensorFlow in one call
    record.seeded.append("tensorflow")
    record.versions["tensorflow"] = str(tf.__version__)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        record.settings["tf.config.experimental.enable_op_determinism"] = "True"


def cuda_facts(torch: Any) -> dict[str, Any]:
    """What PyTorch knows about CUDA; device names only once CUDA is started (asking would start it)."""
    facts: dict[str, Any] = {"torch_cuda": torch.version.cuda, "available": False}
    if torch.version.cuda is None:
        return facts  # a CPU-only build: nothing to ask
    facts["initialized_before"] = bool(torch.cuda.is_initialized())
    facts["available"] = bool(torch.cuda.is_available())  # a device count, no context
    if facts["available"]:
        facts["device_count"] = torch.cuda.device_count()
        facts["cudnn"] = torch.backends.cudnn.version()
        if torch.cuda.is_initialized():
            facts["devices"] = [
                {"name": torch.cuda.get_device_name(i),
                 "capability": ".".join(map(str, torch.cuda.get_device_capability(i)))}
                for i in range(facts["device_count"])
            ]
    return facts


def _installed(name: str) -> Any:
    """The module when it is imported or importable; None when it is not installed. Imports it if needed."""
    if name in sys.modules:
        return sys.modules[name]
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except (ImportError, ValueError):
        return None
    return importlib.import_module(name)


def _guarded(record: SeedRecord, name: str, action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as exc:  # a broken or odd library version must not stop the training run
        record.not_seeded[name] = f"{type(exc).__name__}: {exc}"


# --- the start-up hook (replay capture --auto-seed) ----------------------------------------------------

_HOOK_RECORD: SeedRecord | None = None


def start_hook(environ: Any = None) -> SeedRecord | None:
    """Seed at interpreter start, before the training code runs; a no-op unless ``REPLAY_AUTO_SEED=1``.

    Python's ``random`` is seeded now. NumPy, PyTorch and TensorFlow are not imported here (start-up stays
    fast, and a script that never imports them pays nothing): an import hook seeds each right after the
    script first imports it. For NumPy it also makes ``SeedSequence()`` with no entropy (and so
    ``default_rng()``, ``PCG64()``, ``RandomState()``) draw its entropy from a stream of the seed instead of
    the operating system. A seed the script sets itself afterwards wins. PyTorch gets deterministic
    algorithms in ``warn_only`` mode, so an unchanged script never starts failing on an op without a
    deterministic kernel.
    """
    global _HOOK_RECORD
    environ = os.environ if environ is None else environ
    if environ.get(AUTO_SEED_ENV) != "1" or _HOOK_RECORD is not None:
        return _HOOK_RECORD
    value, source = resolve_seed(None, environ)
    record = _HOOK_RECORD = SeedRecord(seed=value, source=source)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # before anything can start CUDA
    seed_python(record)
    entropy = random.Random(f"replay-numpy-entropy:{value}")  # its own stream: the script's random draws stay apart

    def numpy_entropy(module: Any) -> None:
        if hasattr(module, "randbits"):
            module.randbits = entropy.getrandbits  # what SeedSequence(None) draws its 128 bits from
            record.seeded.append("numpy.SeedSequence")

    hooks: dict[str, Callable[[Any], None]] = {
        "numpy.random.bit_generator": numpy_entropy,
        "numpy.random._bit_generator": numpy_entropy,  # its name in NumPy 1.18
        "numpy.random": lambda m: _guarded(record, "numpy", lambda: _seed_numpy_random_on_import(m, record)),
        "torch": lambda m: _guarded(record, "torch", lambda: seed_torch(m, record, warn_only=True)),
        "tensorflow": lambda m: _guarded(record, "tensorflow", lambda: seed_tensorflow(m, record)),
    }
    for name in list(hooks):
        if name in sys.modules:  # imported before the hook (by another .pth file, say): seed it now
            hooks.pop(name)(sys.modules[name])
    sys.meta_path.insert(0, _AfterImport(hooks))
    return record


def _seed_numpy_random_on_import(np_random: Any, record: SeedRecord) -> None:
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        # The import system makes numpy.random an attribute of numpy only after this hook; NumPy 2's lazy
        # ``numpy.__getattr__`` would recurse into the import until then, so bind it now (the same binding).
        numpy.__dict__.setdefault("random", np_random)
    _seed_numpy_random(np_random, str(getattr(numpy, "__version__", "")), record)


class _AfterImport:
    """A meta-path finder that runs a callback right after a watched module has executed, once per name.

    It finds the module through the finders behind it and wraps that same loader's ``exec_module`` (the
    loader object stays, so ``importlib.resources`` and friends see nothing new). It stays on ``sys.meta_path``
    when done (taking itself off while the import system walks that list would skip the next finder); an
    empty watch list costs one dictionary lookup per import.
    """

    def __init__(self, hooks: dict[str, Callable[[Any], None]]) -> None:
        self._hooks = hooks

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        callback = self._hooks.pop(name, None)
        if callback is None:
            return None
        spec = None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            try:
                callback(module)
            except Exception as exc:  # seeding must never break an import
                sys.stderr.write(f"replay auto-seed: could not seed {name}: {exc}\n")

        loader.exec_module = exec_module
        return spec
