"""Light and dark themes: Fusion with our own palette and a modest style sheet.

The mode is ``system`` (follow the desktop, live, through QStyleHints' colour
scheme), ``light`` or ``dark``. Fusion draws the same on every platform, so the
palette alone gives a consistent look; the style sheet only rounds buttons and
group boxes and gives labels a few roles (muted, ok, warning, error).

Others ask ``is_dark()`` and listen to ``theme_notifier().theme_changed``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import string
from dataclasses import dataclass
from importlib import resources

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from core.resource_files import read_resource_text, resource
from core.settings import THEME_DARK, THEME_LIGHT, THEME_MODE, THEME_SYSTEM, shared_settings

logger = logging.getLogger(__name__)

THEME_MODES = (THEME_SYSTEM, THEME_LIGHT, THEME_DARK)
_MODE_LABELS = {THEME_SYSTEM: "Follow system", THEME_LIGHT: "Light", THEME_DARK: "Dark"}
ROLE_PROPERTY = "role"
# resources/themes/: the style sheet, its colours left as ${name} for each theme.
STYLE_SHEET = "app.qss"
# A white check mark (32 px, drawn once with QPainter) on the accent-coloured box.
CHECK_MARK = "check-mark.png"


@dataclass(frozen=True)
class ThemeColors:
    """The colours one theme is built from."""

    window: str
    surface: str  # inputs, lists, text views
    alternate: str
    button: str
    button_hover: str
    border: str
    text: str
    muted: str
    disabled: str
    accent: str
    accent_text: str
    link: str
    ok: str
    warning: str
    error: str


# Status colours are Okabe-Ito hues (bluish green, orange, vermillion), lightened for
# dark backgrounds, so they stay distinct for colour-blind users.
LIGHT = ThemeColors(
    window="#f4f5f7",
    surface="#ffffff",
    alternate="#f0f2f5",
    button="#ffffff",
    button_hover="#eceff3",
    border="#d3d7de",
    text="#1f2328",
    muted="#656d76",
    disabled="#a0a6ae",
    accent="#2f6fed",
    accent_text="#ffffff",
    link="#2f6fed",
    ok="#007a5a",
    warning="#a86b00",
    error="#c24a00",
)
DARK = ThemeColors(
    window="#1e1f24",
    surface="#26282e",
    alternate="#2c2f36",
    button="#2f323a",
    button_hover="#3a3e47",
    border="#3d4049",
    text="#e3e5e8",
    muted="#9aa0a9",
    disabled="#6b7079",
    accent="#4c84ff",
    accent_text="#ffffff",
    link="#7aa7ff",
    ok="#3fc69b",
    warning="#f0b429",
    error="#ff8a4c",
)


class ThemeNotifier(QObject):
    """Tells the app when light/dark changes.

    Signals:
        theme_changed(bool): the palette was replaced; the argument is ``is_dark()``.
    """

    theme_changed = Signal(bool)


class _ThemeState:
    mode: str = THEME_SYSTEM
    applied_dark: bool | None = None
    notifier: ThemeNotifier | None = None
    following_system: bool = False
    applying: bool = False
    fusion_set: bool = False


_state = _ThemeState()
# Resources unpacked to files for the style sheet, removed when the app exits.
_resource_files = contextlib.ExitStack()
atexit.register(_resource_files.close)


def theme_notifier() -> ThemeNotifier:
    """The one notifier; it lives as long as the QApplication."""
    if _state.notifier is None:
        app = QApplication.instance()
        _state.notifier = ThemeNotifier(app)
        _state.notifier.setObjectName("theme_notifier")
        _state.notifier.destroyed.connect(_forget_notifier)
    return _state.notifier


def _forget_notifier() -> None:
    _state.notifier = None
    _state.following_system = False


def current_mode() -> str:
    """The mode last applied: system, light or dark."""
    return _state.mode


def system_prefers_dark() -> bool:
    """Whether the desktop asks for dark colours (unknown counts as light)."""
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def is_dark() -> bool:
    """Whether the palette in use is dark, whoever set it."""
    window = QApplication.palette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128


def colors() -> ThemeColors:
    """The colours of the theme in use."""
    return DARK if is_dark() else LIGHT


def build_palette(theme: ThemeColors) -> QPalette:
    """A full palette, disabled state included, for Fusion."""
    palette = QPalette()
    role = QPalette.ColorRole
    base = QColor(theme.window)
    lighter, darker = (base.lighter(130), base.darker(140))
    entries = {
        role.Window: theme.window,
        role.WindowText: theme.text,
        role.Base: theme.surface,
        role.AlternateBase: theme.alternate,
        role.ToolTipBase: theme.surface,
        role.ToolTipText: theme.text,
        role.PlaceholderText: theme.muted,
        role.Text: theme.text,
        role.Button: theme.button,
        role.ButtonText: theme.text,
        role.BrightText: theme.error,
        role.Highlight: theme.accent,
        role.HighlightedText: theme.accent_text,
        role.Link: theme.link,
        role.LinkVisited: theme.link,
        role.Light: lighter.name(),
        role.Midlight: theme.button_hover,
        role.Mid: theme.border,
        role.Dark: darker.name(),
        role.Shadow: QColor(theme.window).darker(250).name(),
    }
    for color_role, color in entries.items():
        palette.setColor(color_role, QColor(color))
    group = QPalette.ColorGroup.Disabled
    for color_role in (role.WindowText, role.Text, role.ButtonText, role.HighlightedText):
        palette.setColor(group, color_role, QColor(theme.disabled))
    palette.setColor(group, role.Highlight, QColor(theme.border))
    return palette


def style_sheet(theme: ThemeColors) -> str:
    """Rounded buttons and group boxes, label roles, tooltips, progress bars.

    Inputs (combo and spin boxes) are left to Fusion: styling their borders here
    would make Qt drop their native arrows.
    """
    template = string.Template(read_resource_text("themes", STYLE_SHEET))
    values = {
        "role_property": ROLE_PROPERTY,
        "check_mark": _file_path("themes", CHECK_MARK),
        **dataclasses.asdict(theme),
    }
    return template.substitute(values)


def _file_path(*parts: str) -> str:
    """A resource as a file a style sheet's ``url()`` can name (forward slashes on
    every platform); kept for the app's life if it had to be unpacked."""
    path = _resource_files.enter_context(resources.as_file(resource(*parts)))
    return path.as_posix()


