"""Help > About: version, llama.cpp build, backend, devices and bundled licences."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialog

from core import app_info
from core.worker import PairInfo
from gui.about_dialog import AboutDialog, about_html
from tests.gui_window_support import (
    OFFSCREEN_NOISE,
    WindowFiles,
    close_window,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    window_files_fixture,  # noqa: F401 (fixture)
)

PAIR = PairInfo(
    target_path="/models/target.gguf",
    draft_path="/models/draft.gguf",
    n_ctx=2048,
    has_chat_template=True,
    backend="CUDA",
    device="NVIDIA H100 80GB HBM3",
    target_gpu_layers=30,
    draft_gpu_layers=30,
)


def test_about_lists_version_build_backend_and_licences(qtbot) -> None:
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert f"SpecChat {app_info.app_version()}" in text
    assert "llama-cpp-python 0.3.36" in text
    assert "backend: CPU" in text  # this machine's build has no GPU offload
    assert "device CPU:" in text
    assert "PySide6" in text and "LGPL-3.0-only" in text
    assert "llama.cpp / ggml" in text
    assert "numpy" in text and "BSD-3-Clause" in text


def test_about_names_where_the_loaded_pair_runs() -> None:
    html = about_html(PAIR)
    assert "CUDA · NVIDIA H100 80GB HBM3" in html
    assert "target 30" in html


def test_bundled_components_follow_the_installed_requirements() -> None:
    names = {component.name.lower() for component in app_info.bundled_components()}
    # Direct and indirect requirements of specchat, read from package metadata.
    assert {"specchat", "llama_cpp_python", "pyside6", "shiboken6", "jinja2"} <= names
    assert "pytest" not in names  # the test extra is not part of the app


@OFFSCREEN_NOISE
@pytest.mark.usefixtures("qloop")
def test_help_menu_opens_about(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    help_menu = next(
        action.menu() for action in window.menuBar().actions() if action.text() == "&Help"
    )
    about = next(action for action in help_menu.actions() if "About" in action.text())
    about.trigger()
    dialog = window.findChild(QDialog, "about_dialog")
    assert dialog is not None and dialog.isVisible()
    dialog.close()
    close_window(qloop, window)
