"""Inpainting: paint a mask over an image, and watch the reverse process fill it in.

The panel binds to an InpaintingSession (diffusion_studio.app.inpainting), which holds the image
and mask at the model's size and runs a Job that puts the known pixels back at q(x_s | x_0) after
every step (core.inpainting; Sohl-Dickstein et al. 2015). The mouse paints on the image (the left
button paints, or erases in Erase mode; the right button erases); the run's frames of x_t and x̂_0
are scrubbed with the same timeline as the Sampling panel's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QGraphicsEllipseItem,
    QGraphicsSceneMouseEvent,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.app.inpainting import InpaintingSession
from diffusion_studio.app.sampling import SamplingPreview
from diffusion_studio.app.state import StudioState
from diffusion_studio.core.data.datasets import held_out_digit
from diffusion_studio.core.data.images import load_image, to_uint8
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.export import batch_grid, save_frame
from diffusion_studio.core.inpainting import MASK_RGB, MAX_SIDE, inpainting_strip
from diffusion_studio.core.samplers import sampler_class
from diffusion_studio.gui.columns import settings_column
from diffusion_studio.gui.image_views import ImageViews
from diffusion_studio.gui.imaging import show_pixels
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.model_box import ModelBox
from diffusion_studio.gui.sampler_settings import SamplerSettings
from diffusion_studio.gui.tasks import TaskRunner, WorkerThread
from diffusion_studio.gui.timeline import TimelineBar
from diffusion_studio.gui.guard import guarded

PREVIEW_INTERVAL_S = 0.1
"""At most this often a preview crosses to the UI thread, whatever the step rate."""
DEFAULT_SAMPLES = 4
"""Results a run draws unless told: a few candidates side by side, as the command line draws."""
MAX_SAMPLES = 64
MASK_ALPHA = 150
"""Opacity (of 255) of the painted region over the image: the image stays visible under it."""
TITLES = {"x_t": "x<sub>t</sub>", "pred_x0": "predicted x<sub>0</sub>"}


class MaskItem(pg.ImageItem):
    """The painted mask over the image, in the image's pixel coordinates, taking the mouse: a press
    and every move while pressed report a stroke segment (``brushed``); a brush outline follows
    the pointer."""

    brushed = Signal(object, object, bool)  # start (x, y) or None at the press, centre (x, y), right button

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self.radius = 1.0
        self._last: tuple[float, float] | None = None
        self._right = False
        self.outline = QGraphicsEllipseItem(self)
        self.outline.setPen(QPen(QColor(*MASK_RGB), 0))  # cosmetic: one screen pixel whatever the zoom
        self.outline.hide()
        self.setCursor(Qt.CursorShape.CrossCursor)

    def set_mask(self, mask: np.ndarray) -> None:
        """Show an H×W bool mask: MASK_RGB, half opaque, where True; clear elsewhere."""
        rgba = np.zeros((*mask.shape, 4), np.uint8)
        rgba[mask] = (*MASK_RGB, MASK_ALPHA)
        self.setImage(rgba, autoLevels=False, levels=None)

    def _point(self, event: QGraphicsSceneMouseEvent) -> tuple[float, float]:
        return event.pos().x(), event.pos().y()

    @guarded
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            super().mousePressEvent(event)
            return
        event.accept()  # this item grabs the mouse until release: no pan of the view while painting
        self._right = event.button() == Qt.MouseButton.RightButton
        self._last = self._point(event)
        self.brushed.emit(None, self._last, self._right)

    @guarded
    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._last is None:
            return
        point = self._point(event)
        self.brushed.emit(self._last, point, self._right)
        self._last = point
        self._place_outline(event.pos())

    @guarded
    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self._last = None

    @guarded
    def hoverEvent(self, event) -> None:
        """pyqtgraph's hover: the outline of the brush under the pointer."""
        if event.isExit():
            self.outline.hide()
        else:
            self._place_outline(event.pos())

    def _place_outline(self, centre: QPointF) -> None:
        r = self.radius
        self.outline.setRect(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r))
        self.outline.show()


