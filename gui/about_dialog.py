"""Help > About: version, llama.cpp build, backend and devices, bundled licences."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from core import app_info
from core.worker import PairInfo
from core.worker.client import describe_offloaded_layers
from gui.app_icon import app_icon


def about_html(pair: PairInfo | None) -> str:
    """The dialog's text: what this installation is and what it is built from."""
    rows = [
        f"<h2>SpecChat {html.escape(app_info.app_version())}</h2>",
        "<p>Local LLM chat with visible, tunable speculative decoding.</p>",
        f"<p><b>llama.cpp build:</b> {html.escape(app_info.llama_cpp_build())}</p>",
    ]
    if pair is not None:
        rows.append(
            f"<p><b>Loaded pair runs on:</b> {html.escape(pair.backend)} · "
            f"{html.escape(pair.device)} "
            f"({describe_offloaded_layers(pair.target_gpu_layers, pair.draft_gpu_layers)})</p>"
        )
    rows.append("<p><b>Compute:</b><br>")
    rows.append("<br>".join(html.escape(line) for line in app_info.backend_summary()))
    rows.append("</p><h3>Bundled components and their licences</h3><table cellpadding='2'>")
    for component in app_info.bundled_components():
        rows.append(
            f"<tr><td>{html.escape(component.name)}</td>"
            f"<td>{html.escape(component.version)}</td>"
            f"<td>{html.escape(component.licence)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


class AboutDialog(QDialog):
    """Modeless About box; ``pair`` is the loaded pair, if any."""

    def __init__(self, pair: PairInfo | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("about_dialog")
        self.setWindowTitle("About SpecChat")
        self.setWindowIcon(app_icon())
        self.resize(560, 520)
        layout = QVBoxLayout(self)
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(64, 64))
        logo.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(logo)
        self.text = QTextBrowser()
        self.text.setObjectName("about_text")
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(about_html(pair))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