def set_role(widget: QWidget, role: str) -> None:
    """Give a label or button a style role (muted, ok, warning, error, accent, or "")."""
    if widget.property(ROLE_PROPERTY) == role:
        return
    widget.setProperty(ROLE_PROPERTY, role)
    # Qt re-reads dynamic properties in style sheets only on re-polish.
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


def _resolve_dark(mode: str) -> bool:
    if mode == THEME_DARK:
        return True
    if mode == THEME_LIGHT:
        return False
    return system_prefers_dark()


def _request_scheme(app: QApplication, mode: str) -> None:
    """Tell Qt the scheme too (6.8+), so native dialogs and title bars match."""
    hints = app.styleHints()
    if not hasattr(hints, "setColorScheme"):
        return
    wanted = {
        THEME_DARK: Qt.ColorScheme.Dark,
        THEME_LIGHT: Qt.ColorScheme.Light,
        THEME_SYSTEM: Qt.ColorScheme.Unknown,  # Unknown hands the choice back to the system
    }[mode]
    hints.setColorScheme(wanted)


def apply_theme(app: QApplication, mode: str | None = None) -> None:
    """Apply ``mode`` (system, light or dark; None: the saved one) to the whole app.

    Emits ``theme_notifier().theme_changed`` when light/dark actually flips (and
    on the first call), so views re-colour what they drew themselves.
    """
    mode = THEME_MODE.validate(mode if mode is not None else shared_settings().get(THEME_MODE))
    notifier = theme_notifier()
    if not _state.following_system:
        app.styleHints().colorSchemeChanged.connect(_on_system_scheme_changed)
        _state.following_system = True
    _state.mode = mode
    if not _state.fusion_set:
        # Fusion draws alike everywhere and takes the palette fully; once is enough
        # (with a style sheet set, app.style() no longer reports its own name).
        app.setStyle("Fusion")
        _state.fusion_set = True
    _state.applying = True
    try:
        _request_scheme(app, mode)
    finally:
        _state.applying = False
    dark = _resolve_dark(mode)
    theme = DARK if dark else LIGHT
    app.setPalette(build_palette(theme))
    app.setStyleSheet(style_sheet(theme))
    changed = _state.applied_dark != dark
    _state.applied_dark = dark
    if changed:
        logger.info("theme: %s (%s)", "dark" if dark else "light", mode)
        notifier.theme_changed.emit(dark)


def set_theme_mode(mode: str) -> None:
    """Save ``mode`` as the user's choice and apply it."""
    shared_settings().set(THEME_MODE, mode)
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, mode)


def _on_system_scheme_changed(_scheme: Qt.ColorScheme) -> None:
    app = QApplication.instance()
    # Our own setColorScheme call also lands here; only a change from outside counts.
    if _state.applying or _state.mode != THEME_SYSTEM or not isinstance(app, QApplication):
        return
    apply_theme(app, THEME_SYSTEM)


def theme_menu(parent: QWidget | None = None) -> QMenu:
    """A "Theme" menu with Follow system / Light / Dark; choosing saves and applies."""
    menu = QMenu("&Theme", parent)
    group = QActionGroup(menu)
    group.setExclusive(True)
    for mode in THEME_MODES:
        action = QAction(_MODE_LABELS[mode], menu)
        action.setCheckable(True)
        action.setChecked(mode == _state.mode)
        action.setData(mode)
        group.addAction(action)
        menu.addAction(action)
    group.triggered.connect(lambda action: set_theme_mode(str(action.data())))

    # Keep the check marks right when the mode changes from elsewhere.
    def sync_checks() -> None:
        for action in group.actions():
            action.setChecked(action.data() == _state.mode)

    menu.aboutToShow.connect(sync_checks)
    return menu
