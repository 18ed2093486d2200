"""The application's own settings: appearance and how answers are shown."""

from __future__ import annotations

from core.settings.schema import Setting

THEME_SYSTEM = "system"
THEME_LIGHT = "light"
THEME_DARK = "dark"

THEME_MODE = Setting(
    "theme_mode",
    THEME_SYSTEM,
    "Theme",
    "Light or dark colours; 'system' follows the desktop's setting as it changes.",
    choices=(THEME_SYSTEM, THEME_LIGHT, THEME_DARK),
)
SHOW_REJECTED_DRAFTS = Setting(
    "show_rejected_drafts",
    False,
    "Show rejected drafts",
    "Show the draft tokens the target refused, ghosted and struck through where they were "
    "proposed.",
)
MARKDOWN_DEFAULT = Setting(
    "markdown_default",
    True,
    "Render Markdown",
    "Show finished answers as rendered Markdown; off shows the coloured token view.",
)

APP_SETTINGS: tuple[Setting[bool] | Setting[str], ...] = (
    THEME_MODE,
    SHOW_REJECTED_DRAFTS,
    MARKDOWN_DEFAULT,
)
