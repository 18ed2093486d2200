"""The sweep page: choose a grid and a prompt set, watch the cells fill in, cancel,
read the heatmaps, apply a cell to the chat, save, reload and export.

Every sweep is saved with the pair; the history list shows them (date, prompt set,
grid, best speed-up) to reload any, and deletes one or all older than the chosen one.
A result shown belongs to the pair it measured: once another pair is loaded (another
draft model, or n-gram lookup instead), it stays readable but says so, and none of
its settings is applied to the new pair.

After a sweep the pair's verification cost curve (measured once per pair, core/tune)
and the sweep's acceptance predict every draft length; the speed-up plot shows the
prediction beside the measurements, and Calibrate also measures the predicted best
length when the grid missed it.

Signals:
    apply_requested(object): DraftSettings of the cell the user chose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPaintEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.engine import ChatMessage, DraftSource, GenerationSettings
from core.errors import ConfigError, SpecChatError
from core.settings import PairKey
from core.tune.calibration import (
    CALIBRATION_GRID,
    CALIBRATION_TOKENS,
    Calibration,
    chosen_settings,
    describe_prediction,
    without_a_winner,
)
from core.tune.prediction import (
    Prediction,
    measure_predicted_best,
    pair_curve,
    sweep_prediction,
)
from core.tune.prompt_sets import (
    BUILT_IN_SETS,
    PromptSet,
    built_in_set,
    conversation_prompt_set,
    load_prompt_file,
)
from core.tune.results_store import (
    SavedSweep,
    export_csv,
    load_curve,
    read_result_file,
    save_result,
)
from core.tune.sweep import (
    CellResult,
    SweepControl,
    SweepGrid,
    SweepProgress,
    SweepResult,
    parse_values,
    run_sweep,
    settings_label,
)
from gui.kept_tasks import KeptTasks
from gui.sentence import as_sentence
from gui.theme import is_dark, set_role, theme_notifier
from gui.tune.ab_page import RunnerSource
from gui.tune.saved_sweeps_bar import SavedSweepsBar

if TYPE_CHECKING:
    from gui.tune.sweep_plots import SpeedupCurve, SweepHeatmap

logger = logging.getLogger(__name__)

CONVERSATION_SET = "conversation"
FILE_SET = "file"
_COLUMNS = ("Settings", "Tokens/s", "Speed-up", "Acceptance", "Mean accepted")
# Rows the results table shows before it scrolls.
TABLE_ROWS_SHOWN = 12
PLOTS_PLACEHOLDER = (
    "After a sweep, heat maps of tokens/s, speed-up and acceptance over draft-max × "
    "p-min, and the speed-up against draft-max, appear here."
)


def describe_pair_change(shown: str | None, loaded: str | None) -> str:
    """Why a result measured on pair ``shown`` is not applied to pair ``loaded``."""
    shown_pair = PairKey.parse(shown) if shown is not None else None
    measured_on = shown_pair.describe() if shown_pair is not None else "no pair"
    if loaded is None:
        return f"This sweep was measured on {measured_on}, and no pair is loaded."
    loaded_pair = PairKey.parse(loaded)
    if shown_pair is not None and shown_pair.target == loaded_pair.target:
        # Same target: only the drafting differs, so say just that.
        what = (
            f"This sweep was measured with {shown_pair.describe_drafting()}; the loaded "
            f"pair uses {loaded_pair.describe_drafting()}."
        )
    else:
        what = (
            f"This sweep was measured on {measured_on}; the loaded pair is "
            f"{loaded_pair.describe()}."
        )
    return (
        f"{what} Its settings are not applied to this pair: run a sweep, or load one saved for it."
    )


class SweepPage(QWidget):
    """Grid, prompt set, progress and results of a sweep (see the module docstring)."""

    apply_requested = Signal(object)

    def __init__(
        self,
        runner: RunnerSource,
        settings: Callable[[], GenerationSettings],
        conversation: Callable[[], list[ChatMessage]],
        pair_key: Callable[[], str | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._settings = settings
        self._conversation = conversation
        self._pair_key = pair_key
        self._control: SweepControl | None = None
        self.result: SweepResult | None = None
        self.prediction: Prediction | None = None
        # The pair the result shown was measured on.
        self.result_pair: str | None = None
        self.prompt_file: Path | None = None
        self._row_cells: list[CellResult] = []
        self._tasks = KeptTasks("sweep task", lambda exc: self._say(f"The sweep failed: {exc}"))

        self.draft_max_edit = QLineEdit("2,4,8,16")
        self.draft_max_edit.setObjectName("sweep_draft_max")
        self.p_min_edit = QLineEdit("0,0.5,0.8")
        self.p_min_edit.setObjectName("sweep_p_min")
        self.draft_min_edit = QLineEdit("0")
        self.draft_min_edit.setObjectName("sweep_draft_min")
        self.ngram_check = QCheckBox("Also n-gram lookup")
        self.ngram_check.setToolTip("Add cells that draft by prompt lookup instead of the model")
        self.auto_check = QCheckBox("Also the adaptive length (draft-max auto)")
        self.auto_check.setChecked(True)
        self.set_combo = QComboBox()
        self.set_combo.setObjectName("sweep_prompt_set")
        for name in BUILT_IN_SETS:
            self.set_combo.addItem(f"Built-in: {name}", name)
        self.set_combo.addItem("The chat's conversation", CONVERSATION_SET)
        self.set_combo.addItem("Prompts from a file…", FILE_SET)
        self.set_combo.activated.connect(self._on_set_chosen)
        self.tokens_spin = QSpinBox()
        self.tokens_spin.setRange(8, 4096)
        self.tokens_spin.setValue(128)
        self.repeat_spin = QSpinBox()
        self.repeat_spin.setRange(1, 20)
        self.repeat_spin.setValue(1)
        form = QFormLayout()
        form.addRow("Draft-max values", self.draft_max_edit)
        form.addRow("p-min values", self.p_min_edit)
        form.addRow("Draft-min values", self.draft_min_edit)
        form.addRow(self.ngram_check)
        form.addRow(self.auto_check)
        form.addRow("Prompt set", self.set_combo)
        form.addRow("Tokens per answer", self.tokens_spin)
        form.addRow("Repeats per cell (median)", self.repeat_spin)

        self.run_button = QPushButton("Run sweep")
        self.run_button.setObjectName("sweep_run")
        self.run_button.clicked.connect(lambda: self._tasks.spawn(self.run_async()))
        set_role(self.run_button, "accent")
        self.calibrate_button = QPushButton("Calibrate")
        self.calibrate_button.setObjectName("sweep_calibrate")
        self.calibrate_button.setToolTip(
            "A short sweep (draft-max 2,4,8,16 x p-min 0,0.5) whose fastest setting becomes "
            "this pair's; if none beats plain decoding, the adaptive length is kept"
        )
        self.calibrate_button.clicked.connect(lambda: self._tasks.spawn(self.calibrate_async()))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("sweep_cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setObjectName("sweep_progress")
        self.status = QLabel("Each cell is measured against plain decoding in the same run.")
        self.status.setObjectName("sweep_status")
        self.status.setWordWrap(True)
        # Two lines kept for it: the warm-up's and the result's texts wrap at the
        # default width, and the table below must not jump as they come and go.
        self.status.setMinimumHeight(2 * self.status.fontMetrics().lineSpacing())
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.calibrate_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)

        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setObjectName("sweep_table")
        self.table.setHorizontalHeaderLabels(list(_COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setToolTip("Double-click a row to use its settings in the chat")
        self.table.cellDoubleClicked.connect(lambda row, _column: self.apply_row(row))
        self._fit_table_height()
        # The graphs (pyqtgraph) are made when the page is first painted or asked for
        # them, so they do not hold up the window's first appearance.
        self._heatmaps: dict[str, SweepHeatmap] = {}
        self._curve: SpeedupCurve | None = None
        self._plots_dark = False
        self._plot_grid = QGridLayout()
        self.plots = QWidget()
        self.plots.setObjectName("sweep_plots")
        self.plots.setLayout(self._plot_grid)
        # No result yet: a line saying what will be there instead of empty axes.
        self.plots.setVisible(False)
        self.plots_placeholder = QLabel(PLOTS_PLACEHOLDER)
        self.plots_placeholder.setObjectName("sweep_plots_placeholder")
        self.plots_placeholder.setWordWrap(True)
        self.plots_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.plots_placeholder.setMinimumHeight(4 * self.status.fontMetrics().lineSpacing())
        set_role(self.plots_placeholder, "muted")
        # Shown while the result on screen was measured on another pair than the one loaded.
        self.pair_notice = QLabel()
        self.pair_notice.setObjectName("sweep_pair_notice")
        self.pair_notice.setWordWrap(True)
        self.pair_notice.setVisible(False)
        set_role(self.pair_notice, "warning")

        self.apply_button = QPushButton("Use selected row in chat")
        self.apply_button.clicked.connect(self._apply_selected)
        self.saved = SavedSweepsBar()
        self.saved.load_requested.connect(self.load_saved)
        self.saved.message.connect(self._say)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self._ask_csv)
        self.png_button = QPushButton("Export PNG…")
        self.png_button.clicked.connect(self._ask_png)
        results_buttons = QHBoxLayout()
        for button in (self.apply_button, self.csv_button, self.png_button):
            results_buttons.addWidget(button)
        results_buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.pair_notice)
        layout.addWidget(self.table, 1)
        layout.addLayout(results_buttons)
        layout.addWidget(self.saved)
        layout.addWidget(self.plots, 2)
        layout.addWidget(self.plots_placeholder)
        self._update_export_buttons()

    def showEvent(self, event: QShowEvent) -> None:
        # The pair may have changed while the page was hidden.
        self.refresh_history()
        self._update_pair_state()
        super().showEvent(event)

    def _make_plots(self) -> SpeedupCurve:
        if self._curve is None:
            from gui.tune.sweep_plots import METRICS, SpeedupCurve, SweepHeatmap

            self._heatmaps = {metric: SweepHeatmap(metric) for metric in METRICS}
            for heatmap in self._heatmaps.values():
                heatmap.cell_clicked.connect(self.apply_cell)
            self._curve = SpeedupCurve()
            widgets: list[QWidget] = [*self._heatmaps.values(), self._curve]
            for index, widget in enumerate(widgets):
                self._plot_grid.addWidget(widget, index // 2, index % 2)
            self._plots_dark = is_dark()
            theme_notifier().theme_changed.connect(self._on_theme_changed)
            self._update_pair_state()
        return self._curve

    def _on_theme_changed(self, _dark: bool = False) -> None:
        dark = is_dark()
        if self._curve is None or dark == self._plots_dark:
            return
        self._plots_dark = dark
        for plot in (*self._heatmaps.values(), self._curve):
            plot.apply_theme()

    def changeEvent(self, event: QEvent) -> None:  # Qt override
        # A palette set without apply_theme (a platform theme, a test) counts too.
        if event.type() == QEvent.Type.PaletteChange:
            self._on_theme_changed()
        super().changeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        super().paintEvent(event)
        if self._curve is None:
            QTimer.singleShot(0, self, self._make_plots)

    @property
    def heatmaps(self) -> dict[str, SweepHeatmap]:
        self._make_plots()
        return self._heatmaps

    @property
    def curve(self) -> SpeedupCurve:
        return self._make_plots()

    # ----- inputs ------------------------------------------------------------------------

    def grid(self) -> SweepGrid:
        sources = (DraftSource.MODEL, DraftSource.NGRAM) if self.ngram_check.isChecked() else None
        return SweepGrid(
            draft_max=tuple(
                int(v) for v in parse_values(self.draft_max_edit.text(), int, "draft-max")
            ),
            p_min=tuple(float(v) for v in parse_values(self.p_min_edit.text(), float, "p-min")),
            draft_min=tuple(
                int(v) for v in parse_values(self.draft_min_edit.text(), int, "draft-min")
            ),
            sources=sources or (DraftSource.MODEL,),
            also_auto=self.auto_check.isChecked(),
        )

    def prompt_set(self) -> PromptSet:
        choice = self.set_combo.currentData()
        if choice == CONVERSATION_SET:
            messages = self._conversation()
            if not messages:
                raise ConfigError("the chat has no conversation to sweep on; pick a prompt set")
            return conversation_prompt_set("conversation", messages)
        if choice == FILE_SET:
            if self.prompt_file is None:
                raise ConfigError("choose a prompt file first (Prompt set → Prompts from a file…)")
            return load_prompt_file(self.prompt_file)
        return built_in_set(str(choice))

    def _on_set_chosen(self) -> None:
        if self.set_combo.currentData() != FILE_SET:
            return
        dialog = QFileDialog(self, "Prompts: JSON list or text with --- between prompts")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(lambda path: setattr(self, "prompt_file", Path(path)))
        dialog.open()

    # ----- running -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._control is not None

    async def run_async(self, calibrating: bool = False) -> SweepResult | None:
        """Run the sweep; the result is shown, saved with the pair (even when partial).

        A finished sweep is followed by the prediction from the pair's cost curve (its
        first sweep measures the curve); ``calibrating`` also measures the predicted
        best length when the grid missed it."""
        runner = self._runner()
        if runner is None:
            self._say("Load a model pair first.")
            return None
        try:
            grid, prompt_set = self.grid(), self.prompt_set()
        except ConfigError as exc:
            self._say(str(exc))
            return None
        settings = replace(self._settings(), n_predict=self.tokens_spin.value())
        self._control = SweepControl()
        self._set_running(True)
        self._say(f"Sweeping {len(grid.cells(settings.drafting))} cells on {prompt_set.name}…")
        self.prediction = None
        key = self._pair_key()
        try:
            result = await run_sweep(
                runner,
                prompt_set,
                grid,
                settings,
                self.repeat_spin.value(),
                on_progress=lambda progress: self._on_progress(progress, key),
                control=self._control,
            )
            if key is not None and result.cells and not result.partial:
                self._say("Measuring the verification cost curve of the pair…")
                curve = await pair_curve(runner, key, sweep=result)
                if calibrating:
                    self._say("Measuring the draft length the cost curve predicts best…")
                    # Only the bar moves: the table keeps the sweep, which the
                    # predicted cell joins when it is measured.
                    self.prediction = await measure_predicted_best(
                        runner,
                        result,
                        curve,
                        prompt_set,
                        settings,
                        self._on_bar,
                        self._control,
                    )
                else:
                    self.prediction = sweep_prediction(result, curve)
        except SpecChatError as exc:
            self._say(f"The sweep stopped: {exc}")
            return None
        finally:
            self._control = None
            self._set_running(False)
        self.show_result(result, pair=key)
        if key is not None and result.cells:
            save_result(result, key)
            self.refresh_history()
        return result

    async def calibrate_async(self) -> SweepResult | None:
        """Sweep the calibration grid and apply its choice to the chat (saved per pair)."""
        self.draft_max_edit.setText(",".join(str(v) for v in CALIBRATION_GRID.draft_max))
        self.p_min_edit.setText(",".join(f"{v:g}" for v in CALIBRATION_GRID.p_min))
        self.draft_min_edit.setText("0")
        self.ngram_check.setChecked(False)
        self.auto_check.setChecked(False)
        self.tokens_spin.setValue(CALIBRATION_TOKENS)
        result = await self.run_async(calibrating=True)
        if result is None or result.partial or not self._result_is_of_loaded_pair():
            return result
        chosen = chosen_settings(result, self._settings().drafting)
        if chosen is None:
            chosen = without_a_winner(self._settings().drafting)
        self.apply_requested.emit(chosen)
        fixed = chosen if not chosen.adaptive else None
        self._say(Calibration(result, fixed, prediction=self.prediction).describe())
        return result

    def cancel(self) -> None:
        """Stop after the running answer; the cells keep what they measured on the prompts
        every cell answered (the result says partial)."""
        if self._control is None:
            return
        self._control.cancel()
        runner = self._runner()
        if runner is not None:
            # Cut the running answer short too; run_sweep discards it.
            self._tasks.spawn(runner.cancel())
        self._say("Cancelling after the running answer…")

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.calibrate_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setValue(0)
        elif self.progress.maximum() == 0:
            # Stopped while the bar was busy (in the warm-up): an empty bar again.
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _on_bar(self, progress: SweepProgress) -> None:
        # Busy during the warm-up: how many answers it takes shows only as they end.
        self.progress.setRange(0, 0 if progress.warm_up is not None else progress.total)
        self.progress.setValue(progress.done)

    def _on_progress(self, progress: SweepProgress, pair: str | None) -> None:
        self._on_bar(progress)
        if progress.warm_up is not None:
            self._say(
                f"{as_sentence(progress.describe())} (an adaptive length learns from the "
                "answers before it, so it starts each round as it would in a chat on this text)…"
            )
        elif progress.done == 0:  # the first round starts
            result = progress.result
            self._say(
                f"Sweeping {result.planned_cells} cells on {result.prompt_set}: each is "
                "measured against plain decoding, prompt by prompt…"
            )
        if progress.cells_refreshed:
            self.show_result(progress.result, pair=pair)

    # ----- results -----------------------------------------------------------------------

    def show_result(self, result: SweepResult, pair: str | None = None) -> None:
        """Show ``result``, measured on ``pair`` (None: the pair loaded now)."""
        self.result = result
        self.result_pair = pair if pair is not None else self._pair_key()
        self._row_cells = list(result.cells)
        # Starred only when it beats plain decoding: a slower cell is no recommendation.
        best = result.winner()
        self.table.setRowCount(len(result.cells) + 1)
        base = result.baseline.decode_tokens_per_second
        self._set_row(0, ("plain", f"{base:.1f}", "1.00x", "", ""))
        for row, cell in enumerate(result.cells, start=1):
            mark = " ★ best" if cell is best else ""
            self._set_row(
                row,
                (
                    settings_label(cell.drafting) + mark,
                    f"{cell.decode_tokens_per_second:.1f}",
                    f"{result.speedup(cell):.2f}x",
                    f"{cell.acceptance * 100:.0f}%",
                    f"{cell.mean_accepted_length:.2f}",
                ),
            )
        self.table.resizeColumnsToContents()
        self._fit_table_height()
        drawn = False
        for heatmap in self.heatmaps.values():
            heatmap.update_from(result)
            # A grid of n-gram or adaptive cells only has no square to show.
            heatmap.setVisible(heatmap.has_squares)
            drawn = drawn or heatmap.has_squares
        self.curve.update_from(result, self.prediction)
        self.curve.setVisible(bool(self.curve.legend_names()))
        drawn = drawn or bool(self.curve.legend_names())
        self.plots.setVisible(drawn)
        self.plots_placeholder.setVisible(not drawn)
        if result.partial:
            self._say(f"Partial: {result.describe_partial()}.")
        elif result.running:
            if self._control is None or not self._control.cancelled:  # else "Cancelling…"
                self._say(f"Sweeping: {result.describe_running()}; the numbers refine as it goes…")
        elif best is not None and result.complete:
            self._say(
                f"Done. Best: {settings_label(best.drafting)}, {result.speedup(best):.2f}x plain"
                f"{describe_prediction(self.prediction)}. "
                "Click a square or double-click a row to use it in the chat."
            )
        elif result.complete:
            self._say(f"Done: {result.no_winner()}.")
        self._update_export_buttons()
        self._update_pair_state()

    def _fit_table_height(self) -> None:
        # As tall as its rows (up to TABLE_ROWS_SHOWN, then it scrolls): a few cells
        # left most of the table empty and pushed the plots below the fold.
        table = self.table
        rows = range(min(table.rowCount(), TABLE_ROWS_SHOWN))
        height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
        height += (
            sum(table.rowHeight(row) for row in rows) or table.verticalHeader().defaultSectionSize()
        )
        if table.horizontalScrollBar().isVisible():
            height += table.horizontalScrollBar().sizeHint().height()
        table.setMaximumHeight(height)

    def _set_row(self, row: int, values: tuple[str, ...]) -> None:
        for column, value in enumerate(values):
            self.table.setItem(row, column, QTableWidgetItem(value))

    def apply_row(self, row: int) -> None:
        """Apply the cell shown in table row ``row`` (row 0 is the plain baseline)."""
        if 1 <= row <= len(self._row_cells):
            self.apply_cell(self._row_cells[row - 1])

    def apply_cell(self, cell: CellResult) -> None:
        """Use ``cell``'s settings in the chat, unless the result shown is of another pair."""
        if not self._result_is_of_loaded_pair():
            self._update_pair_state()
            self._say("Not applied: the sweep shown was measured on another pair (see below).")
            return
        self.apply_requested.emit(cell.drafting)
        self._say(f"Using {settings_label(cell.drafting)} for the next answer.")

    def _apply_selected(self) -> None:
        self.apply_row(self.table.currentRow())

    # ----- the pair ----------------------------------------------------------------------

    def _result_is_of_loaded_pair(self) -> bool:
        return self.result is None or self.result_pair == self._pair_key()

    def check_pair(self) -> None:
        """Follow a change of the loaded pair: its saved sweeps in the list, and the
        result shown marked (and not applicable) when it is another pair's."""
        if self._pair_key() != self.saved.pair:
            self.refresh_history()
        self._update_pair_state()

    def _update_pair_state(self) -> None:
        ours = self._result_is_of_loaded_pair()
        if ours:
            self.pair_notice.setVisible(False)
        else:
            self.pair_notice.setText(describe_pair_change(self.result_pair, self._pair_key()))
            self.pair_notice.setVisible(True)
        self.apply_button.setEnabled(ours)
        self.apply_button.setToolTip(
            "Use the selected row's settings in the chat"
            if ours
            else "This sweep is of another pair: its settings are not applied to this one"
        )
        self.table.setToolTip(
            "Double-click a row to use its settings in the chat"
            if ours
            else "Measured on another pair: not applied to the loaded one"
        )
        for heatmap in self._heatmaps.values():
            heatmap.setToolTip(
                "Click a square to use its settings in the chat"
                if ours
                else "Measured on another pair: not applied to the loaded one"
            )

    def refresh_history(self) -> None:
        """List the loaded pair's saved sweeps, newest first."""
        self.saved.refresh(self._pair_key())

    def load_saved(self, entry: SavedSweep | None = None) -> SweepResult | None:
        """Show ``entry``, a saved sweep of the loaded pair (the one chosen in the list
        when None)."""
        key = self._pair_key()
        if key is None:
            self._say("Load a model pair to see its saved sweeps.")
            return None
        if self.saved.pair != key:
            self.refresh_history()
        entry = entry if entry is not None else self.saved.selected()
        if entry is None:
            self._say("No sweep saved for this pair yet.")
            return None
        try:
            result = read_result_file(entry.path)
        except ConfigError as exc:
            self._say(str(exc))
            return None
        try:
            curve = load_curve(key)
        except ConfigError as exc:
            logger.warning("%s", exc)
            curve = None
        self.prediction = sweep_prediction(result, curve) if curve else None
        self.show_result(result, pair=key)
        if not result.partial:
            self._say(f"Saved sweep of {entry.describe()}{describe_prediction(self.prediction)}.")
        return result

    def export_csv_to(self, path: Path) -> None:
        if self.result is not None:
            export_csv(self.result, path)

    def export_png_to(self, path: Path) -> bool:
        """The table-less picture: heatmaps and curve."""
        if not self.plots.isVisible():
            # A page never shown (its tab not opened yet) has no size to draw at.
            self.plots.resize(self.plots.sizeHint().expandedTo(QSize(640, 400)))
        return self.plots.grab().save(str(path), "PNG")

    def _ask_csv(self) -> None:
        self._ask_path("Export sweep as CSV", "CSV (*.csv)", self._save_csv)

    def _ask_png(self) -> None:
        self._ask_path("Export sweep plots as PNG", "PNG image (*.png)", self._save_png)

    def _ask_path(self, title: str, filters: str, save: Callable[[Path], None]) -> None:
        dialog = QFileDialog(self, title)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter(filters)
        dialog.fileSelected.connect(lambda path: save(Path(path)))
        dialog.open()

    def _save_csv(self, path: Path) -> None:
        try:
            self.export_csv_to(path)
        except ConfigError as exc:
            self._say(str(exc))
            return
        self._say(f"Saved {path}")

    def _save_png(self, path: Path) -> None:
        self._say(f"Saved {path}" if self.export_png_to(path) else f"Could not write {path}")

    def _update_export_buttons(self) -> None:
        has = self.result is not None and bool(self.result.cells)
        for button in (self.apply_button, self.csv_button, self.png_button):
            button.setVisible(has)

    def _say(self, text: str) -> None:
        self.status.setText(text)
