"""Live speculation numbers and graphs, for the current answer or the whole conversation.

While an answer streams the panel redraws itself from the answer's trace on its
own timer (5 Hz); it never reacts per token, so its cost does not depend on how
fast tokens come. Plots only ``setData`` on items made once.

The graphs are made once the panel has first been painted (or when first asked
for): pyqtgraph takes longer to import than the rest of the window together, so
the window is on screen first and the graphs fill in a moment later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.speculation.trace import AnswerTrace, ConversationTrace
from gui.panels.steady_label import SteadyLabel
from gui.theme import is_dark, set_role, theme_notifier

if TYPE_CHECKING:
    from gui.plots.speculation_plots import (
        AcceptancePerStepPlot,
        AcceptedLengthPlot,
        DraftPositionPlot,
        InterTokenLatencyPlot,
        SpeculationPlot,
        SpeculationSeries,
    )

REDRAW_INTERVAL_MS = 200  # 5 Hz: smooth enough to read; each redraw repaints four plots
_NONE = "—"

# (key, label, tooltip)
_NUMBERS = (
    ("rolling_rate", "Speed, last second", "Tokens received in the last second, per second."),
    (
        "cumulative_rate",
        "Speed, overall",
        "Tokens per second since decoding began (the prompt's processing not counted).",
    ),
    ("ttft", "Time to first token", "From sending the message to the first token on screen."),
    ("acceptance", "Acceptance", "Draft tokens the target accepted, out of those it verified."),
    (
        "per_pass",
        "Tokens per target pass",
        "Tokens emitted per run of the target model; above 1 is what speculation buys.",
    ),
    (
        "draft_lengths",
        "Draft length, last steps",
        "Tokens drafted in each of the answer's latest steps, newest last (0: a plain "
        "step); with the adaptive draft length, what it chose step by step.",
    ),
)
_SHOWN_DRAFT_LENGTHS = 8
_FULL_WIDTH = ("draft_lengths",)


@dataclass(frozen=True)
class _Graphs:
    acceptance: AcceptancePerStepPlot
    length: AcceptedLengthPlot
    latency: InterTokenLatencyPlot
    position: DraftPositionPlot

    @property
    def all(self) -> tuple[SpeculationPlot, ...]:
        return (self.acceptance, self.length, self.latency, self.position)


def _rate(value: float) -> str:
    return f"{value:.1f} t/s" if value > 0 else _NONE


class SpeculationPanel(QWidget):
    """Numbers and the four graphs, for one answer or the conversation (a toggle)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("speculation_panel")
        self._answer: AnswerTrace | None = None
        self._conversation: list[AnswerTrace] = []
        self._streaming = False
        self._drawn_key: object = None
        self._dark: bool | None = None

        self.values: dict[str, SteadyLabel] = {}
        numbers = QGridLayout()
        numbers.setHorizontalSpacing(12)
        for row, (key, text, tip) in enumerate(_NUMBERS):
            label = QLabel(text)
            label.setToolTip(tip)
            set_role(label, "muted")
            value = SteadyLabel(_NONE)
            value.setObjectName(f"speculation_{key}")
            value.setToolTip(tip)
            if key in _FULL_WIDTH:
                # A list of numbers: a row of its own, or it squeezes its neighbours.
                full_row = (len(_NUMBERS) + 1) // 2 + _FULL_WIDTH.index(key)
                numbers.addWidget(label, full_row, 0)
                numbers.addWidget(value, full_row, 1, 1, 3)
            else:
                numbers.addWidget(label, row // 2, 2 * (row % 2))
                numbers.addWidget(value, row // 2, 2 * (row % 2) + 1)
            self.values[key] = value

        self.answer_button = QRadioButton("This answer")
        self.conversation_button = QRadioButton("Whole conversation")
        self.answer_button.setChecked(True)
        self._scope = QButtonGroup(self)
        self._scope.addButton(self.answer_button)
        self._scope.addButton(self.conversation_button)
        self.answer_button.toggled.connect(self._on_scope_changed)
        scope = QHBoxLayout()
        scope.addWidget(QLabel("Graphs for:"))
        scope.addWidget(self.answer_button)
        scope.addWidget(self.conversation_button)
        scope.addStretch(1)

        self._plot_grid = QGridLayout()
        self._plot_grid.setSpacing(4)
        self._graphs: _Graphs | None = None
        self._graphs_due = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(numbers)
        layout.addLayout(scope)
        layout.addLayout(self._plot_grid, 1)

        self.redraw_timer = QTimer(self)
        self.redraw_timer.setObjectName("speculation_redraw_timer")
        self.redraw_timer.setInterval(REDRAW_INTERVAL_MS)
        self.redraw_timer.timeout.connect(self.redraw)

        self._apply_theme()
        theme_notifier().theme_changed.connect(self._on_theme_changed)
        self.redraw()

    # -- the graphs, made once ---------------------------------------------------

    def _make_plots(self) -> _Graphs:
        if self._graphs is None:
            from gui.plots.speculation_plots import (
                AcceptancePerStepPlot,
                AcceptedLengthPlot,
                DraftPositionPlot,
                InterTokenLatencyPlot,
            )

            graphs = _Graphs(
                AcceptancePerStepPlot(self),
                AcceptedLengthPlot(self),
                InterTokenLatencyPlot(self),
                DraftPositionPlot(self),
            )
            for index, plot in enumerate(graphs.all):
                self._plot_grid.addWidget(plot, index // 2, index % 2)
                plot.apply_theme(bool(self._dark))
            self._graphs = graphs
            self._drawn_key = None
            self.redraw()
        return self._graphs

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        super().paintEvent(event)
        if self._graphs is None and not self._graphs_due:
            # The window is on screen: the graphs follow on the event loop's next turn.
            self._graphs_due = True
            QTimer.singleShot(0, self, self._make_plots)

    @property
    def plots(self) -> tuple[SpeculationPlot, ...]:
        return self._make_plots().all

    @property
    def acceptance_plot(self) -> AcceptancePerStepPlot:
        return self._make_plots().acceptance

    @property
    def length_plot(self) -> AcceptedLengthPlot:
        return self._make_plots().length

    @property
    def latency_plot(self) -> InterTokenLatencyPlot:
        return self._make_plots().latency

    @property
    def position_plot(self) -> DraftPositionPlot:
        return self._make_plots().position

    # -- what to show ------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def showing_conversation(self) -> bool:
        return self.conversation_button.isChecked()

    def show_answer(self, trace: AnswerTrace) -> None:
        """Follow this answer (it joins the conversation's answers if it is new)."""
        self._answer = trace
        if not any(known is trace for known in self._conversation):
            self._conversation.append(trace)
        self.redraw()

    def show_conversation(self, traces: list[AnswerTrace]) -> None:
        """A conversation was opened: its answers, the last one as the current answer."""
        self._conversation = list(traces)
        self._answer = self._conversation[-1] if self._conversation else None
        self.redraw()

    def set_streaming(self, streaming: bool) -> None:
        """Redraw on the timer while an answer streams; once more when it stops."""
        self._streaming = streaming
        if streaming:
            self.redraw_timer.start()
        else:
            self.redraw_timer.stop()
            self.redraw()

    def clear(self) -> None:
        self.set_streaming(False)
        self.show_conversation([])

    def set_scope(self, conversation: bool) -> None:
        (self.conversation_button if conversation else self.answer_button).setChecked(True)

    # -- drawing -----------------------------------------------------------------

    def redraw(self) -> None:
        """Numbers every time (the rolling rate moves with the clock); plots when data changed."""
        self._update_numbers()
        graphs = self._graphs
        key = self._data_key()
        if graphs is None or key == self._drawn_key:
            return
        self._drawn_key = key
        series = self._series()
        for plot in graphs.all:
            plot.update_from(series)
        if isinstance(series, ConversationTrace):
            graphs.acceptance.set_answer_starts(series.answer_starts)
        else:
            graphs.acceptance.set_answer_starts(ConversationTrace([]).answer_starts)
        for plot in graphs.all:
            plot.settle_range()

    def _series(self) -> SpeculationSeries:
        if self.showing_conversation:
            return ConversationTrace(self._conversation)
        return self._answer if self._answer is not None else ConversationTrace([])

    def _data_key(self) -> object:
        # Steps only ever get appended, so (which traces, how many steps) says whether
        # anything new arrived since the last redraw.
        if self.showing_conversation:
            traces = self._conversation
        else:
            traces = [self._answer] if self._answer is not None else []
        return (
            self.showing_conversation,
            tuple((id(trace), trace.n_steps) for trace in traces),
            self._dark,
        )

    def _update_numbers(self) -> None:
        answer = self._answer
        if answer is not None:
            rolling = answer.rolling_tokens_per_second(answer.live_now_s())
        else:
            rolling = 0.0
        self.values["rolling_rate"].setText(_rate(rolling))
        if self.showing_conversation:
            conversation = ConversationTrace(self._conversation)
            cumulative = conversation.cumulative_tokens_per_second
            ttft = conversation.mean_ttft_s
            acceptance = conversation.acceptance
            drafted = sum(trace.n_drafted for trace in self._conversation)
            per_pass = conversation.tokens_per_target_pass
        elif answer is not None:
            cumulative = answer.cumulative_tokens_per_second
            ttft = answer.ttft_s
            acceptance = answer.acceptance
            drafted = answer.n_drafted
            per_pass = answer.tokens_per_target_pass
        else:
            cumulative, ttft, acceptance, drafted, per_pass = 0.0, None, 0.0, 0, 0.0
        self.values["cumulative_rate"].setText(_rate(cumulative))
        ttft_text = f"{ttft * 1000:.0f} ms" if ttft is not None else _NONE
        if ttft is not None and self.showing_conversation:
            ttft_text += " (mean)"
        self.values["ttft"].setText(ttft_text)
        self.values["acceptance"].setText(f"{acceptance * 100:.1f}%" if drafted else _NONE)
        self.values["per_pass"].setText(f"{per_pass:.2f}" if per_pass > 0 else _NONE)
        lengths_text = _NONE
        if answer is not None and len(answer.draft_lengths):
            recent = answer.draft_lengths[-_SHOWN_DRAFT_LENGTHS:]
            lengths_text = " ".join(str(int(k)) for k in recent)
        self.values["draft_lengths"].setText(lengths_text)

    def _on_scope_changed(self, _checked: bool) -> None:
        self.redraw()

    # -- theme -------------------------------------------------------------------

    def _apply_theme(self) -> None:
        dark = is_dark()
        if dark == self._dark:
            return
        self._dark = dark
        if self._graphs is not None:
            for plot in self._graphs.all:
                plot.apply_theme(dark)

    def _on_theme_changed(self, _dark: bool) -> None:
        self._apply_theme()

    def changeEvent(self, event: QEvent) -> None:  # Qt override
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()
        super().changeEvent(event)
