"""Shared fixtures. Tests never touch the user's real folders: SPECCHAT_HOME points
every platform folder at a fresh temporary directory."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from core.demo_models import DemoPair, ensure_demo_pair
from core.engine import ModelConfig, SpeculativeEngine
from tests.support.tiny_gguf import TinyModelSpec, write_tiny_model

REPO_ROOT = Path(__file__).resolve().parent.parent
# The demo pair is about 690 MB; keep it across test runs (gitignored).
DEMO_CACHE = Path(os.environ.get("SPECCHAT_TEST_MODELS", REPO_ROOT / ".specchat-cache" / "models"))


@pytest.fixture(autouse=True)
def _garbage_collected_on_the_main_thread() -> Iterator[None]:
    """As in the app (gui/main_thread_gc.py): no automatic collection, which could
    run in a helper thread and destroy a test's leftover Qt objects there (Qt warns
    "Timers cannot be stopped from another thread"); collect here instead."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECCHAT_HOME", str(tmp_path / "specchat-home"))


class TinyModels:
    """Paths of the generated test models."""

    def __init__(self, folder: Path) -> None:
        self.target = write_tiny_model(folder / "tiny-target.gguf", TinyModelSpec(seed=0))
        # Same vocabulary, perturbed weights: agrees with the target most of the time.
        self.draft = write_tiny_model(
            folder / "tiny-draft.gguf", TinyModelSpec(seed=1), perturb_from=0, perturb_scale=0.15
        )
        self.other_vocab = write_tiny_model(
            folder / "tiny-other-vocab.gguf", TinyModelSpec(seed=2, vocab_shift_from=300)
        )
        self.bigger_vocab = write_tiny_model(
            folder / "tiny-bigger-vocab.gguf", TinyModelSpec(seed=3, extra_tokens=200)
        )


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def tiny_engine(tiny_models: TinyModels) -> Iterator[SpeculativeEngine]:
    engine = SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=512, n_threads=2),
        ModelConfig(tiny_models.draft, n_threads=2),
    )
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def demo_pair() -> DemoPair:
    return ensure_demo_pair(DEMO_CACHE)


@pytest.fixture(scope="session")
def demo_engine(demo_pair: DemoPair) -> Iterator[SpeculativeEngine]:
    engine = SpeculativeEngine(
        ModelConfig(demo_pair.target, n_ctx=1024), ModelConfig(demo_pair.draft)
    )
    yield engine
    engine.close()
