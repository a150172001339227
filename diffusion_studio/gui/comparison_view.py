"""A comparison of samplers as rows: each run's x_t and x̂_0 at the shared playhead t, and a plot of
distance against network calls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from diffusion_studio.core.compare import ComparedRun
from diffusion_studio.core.export import batch_grid, reference_points
from diffusion_studio.gui.imaging import show_pixels

ROW_KEYS = ("x_t", "pred_x0")
POINTS = (31, 94, 200, 200)
DATA = (190, 190, 190)


def row_title(run: ComparedRun) -> str:
    """The run, what it cost and (once measured) how far it landed."""
    distance = "" if run.distance is None else f" · distance {run.distance:.3g}"
    return f"<b>{run.label}</b> · {run.nfe} NFE · {run.seconds:.2f} s{distance}"


class ComparisonView(QWidget):
    """Rows of runs on the left (x_t | x̂_0 each, at the frame nearest the playhead's t), and each
    run's distance against its NFE on the right.

    A row is a Qt title over its own plot canvas: a title inside a pyqtgraph layout would widen
    its columns by the length of its text (see ImageViews).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.quality = pg.PlotWidget(background="w", title="distance vs network calls")
        self.quality.setLogMode(x=True)
        self.quality.setLabel("bottom", "NFE (log scale)")
        self.quality.getAxis("left").enableAutoSIPrefix(False)
        self.quality.setMouseEnabled(x=False, y=False)
        self.quality.setFixedWidth(250)
        self.quality_points = pg.ScatterPlotItem(size=9, pen=None, brush=POINTS)
        self.quality.addItem(self.quality_points)
        self._quality_labels: list[pg.TextItem] = []
        self.titles: list[QLabel] = []
        self.items: list[dict[str, pg.ImageItem | pg.ScatterPlotItem]] = []
        self._runs: list[ComparedRun] = []
        self.rows = QWidget()
        self.rows.setStyleSheet("background: white")
        self.rows_layout = QVBoxLayout(self.rows)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(0)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.rows, 1)
        layout.addWidget(self.quality)

    def show_runs(self, runs: Sequence[ComparedRun], reference: np.ndarray | None, measured_by: str) -> None:
        """Lay out a row per run (2-D runs over ``reference``, the data, when known) and plot each
        measured run's distance (``measured_by`` names it) against its NFE."""
        while self.rows_layout.count():
            self.rows_layout.takeAt(0).widget().deleteLater()
        self.titles, self.items, self._runs = [], [], list(runs)
        clouds = [reference] + [run.trajectory.x_t[-1] for run in runs if not run.trajectory.is_image]
        reach = 1.1 * max([3.0] + [float(np.abs(c[np.isfinite(c)]).max(initial=0.0)) for c in clouds if c is not None])
        headings = QLabel("left x<sub>t</sub>, right the predicted x<sub>0</sub>, each at its frame nearest t")
        headings.setStyleSheet("color: #444; padding: 2px 4px")
        self.rows_layout.addWidget(headings)
        first_box = None
        for run in runs:
            title = QLabel(row_title(run))
            title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            title.setStyleSheet("color: #222; padding: 4px 4px 0 4px")
            canvas = pg.GraphicsLayoutWidget()
            canvas.setBackground("w")
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
                        box.addItem(pg.ScatterPlotItem(pos=reference_points(reference), size=2, pen=None, brush=DATA))
                    if first_box is None:
                        first_box = box
                    else:
                        box.setXLink(first_box)
                        box.setYLink(first_box)
                    item = pg.ScatterPlotItem(size=3, pen=None, brush=POINTS)
                box.addItem(item)
                row[key] = item
            self.rows_layout.addWidget(title)
            self.rows_layout.addWidget(canvas, 1)
            self.titles.append(title)
            self.items.append(row)
        if first_box is not None:  # x_T ~ N(0, I) and the data in view, in every row
            first_box.setRange(xRange=(-reach, reach), yRange=(-reach, reach), padding=0)
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
        for run in measured:
            label = pg.TextItem(run.label.split(" ")[0], color=(60, 60, 60), anchor=(0.5, 1.2))
            label.setPos(np.log10(run.nfe), run.distance)
            self.quality.addItem(label)
            self._quality_labels.append(label)

    def show_t(self, frames: Sequence[int]) -> None:
        """Each row at its own frame (the one nearest the playhead's t)."""
        for run, row, title, k in zip(self._runs, self.items, self.titles, frames):
            trajectory = run.trajectory
            for key, batch in (("x_t", trajectory.x_t[k]), ("pred_x0", trajectory.pred_x0[k])):
                if trajectory.is_image:
                    show_pixels(row[key], batch_grid(batch))
                else:
                    row[key].setData(pos=batch)
            t = int(trajectory.timesteps[k])
            title.setText(row_title(run) + (" · result" if t == 0 else f" · t = {t}"))
            title.setToolTip(title.text())

    def shown(self, row: int, key: str = "x_t") -> np.ndarray:
        """What a row's view shows now: the image grid, or the N×2 points."""
        item = self.items[row][key]
        if isinstance(item, pg.ImageItem):
            return np.asarray(item.image)
        x, y = item.getData()
        return np.stack([x, y], axis=1)