class InpaintingPanel(Panel):
    """The model and sampler, the image, the brush; the image under its mask, x_t and x̂_0; a timeline."""

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session = InpaintingSession()
        self.runner = WorkerThread(self)
        self.runner.done.connect(self._set_idle)
        self._shown_before = False
        self._build()
        self.session.imageChanged.connect(self._on_image)
        self.session.maskChanged.connect(self._on_mask)
        self.session.previewed.connect(self._on_progress)
        self.session.trajectoryChanged.connect(self._on_trajectory)
        self.session.playheadChanged.connect(self._on_playhead)
        self.session.finished.connect(self.status.emit)
        self.session.failed.connect(lambda message: self.failed.emit("Inpainting", message))
        state.modelChanged.connect(self._on_model)
        self._on_model()
        self._on_mask()

    # ---- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_box = ModelBox(self.state, self.preferences)
        self.settings = SamplerSettings(self.tasks)
        self.settings.run_form["num"].set_maximum(MAX_SAMPLES)
        self.settings.run_form.set_values({"num": DEFAULT_SAMPLES})
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.save_button = QPushButton("Save PNG…")
        self.save_button.setToolTip("The image, the masked image and each result in a row, as diffusion-studio inpaint writes")
        process = QGroupBox("Reverse process")
        form = QFormLayout(process)
        form.addRow(self.model_box)
        form.addRow(self.settings)

        self.image_label = QLabel("No image yet")
        self.image_label.setWordWrap(True)
        self.open_image_button = QPushButton("Open image…")
        self.open_image_button.setToolTip("Any image: resized and centre-cropped to the model's size. Or drop one on this tab")
        self.digit = QSpinBox()
        self.digit.setRange(1, 179)
        self.digit.setToolTip("The handwritten digits held out of the bundled model's training: it never saw these")
        self.radius = QSpinBox()
        self.radius.setRange(1, 64)
        self.radius.setValue(2)
        self.radius.setSuffix(" px")
        self.radius.setToolTip("The brush's radius, in pixels of the model's image")
        self.paint_mode = QRadioButton("Paint")
        self.paint_mode.setToolTip("The left button marks pixels to fill in")
        self.erase_mode = QRadioButton("Erase")
        self.erase_mode.setToolTip("The left button gives pixels back to the image (the right button always erases)")
        self.paint_mode.setChecked(True)
        modes = QButtonGroup(self)
        modes.addButton(self.paint_mode)
        modes.addButton(self.erase_mode)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Nothing to fill")
        self.mask_label = QLabel()
        image_box = QGroupBox("Image and mask")
        image_form = QFormLayout(image_box)
        image_form.addRow(self.image_label)
        image_form.addRow(self.open_image_button)
        image_form.addRow("Held-out digit", self.digit)
        image_form.addRow("Brush", self.radius)
        mode_row = QHBoxLayout()
        for widget in (self.paint_mode, self.erase_mode, self.clear_button):
            mode_row.addWidget(widget)
        image_form.addRow(mode_row)
        image_form.addRow(self.mask_label)
        buttons = QHBoxLayout()  # here, above the sampler's settings: in view on a small screen too
        for button in (self.run_button, self.stop_button):
            buttons.addWidget(button)
        image_form.addRow(buttons)
        image_form.addRow(self.progress)
        image_form.addRow(self.save_button)

        self.left = settings_column((image_box, process))

        self.editor = ImageViews({"image": "x<sub>0</sub> and the mask: paint here"})
        self.image_item = self.editor.items["image"]
        self.mask_item = MaskItem()
        self.editor.boxes[0].addItem(self.mask_item)
        self.views = ImageViews(TITLES)
        self.items = self.views.items
        self.views.titles["x_t"].setToolTip("The sample at t: the known pixels as q(x_t | x_0) puts them, the rest as the model drew them")
        self.views.titles["pred_x0"].setToolTip("The network's estimate of the clean image from x_t, known pixels included")
        self.timeline = TimelineBar(self.session)
        self.timeline.bind_keys(self)
        self.timeline.label.setText("Paint over the image, then Run")
        views = QHBoxLayout()
        views.addWidget(self.editor, 1)
        views.addWidget(self.views, 2)
        right = QVBoxLayout()
        right.addLayout(views, 1)
        right.addWidget(self.timeline)
        layout = QHBoxLayout(self)
        layout.addWidget(self.left)
        layout.addLayout(right, 1)

        self.model_box.modelRequested.connect(self.modelRequested)
        self.settings.failed.connect(self.failed)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self.export)
        self.open_image_button.clicked.connect(self.ask_open_image)
        self.digit.valueChanged.connect(self.show_digit)
        self.radius.valueChanged.connect(self._on_radius)
        self.clear_button.clicked.connect(self.session.clear)
        self.mask_item.brushed.connect(self._on_brushed)
        self._on_radius(self.radius.value())
        self._set_idle()

    # ---- the model, the image and the mask ----------------------------------------------------

    @guarded
    def showEvent(self, event) -> None:
        """Works on first launch: a held-out digit to inpaint (the model comes via ModelBox)."""
        if not self._shown_before:
            self._shown_before = True
            if self.session.image is None:
                self.show_digit(self.digit.value())
        super().showEvent(event)

    def _on_model(self) -> None:
        model = self.state.model
        if model is not None:
            try:
                self.session.set_model(model)
            except SettingError as exc:  # a model of 2-D points: nothing to paint on
                self.model_box.label.setText(f"{self.model_box.label.text()}<br>{exc.reason}")
            else:
                self.settings.set_model(model)
        self._set_idle()

    def show_digit(self, number: int) -> None:
        """The number-th held-out digit (1…179), which the bundled model was not trained on."""
        self.session.set_image(held_out_digit(number).transpose(1, 2, 0), f"held-out digit {number}")

    def ask_open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image to inpaint", self.preferences.folder("images"),
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)")
        if path:
            self.preferences.remember_folder("images", Path(path).parent)
            self.open_image(Path(path))

    def open_image(self, path: Path) -> None:
        """Read an image in the background; the session gets it (fitted to the model) if it can be read."""
        self.status.emit(f"Opening {path.name}…")

        def opened(image: np.ndarray) -> None:
            self.preferences.add_recent("images", path)
            self.session.set_image(image, path.name)
            self.status.emit(f"Inpainting {path.name}")

        self.tasks.start(lambda: load_image(path, max_side=MAX_SIDE), opened, lambda message: self.failed.emit("Open image", message))

    def _on_image(self) -> None:
        image = self.session.image
        if image is None:
            return
        show_pixels(self.image_item, to_uint8(image))
        self.mask_item.set_mask(self.session.mask)
        self.editor.fit()
        height, width = image.shape[:2]
        self.image_label.setText(f"<b>{self.session.name}</b> at the model's {width}×{height}")
        self._set_idle()

    def _on_mask(self) -> None:
        mask = self.session.mask
        self.mask_item.set_mask(mask)
        self.mask_label.setText(f"{np.count_nonzero(mask)} of {mask.size} pixels to fill")
        self._set_idle()

    def _on_radius(self, radius: int) -> None:
        self.mask_item.radius = float(radius)

    def _on_brushed(self, start: tuple[float, float] | None, centre: tuple[float, float], right_button: bool) -> None:
        brush = self.session.erase if right_button or self.erase_mode.isChecked() else self.session.paint
        brush(centre, float(self.radius.value()), start)

    # ---- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.runner.running

    def run(self) -> None:
        model = self.state.model
        if model is None or self.running:
            return
        try:
            config = self.settings.config()
            job = self.session.start(model, config, self.settings.device.device())
        except DiffusionStudioError as exc:
            self.failed.emit("Inpainting", str(exc))
            return
        self.progress.setRange(0, config.steps or model.schedule_config.timesteps)
        self.progress.setValue(0)
        self.status.emit(f"Inpainting {np.count_nonzero(self.session.mask)} pixels, {config.num} candidates, "
                         f"with {sampler_class(config.sampler).label}…")
        self.runner.start(job, PREVIEW_INTERVAL_S, self.session.on_update, self.session.on_finished, self.session.on_failed)
        self._set_idle()

    def cancel(self) -> None:
        if self.running:
            self.session.cancel()
            self.status.emit("Stopping…")

    def stop(self) -> None:
        """Stop and wait for the worker (the window is closing)."""
        self.session.stop_playing()
        self.runner.stop_and_wait()

    def _set_idle(self) -> None:
        running, model = self.running, self.state.model
        ready = model is not None and model.is_image and self.session.image is not None and bool(self.session.mask.any())
        self.run_button.setEnabled(not running and ready)
        self.stop_button.setEnabled(running)
        self.save_button.setEnabled(not running and self.session.final is not None)
        self.timeline.set_enabled(not running and self.session.trajectory is not None)

    def _on_progress(self, preview: SamplingPreview) -> None:
        self.progress.setMaximum(preview.total)
        self.progress.setValue(preview.index)
        self._show(preview.x_t, preview.pred_x0)
        self.timeline.label.setText(f"inpainting step {preview.index}/{preview.total}, t = {preview.t}")

    # ---- the trajectory -----------------------------------------------------------------------

    def _on_trajectory(self) -> None:
        self.timeline.set_stops()
        self.views.fit()
        self._set_idle()

    def _on_playhead(self, t: int) -> None:
        trajectory = self.session.trajectory
        if trajectory is None:
            return
        k = self.session.frame()
        self._show(trajectory.x_t[k], trajectory.pred_x0[k])
        shown = int(trajectory.timesteps[k])
        self.timeline.label.setText(f"frame {k + 1} of {len(trajectory)}: " + ("x₀, the results" if shown == 0 else f"t = {shown}"))

    def _show(self, x_t: np.ndarray, pred_x0: np.ndarray) -> None:
        for key, batch in (("x_t", x_t), ("pred_x0", pred_x0)):
            show_pixels(self.items[key], batch_grid(batch))

    def shown_frame(self, key: str = "x_t") -> np.ndarray:
        """What a view shows now: an image grid, or the painted mask as RGBA ("mask")."""
        return np.asarray((self.mask_item if key == "mask" else self.items[key]).image)

    # ---- files --------------------------------------------------------------------------------

    def export(self) -> None:
        """File ▸ Export… on this panel: the image, the masked image and the results as one PNG."""
        if self.session.final is None:
            self.status.emit("Nothing to save yet: run the inpainting first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the inpainting", str(Path(self.preferences.folder("export")) / "inpainting.png"),
                                              "PNG (*.png)")
        if path:
            self.preferences.remember_folder("export", path)
            self.save_result(Path(path))

    def save_result(self, path: Path) -> bool:
        request = self.session.request
        try:
            save_frame(inpainting_strip(request.image, request.mask, self.session.final), path, self.session.output_metadata())
        except DiffusionStudioError as exc:
            self.failed.emit("Save the inpainting", str(exc))
            return False
        self.status.emit(f"Saved {path}")
        return True
