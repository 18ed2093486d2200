"""The Server panel in the window: refuse an open bind without a key, start, serve an
API request while the window answers (one engine, one queue), log it, stop."""

from __future__ import annotations

import socket
import threading
from typing import Any

import openai
import pytest
from PySide6.QtCore import Qt

from tests.conftest import TinyModels
from tests.gui_window_support import (
    OFFSCREEN_NOISE,
    WindowFiles,
    close_window,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    run,
    tiny_request,
    wait_until,
    window_files_fixture,  # noqa: F401 (fixture)
)

pytestmark = [pytest.mark.usefixtures("qloop"), OFFSCREEN_NOISE]

QUESTION = [{"role": "user", "content": "Tell me a story."}]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ApiCall(threading.Thread):
    """One chat request from another thread, as an outside client makes it."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.client = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)
        self.text: str | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            answer = self.client.chat.completions.create(
                model="any", messages=QUESTION, max_tokens=24, temperature=0
            )
            self.text = answer.choices[0].message.content
        except BaseException as exc:
            self.error = exc


def test_server_panel_serves_the_loaded_pair_beside_the_chat(
    qtbot: Any, qloop: Any, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = open_window(qtbot, window_files)
    assert run(qloop, window.bridge.load(tiny_request(tiny_models.target, tiny_models.draft)))
    panel = window.server_panel
    window.side_tabs.setCurrentIndex(window.side_tabs.count() - 1)

    # Other machines without a key: refused, and the panel says why.
    panel.everyone.setChecked(True)
    qtbot.mouseClick(panel.toggle, Qt.MouseButton.LeftButton)
    run(qloop, wait_until(lambda: panel.toggle.isEnabled()))
    assert "without an API key" in panel.status.text()
    assert not window.server.running and panel.toggle.text() == "Start server"

    panel.everyone.setChecked(False)
    qtbot.mouseClick(panel.generate_key, Qt.MouseButton.LeftButton)
    key = panel.api_key.text()
    assert key.startswith("sk-")
    port = free_port()
    panel.port.setValue(port)
    qtbot.mouseClick(panel.toggle, Qt.MouseButton.LeftButton)
    run(qloop, wait_until(lambda: window.server.running and panel.toggle.isEnabled()))
    url = f"http://127.0.0.1:{port}/v1"
    assert panel.address.text() == url and panel.toggle.text() == "Stop server"
    assert not panel.api_key.isEnabled()

    # An API request and a window answer at once: they take turns on the engine.
    window.new_chat()
    call = ApiCall(url, key)

    # One loop run for both: the server's handlers need the loop running while they
    # wait for their turn, as they always have it in the app (qasync.run).
    async def answer_beside_a_request() -> None:
        call.start()
        await window.controller.send_async("Tell me a story")
        await wait_until(lambda: not call.is_alive(), timeout=60)

    run(qloop, answer_beside_a_request(), timeout=90)
    assert call.error is None and call.text
    answer = window.chat_view.answers()[-1].trace
    assert answer.is_finished and len(answer.tokens) == 40  # GREEDY's n_predict
    # Alone, the request gives the same answer: nothing was mixed into it.
    alone = ApiCall(url, key)
    alone.start()
    run(qloop, wait_until(lambda: not alone.is_alive(), timeout=60))
    assert alone.text == call.text

    rows = panel.log.rowCount()
    assert rows == 2
    assert panel.log.item(0, 1).text() == "POST /chat/completions"  # all under /v1
    assert panel.log.item(0, 1).toolTip() == "POST /v1/chat/completions"
    assert panel.log.item(0, 2).text() == "24" and panel.log.item(0, 5).text() == "200"
    assert panel.log.item(0, 4).text().endswith("%")
    # Every column in view in the side panel, on one line each (Tok/s was cut off).
    panel.log.resize(380, 200)
    header = panel.log.horizontalHeader()
    assert header.length() <= panel.log.viewport().width()
    assert not panel.log.wordWrap()

    qtbot.mouseClick(panel.toggle, Qt.MouseButton.LeftButton)
    run(qloop, wait_until(lambda: not window.server.running and panel.toggle.isEnabled()))
    assert panel.toggle.text() == "Start server" and panel.address.text() == ""
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=5).models.list()
    close_window(qloop, window)
