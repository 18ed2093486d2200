"""Theme: light and dark palettes, the saved mode, and the change signal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QCheckBox, QPushButton, QRadioButton
from pytestqt.qtbot import QtBot

from core.settings import THEME_MODE, shared_settings
from gui import theme
from gui.colour_contrast import contrast_ratio


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


@pytest.mark.parametrize("mode", [theme.THEME_LIGHT, theme.THEME_DARK])
def test_check_boxes_and_radio_buttons_stand_out_from_the_window(
    qtbot: QtBot, app: QApplication, mode: str
) -> None:
    theme.apply_theme(app, mode)
    window = QColor(theme.colors().window)
    for button in (QCheckBox("Adaptive draft length"), QRadioButton("Whole conversation")):
        qtbot.addWidget(button)
        button.show()
        qtbot.waitExposed(button)
        image = button.grab().toImage()
        indicator = [image.pixelColor(x, y) for x in range(18) for y in range(image.height())]
        # WCAG's 3:1 for the parts of a control; Fusion's dark outline read 1.1:1.
        assert max(contrast_ratio(pixel, window) for pixel in indicator) >= 3.0, mode
        button.setChecked(True)
        accent = QColor(theme.colors().accent)
        image = button.grab().toImage()
        assert any(
            image.pixelColor(x, y) == accent for x in range(18) for y in range(image.height())
        )


@pytest.mark.parametrize("mode", [theme.THEME_LIGHT, theme.THEME_DARK])
def test_a_disabled_accent_button_keeps_a_visible_outline_and_focus_shows(
    qtbot: QtBot, app: QApplication, mode: str
) -> None:
    theme.apply_theme(app, mode)
    window = QColor(theme.colors().window)
    button = QPushButton("Download")
    theme.set_role(button, "accent")
    qtbot.addWidget(button)
    button.show()
    qtbot.waitExposed(button)
    # Its fill and border were both the border colour, lost on the dark pane.
    button.setEnabled(False)
    image = button.grab().toImage()
    edge = [image.pixelColor(x, y) for x in range(3) for y in range(image.height())]
    assert max(contrast_ratio(pixel, window) for pixel in edge) >= 3.0, mode
    button.setEnabled(True)
    unfocused = button.grab().toImage()
    button.setFocus()
    qtbot.waitUntil(button.hasFocus)
    assert button.grab().toImage() != unfocused  # the focus ring is drawn
