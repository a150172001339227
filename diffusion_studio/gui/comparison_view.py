"""A comparison of samplers as rows: each run's x_t and x̂_0 at the shared playhead t, and a plot of
distance against network calls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from diffusion_studio.core.compare import ComparedRun
from diffusion_studio.core.export import batch_grid, reference_points, view_bounds
from diffusion_studio.gui.imaging import show_pixels
from diffusion_studio.gui.point_style import SAMPLES_COLOUR, data_cloud, sample_cloud
from diffusion_studio.gui.guard import guarded

ROW_KEYS = ("x_t", "pred_x0")
TITLE_PX = 40  # the height of a run's title: two lines
SIDE_PX = 4  # a title's padding left and right


def row_title(number: int, run: ComparedRun, t: int | None = None, wrap: bool = False) -> str:
    """The run's number and name; under them the t it shows, what it cost and (once measured) how
    far it landed, the distance on a line of its own when ``wrap``."""
    shown = "" if t is None else "result · " if t == 0 else f"t = {t} · "
    lines = [f"<b>{number}. {run.label}</b>", f"{shown}{run.nfe} NFE · {run.seconds:.2f} s"]
    if run.distance is not None:
        distance = f"distance {run.distance:.3g}"
        lines[1:] = [lines[1], distance] if wrap else [f"{lines[1]} · {distance}"]
    return "<br>".join(lines)


def best_columns(runs: int, width: float, height: float) -> int:
    """How many columns of runs show their images largest in a width × height area: a run is a
    title over two square views side by side, so with c columns and r = ⌈runs / c⌉ rows each
    view's side is min(width / (2c), height / r − TITLE_PX)."""
    def side(columns: int) -> float:
        rows = -(-runs // columns)
        return min(width / (2 * columns), height / rows - TITLE_PX)

    return max(range(1, runs + 1), key=side) if runs > 0 else 1


class ComparisonView(QWidget):
    """The runs (x_t | x̂_0 each, at the frame nearest the playhead's t), numbered, in as many
    columns as show their images largest (``best_columns``), and beside them, in a splitter, each
    run's distance against its NFE, its point marked with the run's number.

    A run is a Qt title over its own plot canvas: a title inside a pyqtgraph layout would widen
    its columns by the length of its text (see ImageViews).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.quality = pg.PlotWidget(background="w")
        self.quality.setTitle("distance vs NFE", color="k", size="10pt")
        self.quality.setLogMode(x=True)
        self.quality.setLabel("bottom", "NFE (log scale)")
        self.quality.getAxis("left").enableAutoSIPrefix(False)
        self.quality.setMouseEnabled(x=False, y=False)
        self.quality.setMinimumWidth(150)
        self.quality.setToolTip("Each run's distance against its network calls; the numbers are the runs'")
        self.quality_points = pg.ScatterPlotItem(size=9, pen=None, brush=SAMPLES_COLOUR)
        self.quality.addItem(self.quality_points)
        self._quality_labels: list[pg.TextItem] = []
        self.titles: list[QLabel] = []
        self.cells: list[QWidget] = []
        self.items: list[dict[str, pg.ImageItem | pg.ScatterPlotItem]] = []
        self._runs: list[ComparedRun] = []
        self._shown_t: list[int | None] = []  # the t each run's title names (None: none yet)
        self.columns = 1
        self.headings = QLabel("left x<sub>t</sub>, right the predicted x<sub>0</sub>, each at its frame nearest t")
        self.headings.setStyleSheet("color: #444; padding: 2px 4px")
        self.rows = QWidget()
        self.grid = QGridLayout(self.rows)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(0)
        runs = QWidget()
        runs.setStyleSheet("background: white")
        stack = QVBoxLayout(runs)
        stack.setContentsMargins(0, 0, 0, 0)
        stack.setSpacing(0)
        stack.addWidget(self.headings)
        stack.addWidget(self.rows, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(runs)
        self.splitter.addWidget(self.quality)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setSizes([800, 200])
        self.splitter.splitterMoved.connect(lambda *_: self._place())  # the runs' area resized from within
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    @guarded
    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place()

    def _place(self) -> None:
        """Put the runs' cells in the grid, in the number of columns that suits the area now."""
        columns = best_columns(len(self.cells), self.rows.width(), self.rows.height())
        self._fit_titles(self.rows.width() / columns)
        if columns == self.columns and self.grid.count() == len(self.cells):
            return
        self.columns = columns
        for cell in self.cells:
            self.grid.removeWidget(cell)
        for i, cell in enumerate(self.cells):
            self.grid.addWidget(cell, i // columns, i % columns)
        rows = -(-len(self.cells) // columns)
        for row in range(self.grid.rowCount()):  # the grid keeps the rows and columns it once had
            self.grid.setRowStretch(row, int(row < rows))
        for column in range(self.grid.columnCount()):
            self.grid.setColumnStretch(column, int(column < columns))

    def _fit_titles(self, width: float) -> None:
        """Every title on two lines, or on three (the distance apart) when a second line would be
        wider than a run's column, ``width``: cut, it would lose the distance."""
        wrap = any(title.fontMetrics().horizontalAdvance(row_title(number, run, t).split("<br>")[1]) + 2 * SIDE_PX > width
                   for number, (run, title, t) in enumerate(zip(self._runs, self.titles, self._shown_t), 1))
        for number, (run, title, t) in enumerate(zip(self._runs, self.titles, self._shown_t), 1):
            title.setText(row_title(number, run, t, wrap))
            title.setToolTip(row_title(number, run, t))
            title.setFixedHeight(TITLE_PX + title.fontMetrics().lineSpacing() * wrap)

    def show_runs(self, runs: Sequence[ComparedRun], reference: np.ndarray | None, measured_by: str) -> None:
        """Lay out a cell per run (2-D runs over ``reference``, the data, when known) and plot each
        measured run's distance (``measured_by`` names it) against its NFE."""
        for cell in self.cells:
            self.grid.removeWidget(cell)
            cell.deleteLater()
        self.titles, self.cells, self.items, self._runs = [], [], [], list(runs)
        self._shown_t = [None] * len(runs)
        first_box = None
        for run in runs:
            title = QLabel()
            title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            title.setStyleSheet(f"color: #222; padding: 2px {SIDE_PX}px 0 {SIDE_PX}px")
            canvas = pg.GraphicsLayoutWidget()
            canvas.setBackground("w")
            canvas.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
            row = {}
            for column, key in enumerate(ROW_KEYS):
                if run.trajectory.is_image:
                    box = canvas.addViewBox(row=0, col=column, lockAspect=True, invertY=True, enableMenu=False)
                    item = pg.ImageItem(axisOrder="row-major")
                else:
                    box = canvas.addPlot(row=0, col=column)
                    box.setAspectLocked(True)
                    box.disableAutoRange()  # linked views: one view's auto-range would move them all
                    box.hideAxis("left")
                    box.hideAxis("bottom")
                    if reference is not None:
                        box.addItem(data_cloud(2, pos=reference_points(reference)))
                    if first_box is None:
                        first_box = box
                    else:
                        box.setXLink(first_box)
                        box.setYLink(first_box)
                    item = sample_cloud(3)
                box.addItem(item)
                row[key] = item
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(0, 0, 0, 0)
            cell_layout.setSpacing(0)
            cell_layout.addWidget(title)
            cell_layout.addWidget(canvas, 1)
            self.titles.append(title)
            self.cells.append(cell)
            self.items.append(row)
        self._place()
        if first_box is not None:  # x_T ~ N(0, I), the data and the results in view, in every row
            x_min, x_max, y_min, y_max = view_bounds(reference, *[run.trajectory.x_t[-1] for run in runs])
            first_box.setRange(xRange=(x_min, x_max), yRange=(y_min, y_max), padding=0)
        self._plot_quality(measured_by)

    def _plot_quality(self, measured_by: str) -> None:
        for label in self._quality_labels:
            self.quality.removeItem(label)
        self._quality_labels = []
        measured = [run for run in self._runs if run.distance is not None]
        self.quality.setLabel("left", measured_by)
        self.quality_points.setData(x=np.log10([r.nfe for r in measured]), y=[r.distance for r in measured])
        if measured:  # ticks at the runs' own NFEs, and room for the labels beside the points
            nfes = sorted({r.nfe for r in measured})
            distances = [r.distance for r in measured]
            low, high = min(distances), max(distances)
            margin = 0.1 * (high - low) or 0.1 * high or 1.0
            self.quality.getAxis("bottom").setTicks([[(np.log10(n), str(n)) for n in nfes]])
            self.quality.disableAutoRange()
            self.quality.setRange(xRange=(np.log10(nfes[0]) - 0.3, np.log10(nfes[-1]) + 0.3),
                                  yRange=(low - margin, high + 2 * margin), padding=0)
        for number, run in enumerate(self._runs, 1):
            if run.distance is None:
                continue
            # odd numbers right of their point, even ones left: runs of one NFE stand apart
            label = pg.TextItem(str(number), color=(60, 60, 60), anchor=(-0.4, 0.5) if number % 2 else (1.4, 0.5))
            label.setPos(np.log10(run.nfe), run.distance)
            self.quality.addItem(label)
            self._quality_labels.append(label)

    def show_t(self, frames: Sequence[int]) -> None:
        """Each row at its own frame (the one nearest the playhead's t)."""
        for index, (run, row, k) in enumerate(zip(self._runs, self.items, frames)):
            trajectory = run.trajectory
            for key, batch in (("x_t", trajectory.x_t[k]), ("pred_x0", trajectory.pred_x0[k])):
                if trajectory.is_image:
                    show_pixels(row[key], batch_grid(batch))
                else:
                    row[key].setData(pos=batch)
            self._shown_t[index] = int(trajectory.timesteps[k])
        self._fit_titles(self.rows.width() / self.columns)

    def shown(self, row: int, key: str = "x_t") -> np.ndarray:
        """What a row's view shows now: the image grid, or the N×2 points."""
        item = self.items[row][key]
        if isinstance(item, pg.ImageItem):
            return np.asarray(item.image)
        x, y = item.getData()
        return np.stack([x, y], axis=1)
