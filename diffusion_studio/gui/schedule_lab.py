"""Schedule lab: β_t, α_t, ᾱ_t, √ᾱ_t, √(1 − ᾱ_t) and log-SNR against t, for several schedules at once.

The schedule in use (the one the forward panel diffuses with) is drawn thick; pinned schedules
are drawn thin beside it. A cursor marks the current t and moves with the forward panel.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig, schedule_csv, schedule_label
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.schedule_form import ScheduleForm
from diffusion_studio.gui.tasks import TaskRunner
from diffusion_studio.app.state import StudioState
from diffusion_studio.gui.symbols import QUANTITIES, plain
from diffusion_studio.gui.guard import guarded

BULK = 0.95  # the share of each plot's values its y axis fits when "Fit y to the bulk" is on
PLOTTED = ("beta", "alpha", "alpha_bar", "sqrt_alpha_bar", "sqrt_one_minus_alpha_bar", "log_snr")
PALETTE = ((31, 119, 180), (230, 126, 34), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194))
DEFAULT_COMPARISON = ScheduleConfig(name="cosine")
COMPARISON_KEY = "schedules/compare"


def curve_values(schedule: NoiseSchedule, key: str) -> np.ndarray:
    """The plotted quantity for t = 1…T (t = 0 is the data, where log-SNR is infinite)."""
    arrays = {
        "beta": schedule.betas,
        "alpha": schedule.alphas,
        "alpha_bar": schedule.alpha_bars,
        "sqrt_alpha_bar": schedule.sqrt_alpha_bars,
        "sqrt_one_minus_alpha_bar": schedule.sqrt_one_minus_alpha_bars,
        "log_snr": schedule.log_snr,
    }
    return arrays[key][1:]


class ScheduleLab(Panel):
    """Plots, a comparison list, the values at the cursor, and CSV export."""

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self._built: dict[ScheduleConfig, NoiseSchedule] = {}
        self._stale = True  # the cursor and table wait for t until the lab is shown
        self.compared: list[ScheduleConfig] = self._restore_comparisons()
        self.curves: dict[str, list[pg.PlotDataItem]] = {key: [] for key in PLOTTED}
        self._build()
        self._redraw()
        state.scheduleChanged.connect(self._redraw)
        state.tChanged.connect(self._on_t)
        state.notationChanged.connect(self._redraw)

    def _build(self) -> None:
        self.schedule_form = ScheduleForm(self.state)
        self.pin_button = QPushButton("Pin for comparison")
        self.pin_button.setToolTip("Keep the schedule in use on the plots, so you can change it and compare")
        self.normalized = QCheckBox("x axis: t / T")
        self.normalized.setToolTip("Plot against t/T, to compare schedules with different T")
        self.bulk = QCheckBox("y axes: fit the bulk")
        self.bulk.setToolTip(
            f"Each plot's y axis fits the middle {BULK:.0%} of its values, so the steep last steps of a schedule "
            "such as cosine (α_t falls to 0 at T) no longer flatten the others; those steps run off the frame"
        )
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Every plotted schedule's β, α, ᾱ, √ᾱ, √(1 − ᾱ), SNR, log-SNR and β̃ for t = 1…T")
        top = QHBoxLayout()
        top.addWidget(self.schedule_form, 1)
        top.addWidget(self.pin_button)
        top.addWidget(self.normalized)
        top.addWidget(self.bulk)
        top.addWidget(self.export_button)

        self.plot_area = pg.GraphicsLayoutWidget()
        self.plot_area.setBackground("w")
        self.plots: dict[str, pg.PlotItem] = {}
        self.cursors: dict[str, pg.InfiniteLine] = {}
        for i, key in enumerate(PLOTTED):
            plot = self.plot_area.addPlot(row=i // 3, col=i % 3)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getAxis("left").enableAutoSIPrefix(False)  # a prefix such as (x0.001) misreads a log axis
            if key == "beta":  # cosine's β_t reaches 0.999 while linear's stays near 0.01: a log axis shows both
                plot.setLogMode(x=False, y=True)
            cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((80, 80, 80), width=1, style=Qt.PenStyle.DashLine),
                                     hoverPen=pg.mkPen("r", width=2))
            cursor.setZValue(10)
            cursor.sigDragged.connect(self._on_cursor_dragged)
            plot.addItem(cursor, ignoreBounds=True)
            self.plots[key] = plot
            self.cursors[key] = cursor
        # one legend for all six plots, in a row of its own below them
        self.legend = pg.LegendItem(colCount=3, labelTextColor="k", labelTextSize="9pt")
        self.plot_area.addItem(self.legend, row=2, col=0, colspan=3)
        self.plot_area.setToolTip("Drag the dashed cursor to move t (the forward panel follows); scroll to zoom")

        self.compare_list = QListWidget()
        self.compare_list.setToolTip("Pinned schedules. Select one and press Remove, or double-click to use it")
        self.remove_button = QPushButton("Remove")
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setToolTip("Each schedule's values at the cursor")
        side = QWidget()
        side.setMinimumWidth(300)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("<b>Compared with</b>"))
        side_layout.addWidget(self.compare_list, 1)
        side_layout.addWidget(self.remove_button)
        self.cursor_label = QLabel()
        side_layout.addWidget(self.cursor_label)
        side_layout.addWidget(self.table, 2)
        splitter = QSplitter()
        splitter.addWidget(self.plot_area)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        self.pin_button.clicked.connect(self.pin_current)
        self.remove_button.clicked.connect(self.remove_selected)
        self.compare_list.itemDoubleClicked.connect(self._on_use_pinned)
        self.normalized.toggled.connect(self._redraw)
        self.bulk.toggled.connect(self._fit_y)
        self.export_button.clicked.connect(self.export)

    # ---- comparisons --------------------------------------------------------------------------

    def _restore_comparisons(self) -> list[ScheduleConfig]:
        saved = self.preferences.value(COMPARISON_KEY, "", str)
        if not saved:
            return [DEFAULT_COMPARISON]
        try:
            configs = [ScheduleConfig(**fields) for fields in json.loads(saved)]
            for config in configs:
                NoiseSchedule(config)  # refuses what cannot exist
            return configs
        except (ValueError, TypeError, DiffusionStudioError):
            return [DEFAULT_COMPARISON]

    def _save_comparisons(self) -> None:
        self.preferences.set_value(COMPARISON_KEY, json.dumps([asdict(c) for c in self.compared]))

    def pin_current(self) -> None:
        config = self.state.schedule.config
        if config not in self.compared:
            self.compared.append(config)
            self._save_comparisons()
            self._redraw()
            self.status.emit(f"Pinned {schedule_label(config)}")

    def remove_selected(self) -> None:
        row = self.compare_list.currentRow()
        if 0 <= row < len(self.compared):
            del self.compared[row]
            self._save_comparisons()
            self._redraw()

    def _on_use_pinned(self, item: QListWidgetItem) -> None:
        self.state.set_schedule_config(self.compared[self.compare_list.row(item)])

    def shown(self) -> list[NoiseSchedule]:
        """The schedule in use first, then each pinned one that differs from it."""
        current = self.state.schedule
        return [current] + [self._schedule(c) for c in self.compared if c != current.config]

    def _schedule(self, config: ScheduleConfig) -> NoiseSchedule:
        """Pinned schedules are built once, not on every move of the cursor."""
        if config not in self._built:
            self._built[config] = NoiseSchedule(config)
        return self._built[config]

    # ---- drawing ------------------------------------------------------------------------------

    def _x(self, schedule: NoiseSchedule) -> np.ndarray:
        t = schedule.t.astype(np.float64)
        return t / schedule.timesteps if self.normalized.isChecked() else t

    def _redraw(self) -> None:
        schedules = self.shown()
        notation = self.state.notation
        self.legend.clear()
        for key, plot in self.plots.items():
            for curve in self.curves[key]:
                plot.removeItem(curve)
            self.curves[key] = []
            for i, schedule in enumerate(schedules):
                colour = PALETTE[i % len(PALETTE)]
                pen = pg.mkPen(colour, width=3 if i == 0 else 1.5)
                label = schedule_label(schedule.config) + (" (in use)" if i == 0 else "")
                curve = plot.plot(self._x(schedule), curve_values(schedule, key), pen=pen)
                self.curves[key].append(curve)
                if key == PLOTTED[0]:
                    self.legend.addItem(curve, label)
            quantity = QUANTITIES[key]
            plot.setTitle(quantity.name(notation), color="k", size="11pt")
            plot.setLabel("left", quantity.name(notation))
            plot.setLabel("bottom", "t / T" if self.normalized.isChecked() else "t")
            plot.getAxis("left").setToolTip(quantity.meaning)
        with QSignalBlocker(self.compare_list):
            self.compare_list.clear()
            colour_of = {s.config: PALETTE[i % len(PALETTE)] for i, s in enumerate(schedules)}
            for config in self.compared:
                in_use = " (in use)" if config == self.state.schedule.config else ""
                item = QListWidgetItem(schedule_label(config) + in_use)
                item.setForeground(QColor(*colour_of[config]))  # its curve's colour
                self.compare_list.addItem(item)
        self._on_t(self.state.t)

    def _fit_y(self, bulk: bool) -> None:
        """Autorange each y axis to all of its curves' values, or to the middle BULK of them."""
        for plot in self.plots.values():
            plot.enableAutoRange(axis="y", enable=BULK if bulk else True)

    def _on_t(self, t: int) -> None:
        if not self.isVisible():  # moved from the forward panel: catch up when shown
            self._stale = True
            return
        self._stale = False
        x = t / self.state.schedule.timesteps if self.normalized.isChecked() else t
        for cursor in self.cursors.values():
            with QSignalBlocker(cursor):
                cursor.setValue(x)
        self._fill_table(t)

    @guarded
    def showEvent(self, event) -> None:
        if self._stale:
            self._on_t(self.state.t)
        super().showEvent(event)

    def _on_cursor_dragged(self, cursor: pg.InfiniteLine) -> None:
        x = cursor.value()
        T = self.state.schedule.timesteps
        self.state.set_t(round(x * T) if self.normalized.isChecked() else round(x))

    def _fill_table(self, t: int) -> None:
        """Each schedule's values at the cursor: the same t, or the same t/T on the normalized axis."""
        schedules = self.shown()
        notation = self.state.notation
        fraction = t / self.state.schedule.timesteps
        self.cursor_label.setText(f"<b>At the cursor</b> (t = {t}" + (f", t/T = {fraction:.3f})" if self.normalized.isChecked() else ")"))
        self.table.setRowCount(len(PLOTTED))
        self.table.setColumnCount(len(schedules))
        self.table.setVerticalHeaderLabels([plain(QUANTITIES[k].name(notation)) for k in PLOTTED])
        for column, schedule in enumerate(schedules):
            header = QTableWidgetItem(schedule.config.name + (" (in use)" if column == 0 else ""))
            header.setToolTip(schedule_label(schedule.config))
            header.setForeground(QColor(*PALETTE[column % len(PALETTE)]))
            self.table.setHorizontalHeaderItem(column, header)
            ts = round(fraction * schedule.timesteps) if self.normalized.isChecked() else t
            for row, key in enumerate(PLOTTED):
                text = f"{curve_values(schedule, key)[ts - 1]:.5g}" if 1 <= ts <= schedule.timesteps else "—"
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    # ---- export -------------------------------------------------------------------------------

    def export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export schedules as CSV", str(Path(self.preferences.folder("export")) / "schedules.csv"), "CSV (*.csv)"
        )
        if path:
            self.preferences.remember_folder("export", path)
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> bool:
        """Write schedule_csv of every plotted schedule, atomically."""
        try:
            with atomic_write(path) as handle:
                handle.write(schedule_csv(self.shown()).encode("utf-8"))
        except DiffusionStudioError as exc:
            self.failed.emit("Export CSV", str(exc))
            return False
        self.status.emit(f"Wrote {path}")
        return True
