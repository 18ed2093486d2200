"""The A/B page: the current prompt decoded plainly and with the draft settings, side by
side, with the speed-up, the acceptance and a warning when speculation is slower."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.engine import ChatMessage, GenerationSettings
from core.errors import SpecChatError
from core.tune.ab import ABResult, run_ab
from core.tune.runner import AnswerRunner
from gui.kept_tasks import KeptTasks
from gui.theme import set_role
from gui.tune.answer_pane import AnswerPane

RunnerSource = Callable[[], AnswerRunner | None]


class ABPage(QWidget):
    """Runs A/B through the engine worker; ``run_async`` is what tests await."""

    def __init__(
        self,
        runner: RunnerSource,
        settings: Callable[[], GenerationSettings],
        conversation: Callable[[], list[ChatMessage]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._settings = settings
        self._conversation = conversation
        self.result: ABResult | None = None

        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setObjectName("ab_prompt")
        self.prompt_edit.setPlaceholderText(
            "Prompt to compare on (empty: the chat's conversation and the message being typed)"
        )
        self.prompt_edit.setMaximumHeight(70)
        self.run_button = QPushButton("Run A/B")
        self.run_button.setObjectName("ab_run")
        self.run_button.setToolTip(
            "Decode the prompt plainly, then with the current draft settings (same seed)"
        )
        set_role(self.run_button, "accent")
        self._tasks = KeptTasks("A/B task", lambda exc: self._say(f"A/B failed: {exc}"))
        self.run_button.clicked.connect(lambda: self._tasks.spawn(self.run_async()))
        self.summary = QLabel("Compare the current draft settings with plain decoding.")
        self.summary.setObjectName("ab_summary")
        self.summary.setWordWrap(True)
        self.warning = QLabel()
        self.warning.setObjectName("ab_warning")
        self.warning.setWordWrap(True)
        set_role(self.warning, "warning")
        self.warning.hide()
        self.plain_pane = AnswerPane("Plain (target only)")
        self.speculative_pane = AnswerPane("Speculative (current draft settings)")

        top = QHBoxLayout()
        top.addWidget(self.prompt_edit, 1)
        top.addWidget(self.run_button)
        panes = QHBoxLayout()
        panes.addWidget(self.plain_pane)
        panes.addWidget(self.speculative_pane)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.warning)
        layout.addLayout(panes, 1)

    def messages(self) -> list[ChatMessage]:
        """The prompt field's text, else the chat's conversation."""
        text = self.prompt_edit.toPlainText().strip()
        if text:
            return [ChatMessage("user", text)]
        return self._conversation()

    async def run_async(self) -> ABResult | None:
        runner = self._runner()
        messages = self.messages()
        if runner is None:
            self._say("Load a model pair first.")
            return None
        if not messages or messages[-1].role != "user":
            self._say("Type a prompt above or in the chat's message box first.")
            return None
        self.run_button.setEnabled(False)
        self._say("Running plain, then speculative…")
        try:
            result = await run_ab(runner, messages, self._settings())
        except SpecChatError as exc:
            self._say(f"A/B failed: {exc}")
            return None
        finally:
            self.run_button.setEnabled(True)
        self.show_result(result)
        return result

    def show_result(self, result: ABResult) -> None:
        self.result = result
        self.plain_pane.show_result(result.plain)
        self.speculative_pane.show_result(result.speculative)
        if result.identical:
            same = "The answers are identical."
        elif result.identity_promised:
            same = "The answers differ, which these settings should not allow: please report it."
        else:
            same = (
                "The answers differ: speculative sampling draws an exact sample of the target "
                "but not the same one (sample-and-match keeps the seed's answer)."
            )
        self._say(
            f"Speed-up {result.speedup:.2f}x, acceptance {result.acceptance * 100:.0f}%. {same}"
        )
        warning = result.slower_warning()
        self.warning.setText(warning)
        self.warning.setVisible(bool(warning))

    def _say(self, text: str) -> None:
        self.summary.setText(text)
