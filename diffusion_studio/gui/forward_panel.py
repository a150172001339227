"""Forward process: x_0, ε and x_t side by side; a t slider; the closed form or the Markov chain.

Closed form (Ho et al. eq. 4): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with one ε held fixed, so moving t
changes only t. Step by step (eq. 2): x_t = √α_t x_{t−1} + √β_t ε_t, fresh noise every step,
which lands in the same distribution.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, QSize, Qt, QTimer, Signal
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

from diffusion_studio.core.chain import ForwardChain
from diffusion_studio.core.data.images import LoadedImages, load_image, load_images, save_image, to_uint8
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.export import forward_strip
from diffusion_studio.core.process import q_sample
from diffusion_studio.gui.image_row import ImageRow
from diffusion_studio.gui.imaging import ClosedFormRenderer, show_pixels, thumbnail_icon
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.schedule_form import ScheduleForm
from diffusion_studio.app.state import StudioState
from diffusion_studio.gui.symbols import QUANTITIES
from diffusion_studio.gui.tasks import TaskRunner
from diffusion_studio.resources import SAMPLE_IMAGE

MAX_SIDE = 512
"""Images are shown at most this many pixels on a side (shrunk on loading, aspect kept)."""
HISTOGRAM_PIXELS = 65_536
"""The histogram of x_t uses this many pixels, picked once at random (enough for a smooth curve)."""
HISTOGRAM_EDGES = np.linspace(-4.0, 4.0, 81)
_BIN_WIDTH = HISTOGRAM_EDGES[1] - HISTOGRAM_EDGES[0]
CHAIN_BUDGET_S = 0.015
"""Step-by-step mode walks the chain at most this long per event-loop turn, so the UI stays live."""
MODES = ("closed", "chain")


@dataclass
class ForwardImage:
    name: str
    x0: np.ndarray  # H×W×C float32 in [−1, 1]


def _normal_density(x: np.ndarray) -> np.ndarray:
    """N(0, 1) density: exp(−x²/2)/√(2π)."""
    return np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


class ForwardPanel(QWidget):
    """Watch q(x_t | x_0) destroy an image, t by t."""

    status = Signal(str)  # what just happened, for the status bar
    failed = Signal(str, str)  # title, message: something the user asked for did not work

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.tasks = tasks
        self.preferences = preferences
        self.images: list[ForwardImage] = []
        self._x0: np.ndarray | None = None
        self._eps: np.ndarray | None = None
        self._renderer: ClosedFormRenderer | None = None
        self._chain: ForwardChain | None = None
        self._picked: np.ndarray | None = None  # pixel indices for the histogram
        self._x0_picked = self._eps_picked = np.zeros(0, np.float32)  # x_0 and ε at those pixels
        self._chain_timer = QTimer(self)
        self._chain_timer.setInterval(0)
        self._chain_timer.timeout.connect(self._on_chain_tick)
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

        self.views = ImageRow({"x0": "", "eps": "", "xt": ""})
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
        self.histogram.plot(grid, _normal_density(grid), pen=pg.mkPen("k", width=2, style=Qt.PenStyle.DashLine), name="N(0, 1)")
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
        self.thumbnails.currentRowChanged.connect(self._on_image_picked)
        self.open_button.clicked.connect(self.ask_open)
        self.remove_button.clicked.connect(self.remove_current)
        self.t_slider.valueChanged.connect(self.state.set_t)
        self.t_spin.valueChanged.connect(self.state.set_t)
        self.seed.valueChanged.connect(self._on_seed)
        self.new_noise.clicked.connect(lambda: self.seed.setValue(self.seed.value() + 1))
        self.mode.currentIndexChanged.connect(self._on_mode)
        self.save_xt_button.clicked.connect(self.ask_save_xt)
        self.save_strip_button.clicked.connect(self.ask_save_strip)
        self.state.tChanged.connect(self._on_t)
        self.state.scheduleChanged.connect(self._on_schedule)
        self.state.notationChanged.connect(self._on_notation)

    # ---- images -------------------------------------------------------------------------------

    def load_sample(self) -> None:
        """Show the bundled sample image (first launch, or nothing else loaded)."""
        try:
            self.add_images([ForwardImage(SAMPLE_IMAGE.stem, load_image(SAMPLE_IMAGE, max_side=MAX_SIDE))])
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
            self.add_images([ForwardImage(path.name, array) for path, array in loaded.images])
            for path, _ in loaded.images:
                self.preferences.add_recent("images", path)
        if loaded.failed:
            listed = "\n".join(f"• {path.name}: {reason}" for path, reason in loaded.failed[:12])
            more = f"\n… and {len(loaded.failed) - 12} more" if len(loaded.failed) > 12 else ""
            kept = f"{len(loaded.images)} image(s) opened; " if loaded.images else "Nothing was opened; "
            self.failed.emit("Open images", f"{kept}{len(loaded.failed)} could not be read:\n{listed}{more}")
        elif not loaded.images:
            self.failed.emit("Open images", "There were no image files there.")
        else:
            shape = loaded.images[-1][1].shape
            self.status.emit(f"Opened {len(loaded.images)} image(s); showing {loaded.images[-1][0].name} at {shape[1]}×{shape[0]}")

    def add_images(self, images: list[ForwardImage]) -> None:
        """Append to the strip and show the last one added."""
        for image in images:
            self.images.append(image)
            item = QListWidgetItem(thumbnail_icon(image.x0), image.name)
            item.setToolTip(f"{image.name}: {image.x0.shape[1]}×{image.x0.shape[0]}, {'RGB' if image.x0.shape[2] == 3 else 'gray'}")
            self.thumbnails.addItem(item)
        self.thumbnails.setCurrentRow(len(self.images) - 1)

    def remove_current(self) -> None:
        row = self.thumbnails.currentRow()
        if row < 0 or len(self.images) <= 1:
            self.status.emit("The last image stays: open another before removing it")
            return
        del self.images[row]
        self.thumbnails.takeItem(row)

    def _on_image_picked(self, row: int) -> None:
        if not 0 <= row < len(self.images):
            return
        self._x0 = self.images[row].x0
        show_pixels(self.images_items["x0"], to_uint8(self._x0))
        rng = np.random.default_rng(0)
        size = self._x0.size
        self._picked = rng.choice(size, HISTOGRAM_PIXELS, replace=False) if size > HISTOGRAM_PIXELS else None
        self._new_noise()
        self.views.fit()

    # ---- noise, t, schedule, mode -------------------------------------------------------------

    def _on_seed(self) -> None:
        if self._x0 is not None:
            self._new_noise()

    def _new_noise(self) -> None:
        self._eps = np.random.default_rng(self.seed.value()).standard_normal(self._x0.shape, dtype=np.float32)
        self._renderer = ClosedFormRenderer(self._x0, self._eps)
        self._x0_picked, self._eps_picked = self._pick(self._x0), self._pick(self._eps)
        self._chain = None
        self._show_noise()
        self._show()

    def _on_mode(self) -> None:
        self._chain = None
        self._show_titles()
        self._show_noise()
        self._show()

    def _show_noise(self) -> None:
        """The middle view: ε in closed form (fixed until the seed changes); the chain's view replaces it per step."""
        if self._eps is not None and not self.chain_mode:
            show_pixels(self.images_items["eps"], to_uint8(self._eps))

    @property
    def chain_mode(self) -> bool:
        return self.mode.currentData() == "chain"

    def _on_t(self, t: int) -> None:
        for widget in (self.t_slider, self.t_spin):
            with QSignalBlocker(widget):
                widget.setValue(t)
        self._show()

    def _on_schedule(self) -> None:
        self._chain = None
        self._show_range()
        self._show()

    def _on_notation(self) -> None:
        self._show_titles()
        self._show()

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
        if self.chain_mode:
            a, b = (QUANTITIES[k].name(notation) for k in ("sqrt_alpha_bar", "sqrt_one_minus_alpha_bar"))
            self.view_titles["eps"].setText(f"noise the chain added: (x<sub>t</sub> − {a} x<sub>0</sub>) / {b}")
            self.view_titles["xt"].setText("x<sub>t</sub> after t Markov steps")
        else:
            self.view_titles["eps"].setText("ε ~ N(0, I), held fixed")
            self.view_titles["xt"].setText("x<sub>t</sub> (closed form)")

    # ---- what is on screen --------------------------------------------------------------------

    def x_t(self) -> np.ndarray | None:
        """The x_t on screen as floats: the closed form, or the chain's state once it has reached t."""
        if self._x0 is None:
            return None
        if self.chain_mode:
            return self._chain.x.copy() if self._chain is not None and self._chain.t == self.state.t else None
        return q_sample(self.state.schedule, self._x0, self.state.t, self._eps)

    def _coefficients(self, t: int) -> tuple[float, float]:
        s = self.state.schedule
        return float(s.sqrt_alpha_bars[t]), float(s.sqrt_one_minus_alpha_bars[t])

    def _show(self) -> None:
        if self._renderer is None:
            return
        t = self.state.t
        if self.chain_mode:
            self._chain_timer.start()
            self._on_chain_tick()
            return
        self._chain_timer.stop()
        a, b = self._coefficients(t)
        show_pixels(self.images_items["xt"], self._renderer.render(a, b))
        self.hist_bars.setData(HISTOGRAM_EDGES, self._histogram(a * self._x0_picked + b * self._eps_picked))
        self._show_closed_histogram(False)
        self._show_readout(t)

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

    def _pick(self, array: np.ndarray) -> np.ndarray:
        flat = array.reshape(-1)
        return flat if self._picked is None else flat[self._picked]

    @staticmethod
    def _histogram(values: np.ndarray) -> np.ndarray:
        """Density per bin of HISTOGRAM_EDGES: count / (all values × bin width), so the bars
        integrate to the share of values inside [−4, 4], comparable with the N(0, 1) curve."""
        bins = np.floor((values - HISTOGRAM_EDGES[0]) / _BIN_WIDTH).astype(np.intp)
        bins = bins[(bins >= 0) & (bins < HISTOGRAM_EDGES.size - 1)]
        return np.bincount(bins, minlength=HISTOGRAM_EDGES.size - 1) / (values.size * _BIN_WIDTH)

    def _on_chain_tick(self) -> None:
        """Walk the chain towards t for up to CHAIN_BUDGET_S, then show where it is."""
        if self._renderer is None:
            self._chain_timer.stop()
            return
        if self._chain is None:
            self._chain = ForwardChain(self.state.schedule, self._x0, self.seed.value())
        target = self.state.t
        deadline = time.perf_counter() + CHAIN_BUDGET_S
        while not self._chain.advance(target, max_steps=1) and time.perf_counter() < deadline:
            pass
        chain = self._chain
        a, b = self._coefficients(chain.t)
        effective = (chain.x - a * self._x0) / b if b > 0 else np.zeros_like(self._x0)
        show_pixels(self.images_items["xt"], to_uint8(chain.x))
        show_pixels(self.images_items["eps"], to_uint8(effective))
        self.hist_bars.setData(HISTOGRAM_EDGES, self._histogram(self._pick(chain.x)))
        self.hist_closed.setData(HISTOGRAM_EDGES, self._histogram(a * self._x0_picked + b * self._eps_picked))
        self._show_closed_histogram(True)
        self._show_readout(chain.t, effective if b > 0 else None)
        if chain.t == target:
            self._chain_timer.stop()

    def _show_readout(self, t: int, chain_noise: np.ndarray | None = None) -> None:
        s, notation = self.state.schedule, self.state.notation
        a, b = self._coefficients(t)
        name = {k: QUANTITIES[k].name(notation) for k in QUANTITIES}
        snr = s.snr[t]
        snr_text = "∞ (t = 0 is the data)" if not np.isfinite(snr) else f"{snr:.4g} = {10 * np.log10(snr):.1f} dB"
        lines = [
            f"<b>t = {t}</b> of T = {s.timesteps}" + ("" if t == self.state.t else f" (walking to {self.state.t}…)"),
            f"{name['sqrt_alpha_bar']} = {a:.4f} &nbsp;<span style='color:#777'>scale of x<sub>0</sub></span>",
            f"{name['sqrt_one_minus_alpha_bar']} = {b:.4f} &nbsp;<span style='color:#777'>scale of ε</span>",
            f"SNR = ᾱ<sub>t</sub>/(1 − ᾱ<sub>t</sub>) = {snr_text}",
        ]
        if chain_noise is not None:
            lines.append(
                f"noise the chain added: mean {chain_noise.mean():+.3f}, std {chain_noise.std():.3f} "
                "<span style='color:#777'>(closed form: 0, 1)</span>"
            )
        self.readout.setText("<br>".join(lines))

    # ---- saving -------------------------------------------------------------------------------

    def _ask_path(self, title: str, name: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(self.preferences.folder("export")) / name), "PNG image (*.png)")
        if not path:
            return None
        self.preferences.remember_folder("export", path)
        return Path(path) if path.lower().endswith(".png") else Path(path + ".png")

    def ask_save_xt(self) -> None:
        if self.images and (path := self._ask_path("Save x_t", f"{self.images[self.thumbnails.currentRow()].name}-t{self.state.t}.png")):
            self.save_xt(path)

    def ask_save_strip(self) -> None:
        if self.images and (path := self._ask_path("Save strip", f"{self.images[self.thumbnails.currentRow()].name}-strip.png")):
            self.save_strip(path)

    def save_xt(self, path: Path) -> bool:
        x = self.x_t()
        if x is None:
            self.failed.emit("Save x_t", "The chain has not reached t yet; save again in a moment.")
            return False
        return self._save(lambda: save_image(x, path), path, "Save x_t")

    def strip_times(self) -> list[int]:
        """The t values typed for the strip (SettingError if they are not whole numbers in 0…T)."""
        try:
            return [int(part) for part in self.strip_ts.text().replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise SettingError("t", f"expected whole numbers separated by commas, got '{self.strip_ts.text()}'") from None

    def save_strip(self, path: Path) -> bool:
        def write() -> None:
            save_image(forward_strip(self.state.schedule, self._x0, self._eps, self.strip_times()), path)

        return self._save(write, path, "Save strip")

    def _save(self, write, path: Path, title: str) -> bool:
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
