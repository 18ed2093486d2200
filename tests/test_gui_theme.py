"""Theme: light and dark palettes, the saved mode, and the change signal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from core.settings import THEME_MODE, shared_settings
from gui import theme


@pytest.fixture
def app(qapp: QApplication) -> Iterator[QApplication]:
    palette, sheet = qapp.palette(), qapp.styleSheet()
    yield qapp
    # Other tests share the QApplication: leave it as it was, colour scheme included.
    theme.apply_theme(qapp, "system")
    qapp.setPalette(palette)
    qapp.setStyleSheet(sheet)


def window_lightness(app: QApplication) -> int:
    return app.palette().color(QPalette.ColorRole.Window).lightness()


def test_switching_light_and_dark_changes_the_palette(qtbot: QtBot, app: QApplication) -> None:
    theme.apply_theme(app, "light")
    assert not theme.is_dark() and window_lightness(app) > 200
    light_text = app.palette().color(QPalette.ColorRole.Text)

    with qtbot.waitSignal(theme.theme_notifier().theme_changed) as changed:
        theme.apply_theme(app, "dark")

    assert changed.args == [True]
    assert theme.is_dark() and window_lightness(app) < 60
    assert app.palette().color(QPalette.ColorRole.Text) != light_text
    assert theme.DARK.accent in app.styleSheet()
    with qtbot.waitSignal(theme.theme_notifier().theme_changed) as back:
        theme.apply_theme(app, "light")
    assert back.args == [False]


def test_reapplying_the_same_theme_is_quiet(qtbot: QtBot, app: QApplication) -> None:
    theme.apply_theme(app, "dark")
    with qtbot.assertNotEmitted(theme.theme_notifier().theme_changed):
        theme.apply_theme(app, "dark")


def test_system_mode_follows_the_desktop(app: QApplication) -> None:
    theme.apply_theme(app, "system")
    assert theme.current_mode() == "system"
    assert theme.is_dark() == theme.system_prefers_dark()


def test_saved_mode_is_used_and_the_menu_saves_the_choice(qtbot: QtBot, app: QApplication) -> None:
    shared_settings().set(THEME_MODE, "dark")
    theme.apply_theme(app)
    assert theme.is_dark()

    menu = theme.theme_menu()
    qtbot.addWidget(menu)
    light = next(action for action in menu.actions() if action.data() == "light")
    light.trigger()

    assert shared_settings().get(THEME_MODE) == "light"
    assert not theme.is_dark()
    assert light.isChecked()


def test_system_mode_follows_a_desktop_change_live(
    qtbot: QtBot, app: QApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(theme, "system_prefers_dark", lambda: False)
    theme.apply_theme(app, "system")
    assert not theme.is_dark()

    monkeypatch.setattr(theme, "system_prefers_dark", lambda: True)
    with qtbot.waitSignal(theme.theme_notifier().theme_changed):
        app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert theme.is_dark()

    # An explicit choice is not overridden by the desktop.
    theme.apply_theme(app, "light")
    with qtbot.assertNotEmitted(theme.theme_notifier().theme_changed):
        app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert not theme.is_dark()
