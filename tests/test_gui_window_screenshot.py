"""Render the main window mid-conversation on the demo pair to a PNG.

The picture shows a finished answer and one still streaming, their tokens
coloured by provenance, the live numbers and the
graphs. The path is printed (``pytest -s``); set ``SPECCHAT_SCREENSHOT`` to also
copy it somewhere stable, e.g. for the README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from core.demo_models import DemoPair
from core.engine.config import DraftSettings, GenerationSettings, ModelConfig, SamplingSettings
from core.settings import LoadRequest
from tests.gui_window_support import (
    OFFSCREEN_NOISE,
    WindowFiles,
    close_window,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    run,
    wait_until,
    window_files_fixture,  # noqa: F401 (fixture)
)

pytestmark = [pytest.mark.usefixtures("qloop"), pytest.mark.demo_pair, OFFSCREEN_NOISE]

# Sampled (not greedy) so the picture has corrections as well as accepted drafts.
SAMPLED = GenerationSettings(
    n_predict=64,
    sampling=SamplingSettings(temperature=0.7, seed=11),
    drafting=DraftSettings(n_max=8, adaptive=False),
)


def _greenish_pixels(image: QImage) -> int:
    """Pixels tinted bluish green (accepted drafts: Okabe-Ito #009E73 over the page).

    Green clearly above red and not below blue: neither the black text, the grey
    page, the sky-blue bonus tint nor the vermillion corrections qualify.
    """
    count = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            pixel = image.pixelColor(x, y)
            if pixel.green() > pixel.red() + 20 and pixel.green() >= pixel.blue():
                count += 1
    return count


def test_main_window_mid_conversation_screenshot(
    qtbot, qloop, window_files: WindowFiles, demo_pair: DemoPair, tmp_path: Path
) -> None:
    window = open_window(qtbot, window_files, settings=SAMPLED)
    window.resize(1480, 900)
    window.splitter.setSizes([230, 760, 490])
    window.set_markdown(False)  # the coloured token view
    request = LoadRequest(ModelConfig(demo_pair.target, n_ctx=2048), ModelConfig(demo_pair.draft))
    # The way the first-run offer loads it: the pair joins the library and the pickers.
    window.model_panel.load_offered_pair(request)
    run(qloop, wait_until(lambda: window.bridge.current_pair() is not None, 120), 130)

    window.new_chat()
    run(qloop, window.controller.send_async("What is speculative decoding? Answer briefly."), 240)

    # Long enough that the picture catches it mid-answer; it is stopped afterwards.
    window.controller._settings = lambda: SAMPLED.with_changes(n_predict=400)

    picture = tmp_path / "specchat-window.png"

    async def picture_midway() -> tuple[asyncio.Task[None], bool]:
        task = asyncio.ensure_future(
            window.controller.send_async("List ten facts about the Moon, one per line.")
        )
        await wait_until(lambda: len(window.chat_view.answers()) == 2, timeout=200)
        # A new answer folds the older readouts; open the first one again for the picture.
        window.chat_view.answers()[0].set_readout_visible(True)
        await wait_until(
            lambda: (
                len(window.chat_view.answers()[1].trace.tokens) >= 30
                and window.speculation.values["acceptance"].text() != "—"
            ),
            timeout=200,
        )
        # No await from here to the grab: the answer cannot finish in between.
        streaming = window.speculation.streaming
        assert window.grab().toImage().save(str(picture))
        return task, streaming

    task, streaming = run(qloop, picture_midway(), 240)
    assert streaming
    print(f"\nscreenshot: {picture}")
    if target := os.environ.get("SPECCHAT_SCREENSHOT"):
        shutil.copyfile(picture, target)

    # Accepted-draft tint (Okabe-Ito bluish green) is visible in the chat.
    answer_image = window.chat_view.answers()[0].token_view.grab().toImage()
    assert _greenish_pixels(answer_image) > 50
    window.controller.stop()  # the picture is taken; no need to wait for the rest
    run(qloop, task, 60)
    assert window.chat_view.answers()[1].trace.is_finished
    close_window(qloop, window)
