"""Streamed steps reach the view in batches, flushed as they arrive, at most ~30 Hz."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.engine.events import EmittedToken, Provenance, StepEvent
from core.speculation.trace import AnswerTrace
from gui.chat.answer_controller import FLUSH_INTERVAL_MS, _Running
from tests.gui_window_support import (
    OFFSCREEN_NOISE,
    WindowFiles,
    close_window,
    count_flushes,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    run,
    window_files_fixture,  # noqa: F401 (fixture)
)

pytestmark = [pytest.mark.usefixtures("qloop"), OFFSCREEN_NOISE]


def _step(text: str) -> StepEvent:
    return StepEvent(
        tokens=(EmittedToken(1, text, Provenance.TARGET_ONLY),),
        rejected=(),
        n_drafted=0,
        n_accepted=0,
        draft_ms=0.0,
        verify_ms=1.0,
    )


def test_steps_flush_on_arrival_at_most_every_interval(
    qtbot, qloop, window_files: WindowFiles
) -> None:
    window = open_window(qtbot, window_files)
    controller = window.controller
    window.new_chat()
    conversation_id = controller.conversation_id
    assert conversation_id is not None
    window.store.add_user_message(conversation_id, "Hello")
    message_id = window.store.begin_answer(conversation_id, {}, {})
    trace = AnswerTrace()
    widget = window.chat_view.add_answer(message_id, trace)
    answer = _Running(conversation_id, message_id, widget, trace, time.perf_counter())
    controller._running = answer
    commits = count_flushes(window)

    # The first step after a quiet spell is on screen at once, without a timer.
    controller.queue_step(answer, _step("One"))
    assert trace.text == "One" and commits == [1]
    # Steps right behind it wait for one flush a moment later, together.
    controller.queue_step(answer, _step(" two"))
    controller.queue_step(answer, _step(" three"))
    assert trace.text == "One" and commits == [1]
    run(qloop, asyncio.sleep(3 * FLUSH_INTERVAL_MS / 1000))
    assert trace.text == "One two three" and commits == [1, 2]
    assert widget.token_view.toPlainText() == "One two three"
    # Nothing arrives, nothing is scheduled: the window does not wake to find no work.
    assert not controller._flush_timer.isActive()
    controller.queue_step(answer, _step(" four"))
    assert trace.text == "One two three four" and commits == [1, 2, 1]
    controller._running = None
    close_window(qloop, window)
