"""The main window: panels in tabs, menus, status bar, drag and drop, remembered settings."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QByteArray, QEvent, QMimeData, QObject, QUrl, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDesktopServices, QDragMoveEvent, QDropEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QTabWidget

from diffusion_studio import __version__
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.gui.bound_panel import BoundPanel
from diffusion_studio.gui.forward_panel import ForwardPanel
from diffusion_studio.gui.garbage import ui_thread_collection
from diffusion_studio.gui.inpainting_panel import InpaintingPanel
from diffusion_studio.gui.lab_panel import LabPanel
from diffusion_studio.gui.model_box import ask_model_folder
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.round_trip_panel import RoundTripPanel
from diffusion_studio.gui.sampling_panel import SamplingPanel
from diffusion_studio.gui.schedule_lab import PINS_KEY, ScheduleLab
from diffusion_studio.app.exports import ExportSession
from diffusion_studio.app.models import ModelSession, OpenedModel, model_folder, read_model, split_drop
from diffusion_studio.app.sampling import SamplingSession
from diffusion_studio.app.schedules import SchedulesSession
from diffusion_studio.app.state import NOTATIONS, StudioState
from diffusion_studio.app.training import TrainingSession
from diffusion_studio.gui.symbols import NOTATION_NAMES
from diffusion_studio.gui.tasks import TaskRunner
from diffusion_studio.gui.training_panel import TrainingPanel
from diffusion_studio.gui.guard import guarded

TITLE = "Diffusion Studio"
DRAG_EVENTS = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)


def configure_plots() -> None:
    """pyqtgraph options the views rely on: numpy's row-major images shown upright, smooth curves,
    and titles, axes and labels in dark grey, readable on the white plots."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, foreground=(60, 60, 60))


def dragged_files(mime: QMimeData) -> list[Path]:
    """The local files a drag carries; none unless all it points to are local files."""
    urls = mime.urls()
    return [Path(url.toLocalFile()) for url in urls] if urls and all(url.isLocalFile() for url in urls) else []


def environment_report() -> str:
    """Versions and the compute device found (imports torch; run it off the UI thread)."""
    import PySide6
    import torch

    from diffusion_studio.core.devices import available_devices, device_label

    devices = [device_label(name) for name in available_devices()]
    return (
        f"<b>{TITLE}</b> {__version__}<br>"
        f"Python {platform.python_version()}, torch {torch.__version__}, PySide6 {PySide6.__version__}, "
        f"pyqtgraph {pg.__version__}<br>Devices found: {', '.join(devices)}"
    )


