"""seed_everything: where the seed comes from, what it seeds, what it names as not seeded, and that it is light."""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from replay import seeding
from replay.seeding import DEFAULT_SEED, SEED_MAX, SeedRecord, resolve_seed, seed_everything

SOURCE = Path(seeding.__file__)


# --- the seed ------------------------------------------------------------------------------------------


def test_seed_comes_from_the_argument_then_replay_seed_then_the_default() -> None:
    assert resolve_seed(3, {"REPLAY_SEED": "9"}) == (3, "argument")
    assert resolve_seed(None, {"REPLAY_SEED": " 9 "}) == (9, "REPLAY_SEED")
    assert resolve_seed(None, {"REPLAY_SEED": ""}) == (DEFAULT_SEED, "default")
    assert resolve_seed(None, {}) == (0, "default")
    assert resolve_seed(SEED_MAX, {}) == (SEED_MAX, "argument")


@pytest.mark.parametrize("text", ["seven", "1.5", "0x10"])
def test_a_replay_seed_that_is_not_an_integer_names_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match=f"REPLAY_SEED={text!r} is not an integer seed"):
        resolve_seed(None, {"REPLAY_SEED": text})


@pytest.mark.parametrize("seed", [-1, SEED_MAX + 1])
def test_a_seed_out_of_range_is_refused(seed: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        resolve_seed(seed, {})
    with pytest.raises(ValueError, match="out of range"):
        resolve_seed(None, {"REPLAY_SEED": str(seed)})


@pytest.mark.parametrize("seed", [True, 1.0, "1"])
def test_a_seed_that_is_not_an_int_is_refused(seed: object) -> None:
    with pytest.raises(TypeError, match="seed must be an int"):
        resolve_seed(seed, {})  # type: ignore[arg-type]


# --- what it seeds -------------------------------------------------------------------------------------


def draws(record: SeedRecord) -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(record.rng.random())


def test_the_same_seed_gives_the_same_draws_from_random_numpy_and_the_returned_generator() -> None:
    first = draws(seed_everything(21))
    second = draws(seed_everything(21))
    other = draws(seed_everything(22))
    assert first == second
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_replay_seed_is_read_when_no_seed_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_SEED", "21")
    record = seed_everything()
    assert (record.seed, record.source) == (21, "REPLAY_SEED")
    assert draws(record) == draws(seed_everything(21))


def test_no_seed_anywhere_takes_the_documented_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLAY_SEED", raising=False)
    record = seed_everything()
    assert (record.seed, record.source) == (0, "default")


def test_the_record_says_what_was_seeded_with_versions() -> None:
    record = seed_everything(5)
    assert record.seeded[:2] == ["random", "numpy"]
    assert record.versions["numpy"] == np.__version__
    assert record.versions["python"] == sys.version.split()[0]
    assert isinstance(record.rng, np.random.Generator)
    assert record.cannot_control == list(seeding.CANNOT_CONTROL)
    assert any("os.urandom" in line for line in record.cannot_control)


def test_to_dict_is_plain_json_without_the_generator() -> None:
    record = seed_everything(5)
    data = json.loads(json.dumps(record.to_dict()))
    assert set(data) == {"seed", "source", "seeded", "not_seeded", "settings", "versions", "cuda", "cannot_control"}
    assert data["seed"] == 5 and data["source"] == "argument"


def test_hash_randomization_is_named_unless_pythonhashseed_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "5")
    assert "hash" not in seed_everything(5).not_seeded
    if sys.flags.hash_randomization:
        monkeypatch.delenv("PYTHONHASHSEED")
        assert "PYTHONHASHSEED" in seed_everything(5).not_seeded["hash"]


def test_a_library_that_is_not_installed_is_named_and_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    real = seeding.importlib.util.find_spec
    monkeypatch.setattr(seeding.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    record = seed_everything(5)
    assert record.not_seeded["torch"] == "not installed"
    assert "torch" not in sys.modules and "torch" not in record.seeded


def test_a_library_that_fails_to_seed_is_named_and_the_others_are_still_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no luck")

    monkeypatch.setattr(seeding, "seed_numpy", broken)
    record = seed_everything(5)
    assert record.not_seeded["numpy"] == "RuntimeError: no luck"
    assert "random" in record.seeded and "numpy" not in record.seeded


def test_installed_finds_nothing_for_a_missing_module() -> None:
    assert seeding._installed("replay_no_such_module") is None
    assert "replay_no_such_module" not in sys.modules


# --- light and self-contained --------------------------------------------------------------------------


def test_the_module_imports_the_standard_library_only_and_no_replay_module() -> None:
    # It is copied verbatim into capsule images, where neither replay nor its dependencies are installed.
    tree = ast.parse(SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            imported.add((node.module or "").split(".")[0])
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported


def test_import_replay_does_not_load_the_seeding_module_until_it_is_used() -> None:
    probe = (
        "import sys, replay\n"
        "assert 'replay.seeding' not in sys.modules and 'numpy' not in sys.modules\n"
        "from replay import seed_everything\n"
        "assert 'replay.seeding' in sys.modules and 'numpy' not in sys.modules\n"
        "try:\n    replay.no_such_name\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "module 'replay' has no attribute 'no_such_name'"


# --- PyTorch and CUDA: only where they are installed (the end-to-end torch test runs PyTorch for real) ---


@pytest.fixture
def torch(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield torch
    torch.use_deterministic_algorithms(False)


def test_torch_is_seeded_and_made_deterministic(torch) -> None:  # type: ignore[no-untyped-def]
    record = seed_everything(8)
    first = torch.rand(3)
    seed_everything(8)
    assert torch.equal(first, torch.rand(3))
    assert "torch" in record.seeded and record.versions["torch"] == torch.__version__
    assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == record.settings["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_torch_warn_only_and_no_determinism(torch) -> None:  # type: ignore[no-untyped-def]
    seed_everything(8, warn_only=True)
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    record = seed_everything(8, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in record.settings


def test_cuda_is_seeded_and_its_facts_are_recorded(torch) -> None:  # type: ignore[no-untyped-def]
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is false)")
    record = seed_everything(8)
    assert "torch.cuda" in record.seeded and record.cuda["available"] and record.cuda["device_count"] >= 1
    a = torch.randn(256, 256, device="cuda") @ torch.randn(256, 256, device="cuda")
    seed_everything(8)
    b = torch.randn(256, 256, device="cuda") @ torch.randn(256, 256, device="cuda")
    assert torch.equal(a, b)
    facts = seeding.cuda_facts(torch)  # CUDA is started now: device names are known
    assert facts["devices"] and facts["devices"][0]["name"]
    print(json.dumps({"record": record.to_dict(), "facts": facts}))
