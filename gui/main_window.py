"""The main window: conversations | chat | models, settings and speculation graphs.

It wires the parts together and keeps window state; the answer controller runs
answers, the worker bridge owns the engine process, the panels own their knobs.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.chat import ContextFit
from core.chat.messages import chat_messages
from core.engine.chat_template import ChatMessage
from core.engine.config import DraftSource, GenerationSettings
from core.hub.jobs import default_queue_file, has_saved_jobs
from core.paths import config_dir
from core.settings import (
    MARKDOWN_DEFAULT,
    SHOW_REJECTED_DRAFTS,
    LoadRequest,
    SettingsStore,
    shared_settings,
)
from core.store import DEFAULT_TITLE, ConversationStore, StoreError
from core.worker.client import PairInfo
from gui.chat.answer_controller import AnswerController, AskOverflow, OverflowChoice
from gui.chat.chat_view import ChatView
from gui.chat.input_box import InputBox
from gui.chat.legend import ProvenanceLegend
from gui.chat.sidebar import ConversationSidebar
from gui.chat.token_formats import token_formats
from gui.models.models_page import ModelsPage
from gui.panels.draft_settings_panel import DraftSettingsPanel
from gui.panels.model_panel import ModelPanel
from gui.panels.server_panel import ServerPanel
from gui.panels.speculation_panel import SpeculationPanel
from gui.scrolling import scrolling as _scrolling
from gui.sentence import as_sentence
from gui.server_bridge import ServerBridge
from gui.theme import is_dark, set_role, theme_menu, theme_notifier
from gui.tune.tune_tab import TuneTab
from gui.worker_bridge import WorkerBridge, WorkerFactory

logger = logging.getLogger(__name__)

CHAT_MIN_WIDTH = 400
SIDEBAR_MIN_WIDTH = 150
# Narrower than this, the conversations fold away (drag the left edge to bring them
# back): the chat and the speculation numbers need the width more.
NARROW_WINDOW_WIDTH = 1100

# The status bar's name for a pair's draft when no draft model is loaded.
_DRAFTLESS = {
    DraftSource.NGRAM: "n-gram lookup",
    DraftSource.NONE: "no draft",
    DraftSource.MODEL: "no draft model",
}

WINDOW_STATE_FILE = "window.ini"
# The status note while an answer is written for a conversation not on screen.
_GOES_ON = "goes on"
# Another conversation cannot be opened between Send and the answer's start.
_NOT_SENT_YET = "Wait until the message is sent (or answer the question about its length)."
# Saving the system prompt on every keystroke would write the database per key.
SYSTEM_PROMPT_SAVE_DELAY_MS = 600


class CrashBanner(QFrame):
    """Says the engine stopped and why, and offers to reload the models.

    Signals:
        reload_requested(): the user pressed Reload.
    """

    reload_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("crash_banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        set_role(self.message, "error")
        self.reload_button = QPushButton("Reload models")
        self.reload_button.setToolTip("Start a new engine process and load the same pair again")
        self.reload_button.clicked.connect(self.reload_requested)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Hide this message")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.reload_button)
        layout.addWidget(close)
        self.hide()

    def show_crash(self, reason: str, log_tail: str = "") -> None:
        self.message.setText(
            f"{reason}\nYour conversation is saved; a partial answer is kept and marked "
            "as interrupted. Reload starts the engine again with the same models."
        )
        # The engine's last log lines, for whoever wants the details (or a bug report).
        self.message.setToolTip(f"<pre>{html.escape(log_tail)}</pre>" if log_tail else "")
        self.reload_button.setEnabled(True)
        self.show()


class MainWindow(QMainWindow):
    """SpecChat's window.

    Signals:
        closed(): the window was closed; the app shuts down (see ``shutdown``).
    """

    closed = Signal()

    def __init__(
        self,
        store: ConversationStore | None = None,
        settings: SettingsStore | None = None,
        worker_factory: WorkerFactory | None = None,
        ask_overflow: AskOverflow | None = None,
        state_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("main_window")
        self.setWindowTitle("SpecChat")
        self.store = store or ConversationStore()
        self.settings = settings or shared_settings()
        self._window_state = QSettings(
            str(state_path or config_dir() / WINDOW_STATE_FILE), QSettings.Format.IniFormat
        )
        self.bridge = (
            WorkerBridge(worker_factory, self) if worker_factory else WorkerBridge(parent=self)
        )

        # ----- centre: banner, offer, system prompt, legend, chat, input -----------
        self.crash_banner = CrashBanner()
        self.crash_banner.reload_requested.connect(self._reload)

        self.system_prompt_button = QToolButton()
        self.system_prompt_button.setText("System prompt")
        self.system_prompt_button.setCheckable(True)
        self.system_prompt_button.setToolTip("Instructions the model sees before this conversation")
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setObjectName("system_prompt")
        self.system_prompt.setPlaceholderText("System prompt for this conversation (optional)")
        self.system_prompt.setMaximumHeight(90)
        # Tab moves on to the chat, as in every other field; it typed tab characters.
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.hide()
        self.system_prompt_button.toggled.connect(self.system_prompt.setVisible)
        self._system_prompt_timer = QTimer(self)
        self._system_prompt_timer.setObjectName("system_prompt_save_timer")
        self._system_prompt_timer.setSingleShot(True)
        self._system_prompt_timer.setInterval(SYSTEM_PROMPT_SAVE_DELAY_MS)
        self._system_prompt_timer.timeout.connect(self._save_system_prompt)
        self.system_prompt.textChanged.connect(self._system_prompt_timer.start)
        self._system_prompt_loading = False
        self._system_prompt_owner: int | None = None

        self.legend = ProvenanceLegend()  # wraps its entries in a narrow window
        top_row = QHBoxLayout()
        top_row.setContentsMargins(0, 0, 0, 0)
        top_row.addWidget(self.system_prompt_button)
        top_row.addStretch(1)
        top_row.addWidget(self.legend)

        self.chat_view = ChatView(token_formats(is_dark()))
        self.input_box = InputBox()
        self.send_button = QPushButton("Send")
        set_role(self.send_button, "accent")
        self.send_button.clicked.connect(self.input_box.submit)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc); the text so far is kept")
        self.stop_button.hide()
        input_row = QHBoxLayout()
        input_row.addWidget(self.input_box, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        input_row.addLayout(buttons)

        centre = QWidget()
        centre.setObjectName("chat_area")
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(4, 4, 4, 4)
        centre_layout.addWidget(self.crash_banner)
        centre_layout.addLayout(top_row)
        centre_layout.addWidget(self.system_prompt)
        centre_layout.addWidget(self.chat_view, 1)
        centre_layout.addLayout(input_row)

        # ----- right: model picker and settings over the graphs ------------------------
        self.model_panel = ModelPanel(settings=self.settings)
        self.draft_settings = DraftSettingsPanel(settings=self.settings)
        self.speculation = SpeculationPanel()
        # Four plots side by side want ~330 px; on a small screen they may squeeze.
        self.speculation.setMinimumWidth(220)
        tabs = QTabWidget()
        tabs.setObjectName("side_tabs")
        self._model_tab = _scrolling(self.model_panel)
        tabs.addTab(self._model_tab, "Models")
        tabs.addTab(_scrolling(self.draft_settings), "Draft settings")
        self.server_panel = ServerPanel()
        tabs.addTab(_scrolling(self.server_panel), "Server")
        self.side_tabs = tabs
        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.right_splitter.setObjectName("right_splitter")
        self.right_splitter.addWidget(tabs)
        self.right_splitter.addWidget(self.speculation)
        self.right_splitter.setStretchFactor(0, 1)
        self.right_splitter.setStretchFactor(1, 1)

        # ----- left: conversations ---------------------------------------------------------
        self.sidebar = ConversationSidebar()

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("main_splitter")
        self.splitter.addWidget(self.sidebar)
        # The Tune tab sits beside the chat: A/B answers side by side need its width.
        self.tune_tab = TuneTab(
            queue=self.bridge.queue,
            loaded=lambda: self.bridge.current_pair() is not None,
            settings=self.generation_settings,
            conversation=self._tune_conversation,
            pair_key=self.draft_settings.pair_key,
        )
        self.centre_tabs = QTabWidget()
        self.centre_tabs.setObjectName("centre_tabs")
        self.centre_tabs.addTab(centre, "Chat")
        self.centre_tabs.addTab(self.tune_tab, "Tune")
        self.splitter.addWidget(self.centre_tabs)
        self.splitter.addWidget(self.right_splitter)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        # The chat is what the window is for: in a narrow window the side columns give
        # way (down to these widths, then the conversations fold away; drag the left
        # edge to bring them back) instead of the answers wrapping every few words.
        self.centre_tabs.setMinimumWidth(CHAT_MIN_WIDTH)
        self.sidebar.setMinimumWidth(SIDEBAR_MIN_WIDTH)
        self.splitter.setCollapsible(1, False)
        self.splitter.setCollapsible(2, False)
        self._narrow = False
        self._sidebar_width = 220
        self._reopen_on_undo: int | None = None  # a deleted conversation that was open
        self._overflow_box: QMessageBox | None = None  # the open context-overflow question
        self.splitter.setSizes([220, 640, 420])
        self.setCentralWidget(self.splitter)

        # ----- the answer controller ---------------------------------------------------------
        self.controller = AnswerController(
            self.store,
            self.chat_view,
            worker=self.bridge.current_worker,
            pair=self.bridge.current_pair,
            settings=self.generation_settings,
            ask_overflow=ask_overflow or self._ask_overflow,
            speculation=self.speculation,
            parent=self,
            loading=lambda: self.bridge.busy,
            queue=self.bridge.queue,
            before_answer=self._save_system_prompt,
        )
        self.server = ServerBridge(
            self.bridge.queue, self.bridge.current_pair, self.generation_settings, self
        )
        # What is loaded, always in sight whichever side tab is open.
        self.pair_label = QLabel("No model loaded")
        self.pair_label.setObjectName("pair_label")
        self.statusBar().addPermanentWidget(self.pair_label)
        self.models_page: ModelsPage | None = None
        self._wire()
        self._build_menus()
        self._restore_state()
        # Typing right after the window opens goes into the message, as in any chat
        # app; Qt would give the focus to the first button of the tab chain.
        self.input_box.setFocus(Qt.FocusReason.OtherFocusReason)
        if has_saved_jobs(default_queue_file()):
            self._models_page()  # unfinished downloads resume at start, page hidden

    # ----- wiring --------------------------------------------------------------------------

    def _wire(self) -> None:
        controller = self.controller
        self.server_panel.start_requested.connect(self.server.request_start)
        self.server_panel.stop_requested.connect(self.server.request_stop)
        self.server.started.connect(self.server_panel.set_running)
        self.server.stopped.connect(self.server_panel.set_stopped)
        self.server.failed.connect(self.server_panel.set_error)
        self.server.request_logged.connect(self.server_panel.add_entry)
        self.input_box.submitted.connect(controller.send)
        self.input_box.stop_requested.connect(self.stop_answer)
        self.stop_button.clicked.connect(self.stop_answer)
        # Esc stops a running answer wherever the focus is in the window; enabled only
        # while an answer runs, so Esc keeps its other uses the rest of the time.
        self.stop_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.stop_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.stop_shortcut.setEnabled(False)
        self.stop_shortcut.activated.connect(self.stop_answer)
        controller.busy_changed.connect(self._on_busy)
        # The list marks the conversation being answered.
        controller.busy_changed.connect(lambda _busy: self.refresh_conversations())
        controller.conversation_opened.connect(self._on_conversation_opened)
        controller.conversations_changed.connect(self.refresh_conversations)
        controller.message_failed.connect(self._on_message_refused)
        controller.text_returned.connect(self._return_text)
        controller.answer_interrupted.connect(self._on_crashed)

        self.sidebar.new_requested.connect(self.new_chat)
        self.sidebar.selected.connect(self.open_conversation)
        self.sidebar.rename_requested.connect(self._rename)
        self.sidebar.delete_requested.connect(self._delete)
        self.sidebar.undo_delete_requested.connect(self._undo_delete)
        self.sidebar.search_changed.connect(lambda _text: self.refresh_conversations())

        bridge = self.bridge
        self.model_panel.load_requested.connect(self._load)
        self.model_panel.unload_requested.connect(bridge.request_unload)
        self.model_panel.draft_change_requested.connect(self._change_draft)
        self.model_panel.cancel_load_requested.connect(bridge.cancel_load)
        self.model_panel.active_pair_changed.connect(self.draft_settings.set_pair)
        # The label names the draft source, which changes without a reload.
        self.draft_settings.settings_changed.connect(lambda _settings: self._update_pair_label())
        # A sweep shown for another pair must not be applied to this one.
        self.draft_settings.settings_changed.connect(
            lambda _settings: self.tune_tab.sweep_page.check_pair()
        )
        self.model_panel.models_page_requested.connect(self.open_models_page)
        self.tune_tab.apply_requested.connect(self.draft_settings.apply_drafting)
        bridge.load_progress.connect(self.model_panel.set_loading)
        bridge.loaded.connect(self._on_loaded)
        bridge.load_failed.connect(self._on_load_failed)
        bridge.load_cancelled.connect(self.model_panel.set_unloaded)
        bridge.unloaded.connect(self.model_panel.set_unloaded)
        bridge.unloaded.connect(self._update_pair_label)
        bridge.load_cancelled.connect(self._update_pair_label)
        bridge.load_progress.connect(
            lambda which, fraction: self.pair_label.setText(f"Loading {which}… {fraction:.0%}")
        )
        bridge.crashed.connect(self._on_crashed)
        bridge.backend_notice.connect(self._show_status)

        theme_notifier().theme_changed.connect(self._on_theme_changed)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_chat_action = _action(
            self, "&New chat", self.new_chat, QKeySequence.StandardKey.New
        )
        file_menu.addAction(self.new_chat_action)
        file_menu.addAction(_action(self, "&Models…", self.open_models_page))
        file_menu.addSeparator()
        file_menu.addAction(_action(self, "Export as &Markdown…", lambda: self.export("md")))
        file_menu.addAction(_action(self, "Export as &JSON…", lambda: self.export("json")))
        file_menu.addSeparator()
        file_menu.addAction(_action(self, "&Quit", self.close, QKeySequence.StandardKey.Quit))

        chat_menu = bar.addMenu("&Chat")
        # Esc is a window shortcut live only while an answer runs (stop_shortcut); the
        # text after the tab shows it in the menu without taking Esc the rest of the time.
        self.stop_action = _action(self, "&Stop answer\tEsc", self.stop_answer)
        self.stop_action.setEnabled(False)  # only while an answer runs
        chat_menu.addAction(self.stop_action)
        self.regenerate_action = _action(
            self, "&Regenerate last answer", self.regenerate_last, QKeySequence("Ctrl+R")
        )
        chat_menu.addAction(self.regenerate_action)
        chat_menu.addAction(
            _action(self, "Re&name conversation", self._rename_current, QKeySequence(Qt.Key.Key_F2))
        )
        chat_menu.addAction(_action(self, "&Delete conversation", self._delete_current))

        view_menu = bar.addMenu("&View")
        view_menu.addMenu(theme_menu(self))
        self.show_rejected_action = QAction("Show &rejected drafts", self)
        self.show_rejected_action.setCheckable(True)
        self.show_rejected_action.setToolTip(SHOW_REJECTED_DRAFTS.description)
        self.show_rejected_action.toggled.connect(self.set_show_rejected)
        view_menu.addAction(self.show_rejected_action)
        self.markdown_action = QAction("Render &Markdown", self)
        self.markdown_action.setCheckable(True)
        self.markdown_action.setToolTip(MARKDOWN_DEFAULT.description)
        self.markdown_action.toggled.connect(self.set_markdown)
        view_menu.addAction(self.markdown_action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(_action(self, "&About SpecChat", self.show_about))

    def show_about(self) -> None:
        """Help > About: version, llama.cpp build, backend, devices and licences."""
        from gui.about_dialog import AboutDialog

        # The window owns the dialog; it deletes itself when closed.
        dialog = AboutDialog(self.bridge.current_pair(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    # ----- generation settings ------------------------------------------------------------

    def generation_settings(self) -> GenerationSettings:
        """The knobs for the next answer (the panel adds the loaded pair's draft source)."""
        return self.draft_settings.generation_settings()

    def _tune_conversation(self) -> list[ChatMessage]:
        """What the Tune tab measures on: this conversation plus the message being typed."""
        typed = self.input_box.toPlainText().strip() or None
        if self.controller.conversation_id is None:
            return [ChatMessage("user", typed)] if typed else []
        conversation = self.store.load_conversation(self.controller.conversation_id)
        return chat_messages(conversation, typed)

    # ----- conversations ---------------------------------------------------------------------

    def refresh_conversations(self) -> None:
        rows = self.store.list_conversations(self.sidebar.search.text())
        self.sidebar.set_conversations(
            rows, self.controller.conversation_id, self.controller.answering_conversation_id
        )
        for row in rows:
            # The store names a new chat after its first message.
            if row.id == self.controller.conversation_id:
                self.setWindowTitle(f"{row.title} — SpecChat")

    def new_chat(self) -> None:
        if not self.controller.can_open_another():
            self._show_status(_NOT_SENT_YET)
            return
        self._save_system_prompt()
        if not self._open_chat_is_untouched():
            self.controller.new_conversation()
        self._say_where_the_answer_goes_on()
        self.input_box.setFocus()

    def _open_chat_is_untouched(self) -> bool:
        """An open new chat with nothing in it yet: Ctrl+N reuses it rather than leave
        a trail of empty "New chat" entries in the list."""
        opened = self.controller.conversation_id
        if opened is None or self.chat_view.messages() or self.system_prompt.toPlainText():
            return False
        if opened == self.controller.answering_conversation_id:
            return False
        # Its messages are the ones on screen (none): the title alone is left to read.
        return self.store.conversation_header(opened).title == DEFAULT_TITLE

    def open_conversation(self, conversation_id: int) -> None:
        if conversation_id == self.controller.conversation_id:
            return
        if not self.controller.can_open_another():
            self._show_status(_NOT_SENT_YET)
            self.refresh_conversations()
            return
        self._save_system_prompt()
        try:
            self.controller.open_conversation(conversation_id)
        except StoreError as exc:
            self._show_status(str(exc))
            self.refresh_conversations()
            return
        self._say_where_the_answer_goes_on()

    def _say_where_the_answer_goes_on(self) -> None:
        answering = self.controller.answering_conversation_id
        if answering is not None and answering != self.controller.conversation_id:
            title = self.store.conversation_header(answering).title
            self._show_status(f"The answer in “{title}” {_GOES_ON}; Esc stops it.")

    def regenerate_last(self) -> None:
        answers = self.chat_view.answers()
        messages = self.chat_view.messages()
        if answers and messages and messages[-1] is answers[-1]:
            self.controller.regenerate(answers[-1].message_id)

    def _on_conversation_opened(self, conversation_id: int) -> None:
        # The editor may still hold unsaved text of the conversation we came from.
        self._save_system_prompt()
        conversation = self.store.conversation_header(conversation_id)
        self._system_prompt_owner = conversation_id
        self._system_prompt_loading = True
        try:
            self.system_prompt.setPlainText(conversation.system_prompt)
        finally:
            self._system_prompt_loading = False
        self._system_prompt_timer.stop()
        self.system_prompt_button.setChecked(bool(conversation.system_prompt))
        self.setWindowTitle(f"{conversation.title} — SpecChat")
        self.refresh_conversations()

    def _save_system_prompt(self) -> None:
        """Save the editor's text to the conversation it belongs to, if it changed."""
        self._system_prompt_timer.stop()
        owner = self._system_prompt_owner
        if owner is None or self._system_prompt_loading:
            return
        text = self.system_prompt.toPlainText()
        try:
            if self.store.conversation_header(owner).system_prompt != text:
                self.store.set_system_prompt(owner, text)
        except StoreError as exc:  # e.g. the conversation was deleted meanwhile
            logger.info("system prompt not saved: %s", exc)

    def _rename(self, conversation_id: int, title: str) -> None:
        self.store.rename(conversation_id, title)
        if conversation_id == self.controller.conversation_id:
            self.setWindowTitle(f"{title} — SpecChat")
        self.refresh_conversations()

    def _rename_current(self) -> None:
        self.sidebar.list.setFocus()
        self.sidebar.rename_current()

    def _delete_current(self) -> None:
        """Delete the open conversation (the sidebar offers Undo)."""
        if self.controller.conversation_id is not None:
            self._delete(self.controller.conversation_id)

    def _delete(self, conversation_id: int) -> None:
        if conversation_id == self.controller.answering_conversation_id:
            self._show_status("Stop the answer before deleting its conversation.")
            return
        title = self.store.conversation_header(conversation_id).title
        self.store.delete(conversation_id)
        self.sidebar.show_undo(conversation_id, title)
        if conversation_id == self.controller.conversation_id:
            self._reopen_on_undo = conversation_id
            rest = self.store.list_conversations()
            if rest:
                self.controller.open_conversation(rest[0].id)
            else:
                self.controller.new_conversation()
        self.refresh_conversations()

    def _undo_delete(self, conversation_id: int) -> None:
        self.store.restore(conversation_id)
        self.refresh_conversations()
        # Undoing the delete of the open conversation brings it back on screen too.
        if self._reopen_on_undo == conversation_id and self.controller.can_open_another():
            self.open_conversation(conversation_id)
        self._reopen_on_undo = None

    # ----- models -----------------------------------------------------------------------------

    def _load(self, request: object) -> None:
        assert isinstance(request, LoadRequest)
        if self.controller.busy:
            self._show_status("Stop the answer before loading another pair.")
            return
        self.crash_banner.hide()
        self.bridge.request_load(request)

    def _change_draft(self, request: object) -> None:
        assert isinstance(request, LoadRequest)
        if self.controller.busy:
            self._show_status("Stop the answer before changing the draft.")
            return
        self.bridge.request_set_draft(request)

    def _reload(self) -> None:
        self.crash_banner.reload_button.setEnabled(False)
        self.bridge.request_reload()

    def _on_loaded(self, pair: PairInfo) -> None:
        self.crash_banner.hide()
        self.model_panel.set_loaded(pair)
        self._update_pair_label()

    def _update_pair_label(self) -> None:
        pair = self.bridge.current_pair()
        self.chat_view.set_pair_loaded(pair is not None)
        if pair is None:
            self.pair_label.setText("No model loaded")
            self.pair_label.setToolTip("")
            return
        draft = (
            Path(pair.draft_path).name
            if pair.draft_path
            else _DRAFTLESS[self.generation_settings().drafting.source]
        )
        self.pair_label.setText(f"{Path(pair.target_path).name} + {draft} · {pair.backend}")
        self.pair_label.setToolTip(f"Running on {pair.backend} · {pair.device}")

    def _on_load_failed(self, reason: str) -> None:
        self.model_panel.set_error(reason)
        self.crash_banner.reload_button.setEnabled(True)
        self._update_pair_label()
        self._show_status(reason)

    def _on_crashed(self, reason: str) -> None:
        self.model_panel.set_unloaded()
        self.pair_label.setText("Engine stopped")
        self.crash_banner.show_crash(reason, self.bridge.crash_log)

    # ----- display options ------------------------------------------------------------------

    def set_show_rejected(self, on: bool) -> None:
        self.settings.set(SHOW_REJECTED_DRAFTS, on)
        self.chat_view.set_show_rejected(on)
        self.legend.set_show_rejected(on)
        if self.show_rejected_action.isChecked() != on:
            self.show_rejected_action.setChecked(on)

    def set_markdown(self, on: bool) -> None:
        self.settings.set(MARKDOWN_DEFAULT, on)
        self.chat_view.set_markdown(on)
        if self.markdown_action.isChecked() != on:
            self.markdown_action.setChecked(on)

    def _on_theme_changed(self, dark: bool) -> None:
        self.chat_view.set_style(token_formats(dark))

    def _on_busy(self, busy: bool) -> None:
        self.send_button.setVisible(not busy)
        self.stop_button.setVisible(busy)
        self.stop_shortcut.setEnabled(busy)
        self.stop_action.setEnabled(busy)
        if not busy and _GOES_ON in self.statusBar().currentMessage():
            self.statusBar().clearMessage()  # it has ended: the note would mislead

    def stop_answer(self) -> None:
        """Stop (Esc, the Stop button): the answer being written, or the message
        waiting on the question about its length (its text goes back to the input)."""
        if self._overflow_box is not None:
            self._overflow_box.reject()
        self.controller.stop()

    def _return_text(self, text: str) -> None:
        if not self.input_box.toPlainText().strip():
            self.input_box.setPlainText(text)

    def _show_status(self, text: str) -> None:
        self.statusBar().showMessage(as_sentence(text), 10_000)

    def _on_message_refused(self, reason: str) -> None:
        banner = self.crash_banner
        if not banner.isHidden() and banner.reload_button.isEnabled():
            # The engine died: the banner's Reload is the way on, not the picker
            # ("Load a model pair first" read as if the pair had been forgotten).
            self._show_status("The engine stopped: Reload models (above the chat) first.")
            banner.reload_button.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        self._show_status(reason)
        if self.bridge.current_pair() is None and not self.bridge.busy:
            # Nothing loaded (a restart opens on the tab last used, maybe Server):
            # bring the picker and its Load button forward instead of only saying so.
            self.side_tabs.setCurrentIndex(self.side_tabs.indexOf(self._model_tab))
            self.model_panel.load_button.setFocus(Qt.FocusReason.OtherFocusReason)

    # ----- context overflow ---------------------------------------------------------------

    async def _ask_overflow(self, fit: ContextFit, reduced: ContextFit | None) -> OverflowChoice:
        """Ask what to do with a conversation too long for the context (non-modal)."""
        box = QMessageBox(self)
        box.setObjectName("context_overflow_box")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("The conversation is too long")
        box.setText(fit.sentence())
        new_chat = box.addButton("Start a new chat", QMessageBox.ButtonRole.AcceptRole)
        drop = None
        if reduced is not None:
            box.setInformativeText(
                f'{reduced.sentence()} "Drop oldest turns" hides them from the model; '
                "the conversation itself keeps them."
            )
            drop = box.addButton("Drop oldest turns", QMessageBox.ButtonRole.ActionRole)
            always = QCheckBox("From now on in this conversation, drop them without asking")
            always.setObjectName("drop_without_asking")
            box.setCheckBox(always)
        else:
            box.setInformativeText("Even this message alone does not fit; start a new chat.")
        box.addButton(QMessageBox.StandardButton.Cancel)
        future: asyncio.Future[OverflowChoice] = asyncio.get_running_loop().create_future()

        def chosen(_result: int) -> None:
            clicked = box.clickedButton()
            choice = OverflowChoice.CANCEL
            if clicked is new_chat:
                choice = OverflowChoice.NEW_CHAT
            elif drop is not None and clicked is drop:
                ask_again = box.checkBox() is None or not box.checkBox().isChecked()
                choice = (
                    OverflowChoice.DROP_OLDEST if ask_again else OverflowChoice.DROP_OLDEST_ALWAYS
                )
            if not future.done():
                future.set_result(choice)
            box.deleteLater()

        box.finished.connect(chosen)
        # open(), not exec(): a nested event loop inside a coroutine breaks qasync.
        box.open()
        self._overflow_box = box
        try:
            return await future
        finally:
            self._overflow_box = None

    # ----- export -------------------------------------------------------------------------

    def export(self, kind: str) -> None:
        """Ask where to save the open conversation as Markdown ("md") or JSON ("json")."""
        conversation_id = self.controller.conversation_id
        if conversation_id is None:
            self._show_status("Open a conversation to export.")
            return
        title = self.store.conversation_header(conversation_id).title
        dialog = QFileDialog(self, "Export conversation")
        dialog.setObjectName("export_dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix(kind)
        dialog.setNameFilter("Markdown (*.md)" if kind == "md" else "JSON (*.json)")
        dialog.selectFile(_safe_file_name(title) + "." + kind)
        dialog.fileSelected.connect(lambda path: self.export_to(conversation_id, Path(path), kind))
        dialog.open()

    def export_to(self, conversation_id: int, path: Path, kind: str) -> None:
        if kind == "md":
            text = self.store.export_markdown(conversation_id)
        else:
            text = json.dumps(self.store.export_json(conversation_id), indent=2, ensure_ascii=False)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self._show_status(f"Could not write {path}: {exc.strerror or exc}")
            return
        self._show_status(f"Exported to {path}")

    # ----- start-up, state and shutdown ---------------------------------------------------

    def _restore_state(self) -> None:
        state = self._window_state
        geometry = state.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 820)
        for splitter in (self.splitter, self.right_splitter):
            saved = state.value(f"splitters/{splitter.objectName()}")
            if isinstance(saved, QByteArray) and not saved.isEmpty():
                splitter.restoreState(saved)
        # The restored layout is the user's: folding starts from the restored width.
        self._narrow = self.width() < NARROW_WINDOW_WIDTH
        if self._narrow:
            self.sidebar.setMinimumWidth(0)
        tab = state.value("side_tab")
        if tab is not None:
            self.side_tabs.setCurrentIndex(int(str(tab)))
        self.show_rejected_action.setChecked(self.settings.get(SHOW_REJECTED_DRAFTS))
        self.markdown_action.setChecked(self.settings.get(MARKDOWN_DEFAULT))
        self.chat_view.set_show_rejected(self.settings.get(SHOW_REJECTED_DRAFTS))
        self.legend.set_show_rejected(self.settings.get(SHOW_REJECTED_DRAFTS))
        self.chat_view.set_markdown(self.settings.get(MARKDOWN_DEFAULT))

        # Answers a crashed session left open are not coming back.
        self.store.mark_unfinished_answers_interrupted()
        rows = self.store.list_conversations()
        ids = {row.id for row in rows}
        last = state.value("last_conversation")
        last_id = int(str(last)) if last is not None and str(last).isdigit() else None
        if last_id in ids:
            assert last_id is not None
            self.controller.open_conversation(last_id)
        elif rows:
            self.controller.open_conversation(rows[0].id)
        else:
            self.refresh_conversations()

    def save_state(self) -> None:
        state = self._window_state
        state.setValue("geometry", self.saveGeometry())
        for splitter in (self.splitter, self.right_splitter):
            state.setValue(f"splitters/{splitter.objectName()}", splitter.saveState())
        state.setValue("side_tab", self.side_tabs.currentIndex())
        if self.controller.conversation_id is not None:
            state.setValue("last_conversation", self.controller.conversation_id)
        state.sync()

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt override
        super().resizeEvent(event)
        narrow = self.width() < NARROW_WINDOW_WIDTH
        if narrow == self._narrow:
            return  # only on crossing: a sidebar the user opened while narrow stays
        self._narrow = narrow
        sizes = self.splitter.sizes()
        # Narrow, the list has no minimum: folded, it must not hold the window wide (it
        # stopped at 778 px), and opened by hand it may be as narrow as the user drags.
        self.sidebar.setMinimumWidth(0 if narrow else SIDEBAR_MIN_WIDTH)
        if narrow and sizes[0] > 0:
            self._sidebar_width = sizes[0]
            # To the right column: the chat already has its minimum, the numbers not.
            self.splitter.setSizes([0, sizes[1], sizes[2] + sizes[0]])
        elif not narrow and sizes[0] == 0:
            width = max(self._sidebar_width, SIDEBAR_MIN_WIDTH)
            self.splitter.setSizes([width, sizes[1], max(sizes[2] - width, 0)])

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        self._save_system_prompt()
        self.save_state()
        event.accept()
        self.closed.emit()

    def _models_page(self) -> ModelsPage:
        if self.models_page is None:
            page = ModelsPage(self, models_in_use=self._loaded_model_files)
            page.use_as_target.connect(lambda path: self.model_panel.use_model(path))
            page.use_as_draft.connect(lambda path: self.model_panel.use_model(path, as_draft=True))
            page.library_changed.connect(self.model_panel.rescan)
            self.models_page = page
        return self.models_page

    def _loaded_model_files(self) -> list[Path]:
        pair = self.bridge.current_pair()
        if pair is None:
            return []
        return [Path(path) for path in (pair.target_path, pair.draft_path) if path]

    def open_models_page(self) -> ModelsPage:
        """Show the Models page (library, Hugging Face, downloads)."""
        page = self._models_page()
        page.show()
        page.raise_()
        page.activateWindow()
        return page

    async def shutdown(self) -> None:
        """Stop the answer (saved, marked) and the engine process; close the database.

        Runs before the event loop closes: qasync's loop close waits for executor
        threads, and an answer left running would be lost.
        """
        self._save_system_prompt()
        await self.server.stop()
        await self.controller.shutdown()
        await self.bridge.close()
        self.model_panel.shutdown()
        if self.models_page is not None:
            await self.models_page.shutdown()
        try:
            self.store.purge_deleted()
        except StoreError as exc:
            logger.warning("could not purge deleted conversations: %s", exc)


def _action(
    parent: QWidget,
    text: str,
    slot: Callable[[], object],
    shortcut: QKeySequence | QKeySequence.StandardKey | None = None,
) -> QAction:
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(shortcut)
    action.triggered.connect(lambda _checked=False: slot())
    return action


def _safe_file_name(title: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in " -_" else "_" for c in title).strip()
    return cleaned[:60] or "conversation"