class MainWindow(QMainWindow):
    """Forward process, Schedules, Training, Sampling, Inpainting, Your image and Bound panels over one shared StudioState."""

    def __init__(self, preferences: Preferences | None = None) -> None:
        super().__init__()
        ui_thread_collection.start()  # before any widget: see gui.garbage
        configure_plots()
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self.preferences = preferences or Preferences()
        self.state = StudioState()
        self.models = ModelSession(self.state)
        self.tasks = TaskRunner(self)
        self.error_box: QMessageBox | None = None

        self.forward = ForwardPanel(self.state, self.tasks, self.preferences)
        self.schedules = ScheduleLab(self.state, self.tasks, self.preferences,
                                     SchedulesSession(self.state, self.preferences.value(PINS_KEY, "", str)))
        self.training = TrainingPanel(self.state, self.tasks, self.preferences, TrainingSession())
        self.sampling = SamplingPanel(self.state, self.tasks, self.preferences, SamplingSession(), ExportSession())
        self.inpainting = InpaintingPanel(self.state, self.tasks, self.preferences)
        self.round_trip = RoundTripPanel(self.state, self.tasks, self.preferences)
        self.bound = BoundPanel(self.state, self.tasks, self.preferences)
        self.lab = LabPanel(self.state, self.tasks, self.preferences)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for panel, name, tip in (
            (self.forward, "Forward process", "q(x_t | x_0): watch noise destroy an image"),
            (self.schedules, "Schedules", "β_t, ᾱ_t, SNR … for several schedules side by side"),
            (self.training, "Training", "Train a DDPM U-Net (or an MLP on 2-D points) and watch it learn"),
            (self.sampling, "Sampling", "Run the reverse process from a model; scrub, play and export it"),
            (self.inpainting, "Inpainting", "Paint a mask over an image and let the reverse process fill it in"),
            (self.round_trip, "Your image", "Your image through the model: its guesses beside the truth, SDEdit, inversion"),
            (self.bound, "Bound", "The variational bound in bits/dim, term by term against t"),
            (self.lab, "2-D lab", "A 2-D model's whole reverse process: clouds, drift field, SDE and ODE paths; draw and train"),
        ):
            self.tabs.addTab(panel, name)
            self.tabs.setTabToolTip(self.tabs.count() - 1, tip)
        self.setCentralWidget(self.tabs)

        for panel in self.panels:
            panel.status.connect(self.say)
            panel.failed.connect(self.show_error)
            if panel is not self.training:
                panel.modelRequested.connect(self.open_model)
        self.tabs.currentChanged.connect(self.statusBar().clearMessage)  # a panel's message does not outlive its tab
        self.training.modelRequested.connect(
            lambda folder: self.open_model(folder, then=lambda: self.tabs.setCurrentWidget(self.sampling))
        )
        self.state.notationChanged.connect(self._on_notation)
        self._build_menus()
        self._restore()
        self.forward.load_sample()
        self.say("Ready: drop images or a model folder anywhere on the window")

    @property
    def panels(self) -> list[Panel]:
        """Every panel, in tab order."""
        return [self.tabs.widget(i) for i in range(self.tabs.count())]

    # ---- menus --------------------------------------------------------------------------------

    def _action(self, menu, text: str, slot: Callable, shortcut=None, tip: str = "") -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(shortcut)
        if tip:
            action.setStatusTip(tip)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open images…", self.forward.ask_open, QKeySequence.StandardKey.Open, "Add images to the forward panel")
        self._action(file, "Open &model…", self.ask_open_model, "Ctrl+Shift+O",
                     "Open a checkpoint folder (ours or a diffusers UNet2DModel)")
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file.addSeparator()
        self._action(file, "&Export…", self.export_current, "Ctrl+E", "Save what the current panel shows")
        file.addSeparator()
        self._action(file, "&Quit", self.close, "Ctrl+Q")

        view = bar.addMenu("&View")
        for i in range(self.tabs.count()):
            self._action(view, self.tabs.tabText(i), lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
        view.addSeparator()
        notation = view.addMenu("&Notation")
        group = QActionGroup(self)
        self.notation_actions: dict[str, QAction] = {}
        for key in NOTATIONS:
            action = self._action(notation, NOTATION_NAMES[key], lambda _=False, key=key: self.state.set_notation(key))
            action.setCheckable(True)
            action.setChecked(key == self.state.notation)
            group.addAction(action)
            self.notation_actions[key] = action
        notation.setToolTipsVisible(True)
        self.notation_actions["seed000"].setToolTip("α^S = √α_t, β^S = √β_t, ᾱ^S = √ᾱ_t, β̄^S = √(1 − ᾱ_t)")
        view.addSeparator()
        self._action(view, "&Full screen", self._toggle_full_screen, "F11")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About Diffusion Studio", self.about)
        self._action(help_menu, "&Read me", self._open_readme, tip="Open the project's README")

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for kind, opener in (("images", lambda p: self.open_paths([Path(p)])), ("models", self.open_model)):
            for path in self.preferences.recent(kind):
                self._action(self.recent_menu, f"{Path(path).name}  ({'model' if kind == 'models' else 'image'})",
                             lambda _=False, p=path, o=opener: o(p), tip=path)
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(nothing yet)").setEnabled(False)

    def _toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def _open_readme(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(__file__).resolve().parents[2] / "README.md")))

    def export_current(self) -> None:
        self.tabs.currentWidget().export()

    def about(self) -> None:
        self.say("Looking for torch and devices…")
        self.tasks.start(environment_report, lambda text: QMessageBox.about(self, f"About {TITLE}", text),
                         lambda message: self.show_error("About", message))

    # ---- messages -----------------------------------------------------------------------------

    @Slot(str)
    def say(self, text: str) -> None:
        """Show ``text`` in the status bar on one line (the bar would show only the first of several)."""
        self.statusBar().showMessage(" ".join(text.split()))

    @Slot(str, str)
    def show_error(self, title: str, message: str) -> None:
        """A clear message that does not block: the status bar and a window the user closes.

        ``message`` is a summary, then, where there is more to say (every file that could not be
        read), a blank line and the details: the status bar and the window show the summary, and
        the window keeps the details behind its Show Details… button.
        """
        summary, _, details = message.partition("\n\n")
        self.say(f"{title}: {summary}")
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, title, summary, QMessageBox.StandardButton.Ok, self)
        self.error_box.setDetailedText(details)
        self.error_box.open()

    # ---- opening things -----------------------------------------------------------------------

    def open_paths(self, paths: list[Path]) -> None:
        """Dropped or recent paths: a model folder opens as the model, the rest as images. Some tabs
        take what is dropped on them: one image on Inpainting or Your image, a folder on Bound or
        Training (the images), a checkpoint on Training (to train on)."""
        missing = [p for p in paths if not p.exists()]
        if missing:
            self.show_error("Open", "Not found: " + ", ".join(str(p) for p in missing))
            return
        models, images = split_drop(paths)
        if self.tabs.currentWidget() is self.round_trip and len(images) == 1 and images[0].is_file():
            self.round_trip.open_image(images[0])  # an image dropped on "Your image": through the model
            return
        if self.tabs.currentWidget() is self.bound and len(images) == 1 and images[0].is_dir():
            self.bound.use_folder(images[0])  # a folder dropped on "Bound": the images to measure on
            return
        if self.tabs.currentWidget() is self.training and len(paths) == 1:
            if models:  # a checkpoint dropped on the Training panel: to train on
                self.training.open_checkpoint(models[0])
                return
            if images[0].is_dir():  # a folder: its images are the training data
                self.training.use_folder(images[0])
                return
        if self.tabs.currentWidget() is self.inpainting and len(paths) == 1 and images and images[0].is_file():
            self.inpainting.open_image(images[0])
            return
        for folder in models[:1]:
            self.open_model(folder)
        if images:
            self.tabs.setCurrentWidget(self.forward)
            self.forward.open_paths(images)

    def ask_open_model(self) -> None:
        folder = ask_model_folder(self, self.preferences)
        if folder:
            self.open_model(folder)

    def open_model(self, folder: str | Path, then: Callable[[], None] | None = None) -> None:
        """Load a checkpoint in the background (torch loads there too); the state gets it when ready,
        and ``then`` runs."""
        folder = model_folder(folder)
        self.say(f"Opening model {folder.name}…")

        def loaded(opened: OpenedModel) -> None:
            self.preferences.add_recent("models", opened.folder)
            self.models.on_read(opened)
            if then is not None:
                then()
            self.say(f"Model {opened.description}")  # after ``then``: a tab it switches to clears the status bar

        self.tasks.start(lambda: read_model(folder), loaded, lambda message: self.show_error("Open model", message))

    def _on_notation(self, notation: str) -> None:
        self.notation_actions[notation].setChecked(True)

    # ---- drag and drop ------------------------------------------------------------------------

    @guarded
    def showEvent(self, event: QShowEvent) -> None:
        """Once the window is on screen, its drags pass through ``eventFilter`` (a second install changes nothing)."""
        super().showEvent(event)
        self.windowHandle().installEventFilter(self)

    @guarded(fallback=False)
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Files dragged anywhere on the window are the window's to open, whatever widget is under the cursor.

        File managers send the paths as text too, which a line edit would take and paste as
        file:///…. So file drags are caught on the window's QWindow, where Qt delivers every drag
        before it picks the widget under the cursor. That covers every widget (line edits, those of
        spin and combo boxes, plots), ones made later too, where setAcceptDrops(False) would have to
        reach each; and unlike an application-wide filter, it runs for this window's input events
        only, not for every timer, paint and worker signal in the app.
        """
        if watched is self.windowHandle() and event.type() in DRAG_EVENTS and dragged_files(event.mimeData()):
            (self.dropEvent if event.type() == QEvent.Type.Drop else self.dragEnterEvent)(event)
            return True
        return super().eventFilter(watched, event)

    @guarded
    def dragEnterEvent(self, event: QDragMoveEvent) -> None:
        """Take a drag (entering, or moving over the window) of local files; refuse anything else."""
        if dragged_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    @guarded
    def dropEvent(self, event: QDropEvent) -> None:
        """Open the local files dropped."""
        paths = dragged_files(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_paths(paths)

    # ---- settings and closing -----------------------------------------------------------------

    def _restore(self) -> None:
        geometry = self.preferences.value("window/geometry", QByteArray(), QByteArray)
        if geometry.isEmpty() or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        self.tabs.setCurrentIndex(int(self.preferences.value("window/tab", 0, int)))
        try:
            self.state.set_schedule_config(ScheduleConfig(**json.loads(self.preferences.value("schedule/current", "{}", str))))
        except (ValueError, TypeError, DiffusionStudioError):
            pass  # nothing saved yet, or from a version that wrote it differently: keep the default
        notation = self.preferences.value("view/notation", NOTATIONS[0], str)
        if notation in NOTATIONS:
            self.state.set_notation(notation)

    @guarded
    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop what runs, remember the window, and close. The window goes at once: work that cannot
        stop mid-way (a step, or torch.compile, which may take a minute) is waited for out of sight."""
        for panel in self.panels:
            panel.stop()
        self.training.save_settings()
        self.preferences.set_value("window/geometry", self.saveGeometry())
        self.preferences.set_value("window/tab", self.tabs.currentIndex())
        self.preferences.set_value("view/notation", self.state.notation)
        self.preferences.set_value("schedule/current", json.dumps(asdict(self.state.schedule.config)))
        self.preferences.settings.sync()
        self.hide()
        self.tasks.wait()
        super().closeEvent(event)
