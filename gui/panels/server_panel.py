"""The Server panel: serve the loaded pair through an OpenAI-compatible API.

A start/stop toggle, the port, an API key (typed or generated), whether other
machines may connect (only with a key), the address to paste into a client, and a
live log of requests. The panel only renders and forwards intents; the server
itself is ``core.server`` behind ``gui.server_bridge``.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.server.auth import generate_api_key
from core.server.request_log import RequestLogEntry
from core.server.runner import DEFAULT_HOST, DEFAULT_PORT

LOG_ROWS_KEPT = 500
LOG_COLUMNS = ("Time", "Endpoint", "Tokens", "Tok/s", "Accept", "Status")
ALL_INTERFACES = "0.0.0.0"


class ServerPanel(QWidget):
    """Signals:
    start_requested(str, int, str): host, port, API key ("" for none).
    stop_requested(): stop serving.
    """

    start_requested = Signal(str, int, str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("server_panel")
        self.toggle = QPushButton("Start server")
        self.toggle.setObjectName("server_toggle")
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("Serve the loaded model pair through an OpenAI-compatible API.")
        self.toggle.clicked.connect(self._on_toggle)

        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.port.setToolTip("The port clients connect to.")
        self.everyone = QCheckBox("Allow other machines")
        self.everyone.setToolTip(
            "Listen on all network interfaces (0.0.0.0). Needs an API key: without one, "
            "anyone who can reach this machine could use the models."
        )
        self.api_key = QLineEdit()
        self.api_key.setObjectName("server_api_key")
        self.api_key.setPlaceholderText("none (only this machine may connect)")
        self.api_key.setToolTip("Clients send it as 'Authorization: Bearer KEY'.")
        self.generate_key = QPushButton("Generate")
        self.generate_key.setToolTip("Make a new random key.")
        self.generate_key.clicked.connect(lambda: self.api_key.setText(generate_api_key()))
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.generate_key)

        self.address = QLineEdit()
        self.address.setObjectName("server_address")
        self.address.setReadOnly(True)
        self.address.setPlaceholderText("not serving")
        self.address.setToolTip("Paste this into a client as the OpenAI base URL.")
        self.copy_address = QPushButton("Copy")
        self.copy_address.setEnabled(False)
        self.copy_address.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.address.text())
        )
        address_row = QHBoxLayout()
        address_row.addWidget(self.address, 1)
        address_row.addWidget(self.copy_address)

        self.status = QLabel("Serves the models loaded in this window.")
        self.status.setObjectName("server_status")
        self.status.setWordWrap(True)

        self.log = QTableWidget(0, len(LOG_COLUMNS))
        self.log.setObjectName("server_log")
        self.log.setHorizontalHeaderLabels(LOG_COLUMNS)
        self.log.verticalHeader().setVisible(False)
        self.log.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        # Numbers as wide as they need, the endpoint the rest, on one line each: the
        # side panel is narrow, and wrapped endpoints pushed Tok/s and Status out of view.
        header = self.log.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.log.setWordWrap(False)
        self.log.setTextElideMode(Qt.TextElideMode.ElideMiddle)

        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("API key", key_row)
        form.addRow("", self.everyone)
        form.addRow("Address", address_row)
        layout = QVBoxLayout(self)
        layout.addWidget(self.toggle)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Requests"))
        layout.addWidget(self.log, 1)

    # ----- intents ----------------------------------------------------------------

    def _on_toggle(self, checked: bool) -> None:
        # The button shows the server's state, set when it has started or stopped.
        self.toggle.setChecked(not checked)
        self.toggle.setEnabled(False)
        if checked:
            host = ALL_INTERFACES if self.everyone.isChecked() else DEFAULT_HOST
            self.status.setText("Starting…")
            self.start_requested.emit(host, self.port.value(), self.api_key.text().strip())
        else:
            self.status.setText("Stopping…")
            self.stop_requested.emit()

    # ----- state ------------------------------------------------------------------

    def _set_editable(self, editable: bool) -> None:
        for widget in (self.port, self.everyone, self.api_key, self.generate_key):
            widget.setEnabled(editable)

    def set_running(self, address: str) -> None:
        self.toggle.setChecked(True)
        self.toggle.setText("Stop server")
        self.toggle.setEnabled(True)
        self._set_editable(False)
        self.address.setText(address)
        self.copy_address.setEnabled(True)
        key = "with the API key" if self.api_key.text().strip() else "without a key"
        self.status.setText(f"Serving at {address} ({key}).")

    def set_stopped(self) -> None:
        self.toggle.setChecked(False)
        self.toggle.setText("Start server")
        self.toggle.setEnabled(True)
        self._set_editable(True)
        self.address.clear()
        self.copy_address.setEnabled(False)
        self.status.setText("Stopped.")

    def set_error(self, message: str) -> None:
        self.set_stopped()
        self.status.setText(f"Could not start: {message}")

    def add_entry(self, entry: RequestLogEntry) -> None:
        """One row per request, newest at the bottom; the oldest go past a limit."""
        if self.log.rowCount() >= LOG_ROWS_KEPT:
            self.log.removeRow(0)
        row = self.log.rowCount()
        self.log.insertRow(row)
        accept = f"{entry.acceptance:.0%}" if entry.acceptance is not None else "—"
        rate = f"{entry.tokens_per_second:.1f}" if entry.tokens_per_second > 0 else "—"
        cells = (
            time.strftime("%H:%M:%S", time.localtime(entry.at)),
            entry.endpoint.replace(" /v1/", " /"),  # every endpoint is under /v1
            str(entry.tokens),
            rate,
            accept,
            str(entry.status),
        )
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(f"{entry.endpoint}: {entry.note}" if entry.note else entry.endpoint)
            self.log.setItem(row, column, item)
        self.log.scrollToBottom()
