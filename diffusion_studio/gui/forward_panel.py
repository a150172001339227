"""Forward process: x_0, ε and x_t side by side; a t slider; the closed form or the Markov chain.

The panel paints what its ForwardSession (app/forward.py, where the formulas are) shows, and
walks the session's chain from a timer, a short budget per event-loop turn.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.app.forward import (
    HISTOGRAM_EDGES,
    ForwardImage,
    ForwardSession,
    ForwardView,
    normal_density,
    strip_times,
    unread_report,
)
from diffusion_studio.app.state import StudioState
from diffusion_studio.core.data.images import LoadedImages, load_image, load_images, to_uint8
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.gui.image_views import ImageViews
from diffusion_studio.gui.imaging import ClosedFormRenderer, show_pixels, thumbnail_icon
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.schedule_form import ScheduleForm
from diffusion_studio.gui.symbols import QUANTITIES
from diffusion_studio.gui.tasks import TaskRunner
from diffusion_studio.resources import SAMPLE_IMAGE

MAX_SIDE = 512
"""Images are shown at most this many pixels on a side (shrunk on loading, aspect kept)."""
CHAIN_BUDGET_S = 0.015
"""Step-by-step mode walks the chain at most this long per event-loop turn, so the UI stays live."""


class ForwardPanel(Panel):
    """Watch q(x_t | x_0) destroy an image, t by t."""

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session = ForwardSession(state)
        self._renderer: ClosedFormRenderer | None = None  # x_t's pixels in closed form, for the session's x_0 and ε
        self._chain_timer = QTimer(self)
        self._chain_timer.setInterval(0)
        self._chain_timer.timeout.connect(lambda: self.session.advance_chain(CHAIN_BUDGET_S))
        self._build()
        self._connect()

    # ---- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.thumbnails = QListWidget()
        self.thumbnails.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbnails.setFlow(QListWidget.Flow.LeftToRight)
        self.thumbnails.setWrapping(False)
        self.thumbnails.setMovement(QListWidget.Movement.Static)
        self.thumbnails.setIconSize(QSize(56, 56))
        self.thumbnails.setFixedHeight(84)
        self.thumbnails.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.thumbnails.setToolTip("Loaded images: click one to show it. Drop files or folders anywhere on the window to add more.")
        self.open_button = QPushButton("Open images…")
        self.open_button.setToolTip("Add image files (PNG, JPEG, TIFF, WebP, …); they are shown at most 512 px on a side")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected image from the strip (the file is not touched)")
        strip = QHBoxLayout()
        strip.addWidget(self.thumbnails, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        strip.addLayout(buttons)

        # x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: the two terms stacked small on the left, their sum large
        self.views = ImageViews({"x0": "", "eps": "", "xt": ""}, cells={"x0": (0, 0, 1), "eps": (1, 0, 1), "xt": (0, 1, 2)})
        self.images_items = self.views.items
        self.view_titles = self.views.titles
        self.views.setToolTip("Scroll to zoom, drag to pan; the three views move together")

        self.readout = QLabel()
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setFixedWidth(340)
        self.readout.setWordWrap(True)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.histogram = pg.PlotWidget(background="w")
        self.histogram.setMinimumSize(240, 200)
        self.histogram.setMaximumWidth(340)
        self.histogram.getAxis("left").enableAutoSIPrefix(False)
        self.histogram.setTitle("pixels of x<sub>t</sub> against N(0, 1)", color="k", size="10pt")
        self.histogram.setLabel("bottom", "value")
        self.histogram.setLabel("left", "density")
        self.histogram.addLegend(offset=(5, 5), labelTextColor="k", labelTextSize="8pt")
        self.histogram.setXRange(-4, 4, padding=0)
        self.histogram.setMouseEnabled(x=False, y=False)
        self.histogram.setToolTip(
            "Histogram of x_t's pixel values (a random 65,536 of them). As t grows, x_t → N(0, I): "
            "the bars approach the curve exp(−x²/2)/√(2π)"
        )
        self.hist_bars = self.histogram.plot(
            HISTOGRAM_EDGES, np.zeros(HISTOGRAM_EDGES.size - 1), stepMode="center", fillLevel=0,
            brush=(70, 130, 180, 120), pen=pg.mkPen((70, 130, 180), width=1), name="x<sub>t</sub>",
        )
        self.hist_closed = self.histogram.plot(
            HISTOGRAM_EDGES, np.zeros(HISTOGRAM_EDGES.size - 1), stepMode="center",
            pen=pg.mkPen((230, 126, 34), width=2),
        )  # in the legend only while the chain runs
        grid = np.linspace(-4, 4, 200)
        self.histogram.plot(grid, normal_density(grid), pen=pg.mkPen("k", width=2, style=Qt.PenStyle.DashLine), name="N(0, 1)")
        side = QVBoxLayout()
        side.addWidget(self.readout)
        side.addWidget(self.histogram, 1)
        middle = QHBoxLayout()
        middle.addWidget(self.views, 1)
        middle.addLayout(side)

        self.t_slider = QSlider(Qt.Orientation.Horizontal)
        self.t_slider.setToolTip("t: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε. Arrow keys step by 1, Page Up/Down by a tenth of T")
        self.t_spin = QSpinBox()
        self.t_spin.setToolTip(self.t_slider.toolTip())
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seed of ε ~ N(0, I): the same seed gives the same noise")
        self.new_noise = QPushButton("New noise")
        self.new_noise.setToolTip("Draw a fresh ε (seed + 1)")
        self.mode = QComboBox()
        self.mode.addItem("Closed form", "closed")
        self.mode.addItem("Step by step (Markov chain)", "chain")
        self.mode.setItemData(0, "x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: one jump, one ε for every t", Qt.ItemDataRole.ToolTipRole)
        self.mode.setItemData(1, "x_t = √α_t x_{t−1} + √β_t ε_t: t steps, fresh noise at each", Qt.ItemDataRole.ToolTipRole)
        self.mode.setToolTip("How x_t is made: the closed form, or the chain of t small steps it summarizes")
        controls = QGridLayout()
        controls.addWidget(QLabel("t"), 0, 0)
        controls.addWidget(self.t_slider, 0, 1)
        controls.addWidget(self.t_spin, 0, 2)
        controls.addWidget(QLabel("Seed"), 0, 3)
        controls.addWidget(self.seed, 0, 4)
        controls.addWidget(self.new_noise, 0, 5)
        controls.addWidget(self.mode, 0, 6)
        controls.setColumnStretch(1, 1)

        self.schedule_form = ScheduleForm(self.state)
        self.strip_ts = QLineEdit("0, 100, 250, 500, 750, 1000")
        self.strip_ts.setToolTip("t values for the strip, separated by commas (each in 0…T)")
        self.strip_ts.setMinimumWidth(self.strip_ts.fontMetrics().horizontalAdvance(self.strip_ts.text()) + 16)
        self.save_xt_button = QPushButton("Save x_t…")
        self.save_xt_button.setToolTip("Save the x_t on screen as a PNG")
        self.save_strip_button = QPushButton("Save strip…")
        self.save_strip_button.setToolTip("Save x_0 then x_t at each listed t (closed form, the ε on screen) as one PNG")
        bottom = QHBoxLayout()
        bottom.addWidget(self.schedule_form, 1)
        bottom.addWidget(self.save_xt_button)
        bottom.addWidget(QLabel("Strip at t ="))
        bottom.addWidget(self.strip_ts)
        bottom.addWidget(self.save_strip_button)

        layout = QVBoxLayout(self)
        layout.addLayout(strip)
        layout.addLayout(middle, 1)
        layout.addLayout(controls)
        layout.addLayout(bottom)
        self._show_range()
        self._show_titles()

    def _connect(self) -> None:
        self.thumbnails.currentRowChanged.connect(self._on_row)
        self.open_button.clicked.connect(self.ask_open)
        self.remove_button.clicked.connect(self.remove_current)
        self.t_slider.valueChanged.connect(self.state.set_t)
        self.t_spin.valueChanged.connect(self.state.set_t)
        self.seed.valueChanged.connect(self.session.set_seed)
        self.new_noise.clicked.connect(self.session.new_noise)
        self.mode.currentIndexChanged.connect(lambda: self.session.set_mode(self.mode.currentData()))
        self.save_xt_button.clicked.connect(self.ask_save_xt)
        self.save_strip_button.clicked.connect(self.ask_save_strip)
        self.session.imagesAdded.connect(self._on_images_added)
        self.session.imageRemoved.connect(self._on_image_removed)
        self.session.imageChanged.connect(self._on_image)
        self.session.noiseChanged.connect(self._on_noise)
        self.session.modeChanged.connect(self._on_mode)
        self.session.shown.connect(self._on_shown)
        self.state.tChanged.connect(self._on_t)
        self.state.scheduleChanged.connect(self._show_range)
        self.state.notationChanged.connect(self._on_notation)

    # ---- images -------------------------------------------------------------------------------

    def load_sample(self) -> None:
        """Show the bundled sample image (first launch, or nothing else loaded)."""
        try:
            self.session.add_images([ForwardImage(SAMPLE_IMAGE.stem, load_image(SAMPLE_IMAGE, max_side=MAX_SIDE))])
        except DiffusionStudioError as exc:  # a damaged install; the panel still works with the user's own images
            self.failed.emit("Sample image", str(exc))

    def ask_open(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", self.preferences.folder("images"),
            "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm *.tga);;All files (*)",
        )
        if files:
            self.preferences.remember_folder("images", files[0])
            self.open_paths(files)

    def open_paths(self, paths: list[str | Path]) -> None:
        """Load image files and folders in the background; the strip gains those that load."""
        names = ", ".join(Path(p).name for p in paths[:3]) + (" …" if len(paths) > 3 else "")
        self.status.emit(f"Loading {names}")
        self.tasks.start(lambda: load_images(paths, max_side=MAX_SIDE), self._on_loaded, lambda m: self.failed.emit("Open images", m))

    def _on_loaded(self, loaded: LoadedImages) -> None:
        if loaded.images:
            self.session.add_images([ForwardImage(path.name, array) for path, array in loaded.images])
            for path, _ in loaded.images:
                self.preferences.add_recent("images", path)
        if loaded.failed:
            self.failed.emit("Open images", unread_report(len(loaded.images), loaded.failed))
        elif not loaded.images:
            self.failed.emit("Open images", "There were no image files there.")
        else:
            shape = loaded.images[-1][1].shape
            self.status.emit(f"Opened {len(loaded.images)} image(s); showing {loaded.images[-1][0].name} at {shape[1]}×{shape[0]}")

    def remove_current(self) -> None:
        if not self.session.remove_current():
            self.status.emit("The last image stays: open another before removing it")

    def _on_row(self, row: int) -> None:
        if row >= 0:
            self.session.select(row)

    def _on_images_added(self, images: list[ForwardImage]) -> None:
        with QSignalBlocker(self.thumbnails):
            for image in images:
                item = QListWidgetItem(thumbnail_icon(image.x0), image.name)
                item.setToolTip(f"{image.name}: {image.x0.shape[1]}×{image.x0.shape[0]}, {'RGB' if image.x0.shape[2] == 3 else 'gray'}")
                self.thumbnails.addItem(item)

    def _on_image_removed(self, row: int) -> None:
        with QSignalBlocker(self.thumbnails):
            self.thumbnails.takeItem(row)

    def _on_image(self, row: int) -> None:
        with QSignalBlocker(self.thumbnails):
            self.thumbnails.setCurrentRow(row)
        show_pixels(self.images_items["x0"], to_uint8(self.session.x0))
        self.views.fit()

    # ---- noise, t, schedule, mode -------------------------------------------------------------

    def _on_noise(self, seed: int) -> None:
        with QSignalBlocker(self.seed):
            self.seed.setValue(seed)
        if self.session.eps is not None:
            self._renderer = ClosedFormRenderer(self.session.x0, self.session.eps)
            self._show_noise()

    def _on_mode(self, mode: str) -> None:
        with QSignalBlocker(self.mode):
            self.mode.setCurrentIndex(self.mode.findData(mode))
        self._show_titles()
        self._show_noise()

    def _show_noise(self) -> None:
        """The middle view: ε in closed form (fixed until the seed changes); in chain mode each view replaces it."""
        if self.session.eps is not None and self.session.mode == "closed":
            show_pixels(self.images_items["eps"], to_uint8(self.session.eps))

    def _on_t(self, t: int) -> None:
        for widget in (self.t_slider, self.t_spin):
            with QSignalBlocker(widget):
                widget.setValue(t)

    def _on_notation(self) -> None:
        self._show_titles()
        if (view := self.session.view()) is not None:
            self._show_readout(view)

    def _show_range(self) -> None:
        T = self.state.schedule.timesteps
        for widget in (self.t_slider, self.t_spin):
            with QSignalBlocker(widget):
                widget.setRange(0, T)
                widget.setValue(self.state.t)
        self.t_slider.setPageStep(max(1, T // 10))

    def _show_titles(self) -> None:
        notation = self.state.notation
        self.view_titles["x0"].setText("x<sub>0</sub> (the data)")
        if self.session.mode == "chain":
            a, b = (QUANTITIES[k].name(notation) for k in ("sqrt_alpha_bar", "sqrt_one_minus_alpha_bar"))
            self.view_titles["eps"].setText("noise the chain added")
            self.view_titles["eps"].setToolTip(f"(x<sub>t</sub> − {a} x<sub>0</sub>) / {b}: what the closed form calls ε")
            self.view_titles["xt"].setText("x<sub>t</sub> after t Markov steps")
        else:
            self.view_titles["eps"].setText("ε ~ N(0, I), held fixed")
            self.view_titles["eps"].setToolTip("One draw of ε per seed: x_t changes with t only through √ᾱ_t and √(1 − ᾱ_t)")
            self.view_titles["xt"].setText("x<sub>t</sub> (closed form)")

    # ---- what is on screen --------------------------------------------------------------------

    def _on_shown(self, view: ForwardView) -> None:
        """Paint x_t, the chain's noise, the histogram and the readout; walk on while the chain is short of t."""
        if view.x_t is None:
            show_pixels(self.images_items["xt"], self._renderer.render(view.signal, view.noise))
        else:
            show_pixels(self.images_items["xt"], to_uint8(view.x_t))
            show_pixels(self.images_items["eps"], to_uint8(view.added))
            self.hist_closed.setData(HISTOGRAM_EDGES, view.closed_density)
        self.hist_bars.setData(HISTOGRAM_EDGES, view.density)
        self._show_closed_histogram(view.closed_density is not None)
        self._show_readout(view)
        if self.session.chain_pending:
            self._chain_timer.start()
        else:
            self._chain_timer.stop()

    def _show_closed_histogram(self, shown: bool) -> None:
        """In chain mode the closed form's histogram is drawn over the chain's, to compare the two."""
        if shown == self.hist_closed.isVisible():
            return
        self.hist_closed.setVisible(shown)
        legend = self.histogram.getPlotItem().legend
        if shown:
            legend.addItem(self.hist_closed, "closed form")
        else:
            legend.removeItem(self.hist_closed)

    def _show_readout(self, view: ForwardView) -> None:
        s, notation = self.state.schedule, self.state.notation
        name = {k: QUANTITIES[k].name(notation) for k in QUANTITIES}
        snr_text = "∞ (t = 0 is the data)" if not np.isfinite(view.snr) else f"{view.snr:.4g} = {10 * np.log10(view.snr):.1f} dB"
        lines = [
            f"<b>t = {view.t}</b> of T = {s.timesteps}" + ("" if view.t == self.state.t else f" (walking to {self.state.t}…)"),
            f"{name['sqrt_alpha_bar']} = {view.signal:.4f} &nbsp;<span style='color:#777'>scale of x<sub>0</sub></span>",
            f"{name['sqrt_one_minus_alpha_bar']} = {view.noise:.4f} &nbsp;<span style='color:#777'>scale of ε</span>",
            f"SNR = ᾱ<sub>t</sub>/(1 − ᾱ<sub>t</sub>) = {snr_text}",
            f"<span style='color:#777'>x<sub>t</sub> is drawn clipped to [−1, 1]: {view.outside:.0%} of its values "
            "lie outside (the histogram shows them all)</span>",
        ]
        if view.added_stats is not None:
            mean, std = view.added_stats
            lines.append(
                f"noise the chain added: mean {mean:+.3f}, std {std:.3f} "
                "<span style='color:#777'>(closed form: 0, 1)</span>"
            )
        warning = self.session.schedule_warning()
        if warning:
            lines.append(f"<span style='color:#c0392b'>⚠ {html.escape(warning)}</span>")
        self.readout.setText("<br>".join(lines))

    # ---- saving -------------------------------------------------------------------------------

    def _ask_path(self, title: str, name: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(self.preferences.folder("export")) / name), "PNG image (*.png)")
        if not path:
            return None
        self.preferences.remember_folder("export", path)
        return Path(path) if path.lower().endswith(".png") else Path(path + ".png")

    def ask_save_xt(self) -> None:
        if (image := self.session.image) is not None and (path := self._ask_path("Save x_t", f"{image.name}-t{self.state.t}.png")):
            self.save_xt(path)

    def ask_save_strip(self) -> None:
        if (image := self.session.image) is not None and (path := self._ask_path("Save strip", f"{image.name}-strip.png")):
            self.save_strip(path)

    def save_xt(self, path: Path) -> bool:
        """Save the x_t on screen; False, with a message on ``failed``, if that did not work."""
        return self._save(lambda: self.session.save_xt(path), path, "Save x_t")

    def save_strip(self, path: Path) -> bool:
        """Save the strip at the t values typed; False, with a message on ``failed``, if that did not work."""
        return self._save(lambda: self.session.save_strip(path, strip_times(self.strip_ts.text())), path, "Save strip")

    def _save(self, write: Callable[[], None], path: Path, title: str) -> bool:
        try:
            write()
        except DiffusionStudioError as exc:
            self.failed.emit(title, str(exc))
            return False
        self.status.emit(f"Saved {path}")
        return True

    def export(self) -> None:
        """File ▸ Export… on this panel: save the x_t on screen."""
        self.ask_save_xt()

    def stop(self) -> None:
        """Stop walking the chain (the window is closing)."""
        self._chain_timer.stop()
