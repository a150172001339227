"""Schedule lab: β_t, α_t, ᾱ_t, √ᾱ_t, √(1 − ᾱ_t) and log-SNR against t, for several schedules at once.

The schedule in use (the one the forward panel diffuses with) is drawn thick; pinned schedules
are drawn thin beside it. A cursor marks the current t and moves with the forward panel. The
panel binds to a SchedulesSession (diffusion_studio.app.schedules), which holds the pins, the
axis and the values at the cursor, and writes the CSV.
"""

from __future__ import annotations

from pathlib import Path

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

from diffusion_studio.app.schedules import PLOTTED, SchedulesSession, curve_values
from diffusion_studio.app.state import StudioState
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.schedules import schedule_label
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.schedule_form import ScheduleForm
from diffusion_studio.gui.tasks import TaskRunner
from diffusion_studio.gui.symbols import QUANTITIES, plain
from diffusion_studio.gui.guard import guarded

BULK = 0.95  # the share of each plot's values its y axis fits when "Fit y to the bulk" is on
PALETTE = ((31, 119, 180), (230, 126, 34), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194))
PINS_KEY = "schedules/compare"
"""Where the preferences keep the session's pins (SchedulesSession.pins_json)."""


class ScheduleLab(Panel):
    """Plots, a comparison list, the values at the cursor, and CSV export, over a SchedulesSession."""

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, session: SchedulesSession,
                 parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session = session
        self._stale = True  # the cursor and table wait for t until the lab is shown
        self.curves: dict[str, list[pg.PlotDataItem]] = {key: [] for key in PLOTTED}
        self._build()
        self._redraw()
        self.state.scheduleChanged.connect(self._redraw)
        self.state.tChanged.connect(self._on_t)
        self.state.notationChanged.connect(self._redraw)
        session.pinsChanged.connect(self._on_pins)
        session.axisChanged.connect(self._redraw)

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
        self.normalized.toggled.connect(self.session.set_normalized)
        self.bulk.toggled.connect(self._fit_y)
        self.export_button.clicked.connect(self.export)

    # ---- pins ---------------------------------------------------------------------------------

    def pin_current(self) -> None:
        if self.session.pin_current():
            self.status.emit(f"Pinned {schedule_label(self.state.schedule.config)}")

    def remove_selected(self) -> None:
        row = self.compare_list.currentRow()
        if 0 <= row < len(self.session.pins):
            self.session.unpin(row)

    def _on_use_pinned(self, item: QListWidgetItem) -> None:
        self.session.use_pinned(self.compare_list.row(item))

    def _on_pins(self) -> None:
        self.preferences.set_value(PINS_KEY, self.session.pins_json())
        self._redraw()

    # ---- drawing ------------------------------------------------------------------------------

    def _redraw(self) -> None:
        schedules = self.session.shown()
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
                curve = plot.plot(self.session.x(schedule), curve_values(schedule, key), pen=pen)
                self.curves[key].append(curve)
                if key == PLOTTED[0]:
                    self.legend.addItem(curve, label)
            quantity = QUANTITIES[key]
            plot.setTitle(quantity.name(notation), color="k", size="11pt")
            plot.setLabel("left", quantity.name(notation))
            plot.setLabel("bottom", "t / T" if self.session.normalized else "t")
            plot.getAxis("left").setToolTip(quantity.meaning)
        with QSignalBlocker(self.compare_list):
            self.compare_list.clear()
            colour_of = {s.config: PALETTE[i % len(PALETTE)] for i, s in enumerate(schedules)}
            for config in self.session.pins:
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
        x = self.session.cursor_x()
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
        self.session.move_cursor(cursor.value())

    def _fill_table(self, t: int) -> None:
        """Each schedule's values at the cursor: the same t, or the same t/T on the normalized axis."""
        schedules = self.session.shown()
        notation = self.state.notation
        fraction = t / self.state.schedule.timesteps
        self.cursor_label.setText(f"<b>At the cursor</b> (t = {t}" + (f", t/T = {fraction:.3f})" if self.session.normalized else ")"))
        self.table.setRowCount(len(PLOTTED))
        self.table.setColumnCount(len(schedules))
        self.table.setVerticalHeaderLabels([plain(QUANTITIES[k].name(notation)) for k in PLOTTED])
        for column, (schedule, values) in enumerate(zip(schedules, self.session.values_at_cursor())):
            header = QTableWidgetItem(schedule.config.name + (" (in use)" if column == 0 else ""))
            header.setToolTip(schedule_label(schedule.config))
            header.setForeground(QColor(*PALETTE[column % len(PALETTE)]))
            self.table.setHorizontalHeaderItem(column, header)
            for row, value in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem("—" if value is None else f"{value:.5g}"))
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
        """Write every plotted schedule as CSV (the session's export_csv); False, said in ``failed``, if it cannot be."""
        try:
            self.session.export_csv(path)
        except DiffusionStudioError as exc:
            self.failed.emit("Export CSV", str(exc))
            return False
        self.status.emit(f"Wrote {path}")
        return True
