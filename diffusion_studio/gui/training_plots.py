"""The Training panel's plots: the loss and the loss by t over training above, the loss by t now
and the EMA model's preview below. They paint what a TrainingSession holds."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from diffusion_studio.app.training import LOSS_BY_T_ROWS, RunInfo, TrainingSession, TrainingUpdate, smooth
from diffusion_studio.gui.imaging import show_pixels
from diffusion_studio.gui.integer_axis import IntegerAxis
from diffusion_studio.gui.point_style import data_cloud, sample_cloud


def log_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Ticks for an axis in log10 units from ``low`` to ``high``, labelled in plain units: the powers
    of ten inside if three fall inside, else 1, 2 and 5 times them if two do, else 1…9 times them if
    two do, else the two ends. (pyqtgraph's log axis labels 1…9× every power however close they
    come, and over a decade or two its labels overlap.)"""
    powers = np.arange(np.floor(low), np.ceil(high) + 1)
    for mantissas, enough in (((1,), 3), ((1, 2, 5), 2), (range(1, 10), 2)):
        values = (powers[:, None] + np.log10(mantissas)).ravel()
        values = values[(values >= low) & (values <= high)]
        if len(values) >= enough:
            break
    else:
        values = (low, high)
    return [(float(v), f"{10.0 ** v:.3g}") for v in values]


