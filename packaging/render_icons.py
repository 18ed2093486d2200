"""Render resources/icons/specchat.svg to the PNG sizes desktops and installers want.

Run after editing the SVG: ``python packaging/render_icons.py``. The PNGs are
committed, so building a bundle needs no SVG renderer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

import gui  # noqa: F401 - PySide6 refcount fixes (gui/pyside_fixes.py) before the Qt calls

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    app = QGuiApplication(sys.argv)
    renderer = QSvgRenderer(str(ICONS / "specchat.svg"))
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(ICONS / f"specchat-{size}.png"))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
