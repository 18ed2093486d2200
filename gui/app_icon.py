"""The application icon, read from resources/icons (works in a bundle too)."""

from __future__ import annotations

from PySide6.QtGui import QIcon, QPixmap

from core.resource_files import read_resource_bytes

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def app_icon() -> QIcon:
    """SpecChat's icon at every committed PNG size (desktops pick the nearest)."""
    icon = QIcon()
    for size in ICON_SIZES:
        pixmap = QPixmap()
        # PNGs rather than the SVG: no dependency on Qt's SVG image plugin.
        if pixmap.loadFromData(read_resource_bytes("icons", f"specchat-{size}.png"), "PNG"):
            icon.addPixmap(pixmap)
    return icon