class TrainingPlots(QWidget):
    """Over training steps above (the loss, the loss by t), the run as it stands below (the loss by
    t now, the EMA preview: an image grid or a cloud of points over the data's)."""

    def __init__(self, session: TrainingSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.loss_plot = pg.PlotWidget(background="w", title="Training loss", axisItems={"bottom": IntegerAxis("bottom")})
        self.loss_plot.setLogMode(y=True)
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLabel("left", "loss (log scale)")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.loss_plot.setClipToView(True)
        self.loss_plot.setDownsampling(auto=True, mode="peak")
        self.raw_curve = self.loss_plot.plot(pen=pg.mkPen((160, 190, 230), width=1), name="each report")
        self.smooth_curve = self.loss_plot.plot(pen=pg.mkPen((31, 94, 200), width=2), name="smoothed")
        self.loss_plot.setToolTip("The mean of ‖target − network(x_t, t)‖² over each report's steps, and its moving average")
        self.heatmap_plot = pg.PlotWidget(background="w", axisItems={"bottom": IntegerAxis("bottom")})
        self.heatmap_plot.setLabel("bottom", "training step")
        self.heatmap_plot.setLabel("left", "t")
        self.heatmap_plot.setMouseEnabled(x=False, y=False)
        self.heatmap_plot.setToolTip("The loss by timestep at each report, kept through the run (at most "
                                     f"{LOSS_BY_T_ROWS}, evenly spaced): one row per tenth of t. The colour is on a "
                                     "log scale, as the loss of different t differs by orders of magnitude")
        self.heatmap = pg.ImageItem(axisOrder="row-major")
        self.heatmap_plot.addItem(self.heatmap)
        self.heatmap_bar = pg.ColorBarItem(width=15, colorMap="viridis", label="loss (log scale)", interactive=False,
                                           colorMapMenu=False)
        self.heatmap_bar.setImageItem(self.heatmap, insert_in=self.heatmap_plot.getPlotItem())
        self.bucket_plot = pg.PlotWidget(background="w", title="Loss by timestep")
        self.bucket_plot.setLabel("bottom", "t")
        self.bucket_plot.setLabel("left", "mean loss")
        self.bucket_plot.getAxis("left").enableAutoSIPrefix(False)
        self.bucket_plot.setMouseEnabled(x=False, y=False)
        self.bucket_plot.setToolTip("Running mean loss for ten equal ranges of t: where the network struggles")
        self.buckets = pg.BarGraphItem(x=[], height=[], width=1, brush=(31, 94, 200, 180), pen=None)
        self.bucket_plot.addItem(self.buckets)
        self.preview_title = QLabel("Samples from the EMA model appear here while training")
        self.preview_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_images = pg.GraphicsLayoutWidget()
        self.preview_images.setBackground("w")
        view = self.preview_images.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.preview_item = pg.ImageItem()
        view.addItem(self.preview_item)
        self.preview_points = pg.PlotWidget(background="w")
        self.preview_points.setAspectLocked(True)
        self.reference_cloud = data_cloud()
        self.preview_cloud = sample_cloud()
        self.preview_points.addItem(self.reference_cloud)
        self.preview_points.addItem(self.preview_cloud)
        self.previews = QStackedWidget()
        self.previews.addWidget(self.preview_images)
        self.previews.addWidget(self.preview_points)
        preview_column = QVBoxLayout()
        preview_column.addWidget(self.preview_title)
        preview_column.addWidget(self.previews, 1)
        plots = QGridLayout(self)  # over training steps above, the run as it stands below
        plots.setContentsMargins(0, 0, 0, 0)
        plots.addWidget(self.loss_plot, 0, 0)
        plots.addWidget(self.heatmap_plot, 0, 1)
        plots.addWidget(self.bucket_plot, 1, 0)
        plots.addLayout(preview_column, 1, 1)
        for i in (0, 1):
            plots.setColumnStretch(i, 1)
            plots.setRowStretch(i, 1)

    def clear(self, timesteps: int) -> None:
        """Empty plots say what will fill them: the plots over training steps hide their axes (and
        the colour bar) until the first losses (an empty auto-ranged axis reads 0…1), the loss by
        timestep is framed on t = 0…T."""
        self.raw_curve.setData([], [])
        self.smooth_curve.setData([], [])
        self.heatmap.clear()
        self.buckets.setOpts(x=[], height=[])
        self._show_axes(False)
        self.bucket_plot.setRange(xRange=(0, timesteps), yRange=(0, 1), padding=0)

    def _show_axes(self, shown: bool) -> None:
        # short titles: one wider than its plot would stretch the plot past its view (at 1024 px)
        titles = ((self.loss_plot, "Training loss", "Training loss: from the first steps"),
                  (self.heatmap_plot, "Loss by t over training", "Loss by t: from the first steps"))
        for plot, title, empty_title in titles:
            for axis in ("left", "bottom"):
                plot.showAxis(axis, shown)
            plot.setTitle(title if shown else empty_title)
        self.heatmap_bar.setVisible(shown)
        self.preview_item.clear()
        self.preview_cloud.setData(pos=np.zeros((0, 2)))
        self.preview_title.setText("Samples from the EMA model appear here while training")

    def start(self, info: RunInfo) -> None:
        """A run has started: axes for its losses, and the preview for its kind of data."""
        self._show_axes(True)
        self.bucket_plot.enableAutoRange()
        self.previews.setCurrentIndex(0 if info.reference is None else 1)
        self.reference_cloud.setData(pos=info.reference if info.reference is not None else np.zeros((0, 2)))

    def show_progress(self, update: TrainingUpdate) -> None:
        """The session's loss history with this update in it, its loss by t now, and its preview."""
        steps, losses = self.session.loss_curve()
        self.raw_curve.setData(steps, losses)
        self.smooth_curve.setData(steps, smooth(losses))
        latest = update.loss_by_t[-1]
        width = self.session.info.timesteps / len(latest)
        self.buckets.setOpts(x=(np.arange(len(latest)) + 0.5) * width, height=np.nan_to_num(latest), width=0.9 * width)
        self._show_heatmap()
        if update.preview is not None:
            if update.preview.ndim == 3:
                show_pixels(self.preview_item, update.preview)
            else:
                self.preview_cloud.setData(pos=update.preview)
            self.preview_title.setText(f"EMA samples at step {update.preview_step} (DDIM, 20 steps)")

    def _show_heatmap(self) -> None:
        """The session's loss-by-t history as an image of log10 L: a column per report kept, spanning
        the steps since the one before (its running means are up to its step), and a row per range
        of t, spanning t = 0…T; the colour bar runs from the least to the greatest loss."""
        steps, rows = self.session.loss_by_t_history()
        image = np.log10(rows.T)
        spacing = (steps[-1] - steps[0]) / (len(steps) - 1) if len(steps) > 1 else 1.0
        left, timesteps = steps[0] - spacing, self.session.info.timesteps
        self.heatmap.setImage(image, autoLevels=False, rect=QRectF(left, 0, steps[-1] - left, timesteps))
        low = np.nanmin(image)
        high = max(np.nanmax(image), low + 1e-3)  # one value: still a range
        self.heatmap_bar.setLevels((low, high))
        self.heatmap_bar.axis.setTicks([log_ticks(low, high)])  # the image holds log10 L; the ticks read as L
        self.heatmap_plot.setRange(xRange=(left, steps[-1]), yRange=(0, timesteps), padding=0)
