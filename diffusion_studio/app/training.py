"""The Training panel without widgets: what to train, the run's state, the loss history, the
checkpoint that Continue trains, and the Job that trains (Ho et al. Algorithm 1 on L_simple).

What the form holds is a TrainingSettings: kept between launches as JSON, filled from a
checkpoint that is opened, and turned into the TrainingRequest of a new run.

Every report's loss reaches the session, batched into throttled updates, so the loss history
holds them all however fast the steps are. Each report's loss by t is kept too, thinned evenly to
at most LOSS_BY_T_ROWS reports however long the run.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from diffusion_studio.app.jobs import Job, ShouldStop
from diffusion_studio.app.state import StudioState
from diffusion_studio.core.atomic import atomic_write, claim_folder
from diffusion_studio.core.control import RunControl
from diffusion_studio.core.data.datasets import TOY_SETS
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.models.presets import PRESETS, NetworkSize, model_config_for, size_of
from diffusion_studio.core.recipes import IMAGE_RECIPE, IMAGES, Recipe, recipe_for, schedule_warning
from diffusion_studio.core.sample_config import default_num
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.settings import check_settings
from diffusion_studio.core.train_config import TrainConfig

if TYPE_CHECKING:
    from diffusion_studio.core.checkpoint import Checkpoint

SMOOTHING = 0.02
"""The smoothed curve averages over this fraction of the run's reports on each side."""
STATES = ("idle", "running", "paused", "stopping")
FOLDER = "folder"
"""The data choice that stands for an image folder (any folder has the image recipe)."""
LOSS_BY_T_ROWS = 400
"""The loss-by-t history keeps at most this many reports, evenly spaced over the run."""
DATA_CHOICES = {
    "digits": "Digits (bundled: 1,797 handwritten digits)",
    "swiss_roll": "Swiss roll (2-D points)",
    "two_moons": "Two moons (2-D points)",
    "eight_gaussians": "Eight Gaussians (2-D points)",
    "checkerboard": "Checkerboard (2-D points)",
    FOLDER: "Image folder…",
}
"""The data a run can train on, and how the form names it."""
COLOURS = (0, 1, 3)
"""The channels an image folder's run can train with: 0 as the images, 1 gray, 3 RGB."""


def default_runs_folder() -> Path:
    """Where runs go until the user picks another folder."""
    return Path.home() / "Diffusion Studio" / "runs"


@dataclass(frozen=True)
class TrainingSettings:
    """Everything the Training form holds: what a new run trains, and how the form shows it."""

    training: TrainConfig = field(default_factory=TrainConfig)  # its data is a DATA_CHOICES key's set, or the folder
    data: str = "digits"  # a DATA_CHOICES key
    folder: str = ""  # the image folder, for FOLDER
    image_size: int = 16  # image data is resized and cropped to this square
    channels: int = 0  # one of COLOURS
    size: NetworkSize = field(default_factory=NetworkSize)
    advanced: bool = False  # the form shows every network and tuning setting
    preview_every: int = 200  # steps between EMA previews; 0: none
    save_every: int = 500  # steps between checkpoints
    runs_folder: str = ""  # each new run saves into a new folder here; "": default_runs_folder()

    @property
    def runs(self) -> Path:
        """The folder new runs go into."""
        return Path(self.runs_folder.strip() or default_runs_folder())

    def to_json(self) -> str:
        """These settings as JSON, for ``restore_settings`` at the next launch."""
        return json.dumps(asdict(self))

    def sample_shape(self) -> tuple[int, ...]:
        """What one training sample will look like, as far as the settings tell before the data
        loads: (2,) for a 2-D set, (C, S, S) for images (digits are gray; a folder RGB unless gray is asked for)."""
        if self.data in TOY_SETS:
            return (2,)
        channels = 1 if self.data == "digits" else (self.channels or 3)
        return (channels, self.image_size, self.image_size)

    def request(self, schedule: ScheduleConfig) -> TrainingRequest:
        """A new run of these settings with ``schedule``, saved into a new folder under the runs
        folder named after the data and the time (SettingError if no image folder is chosen)."""
        if not self.training.data:
            raise SettingError("data", "choose a folder of images first")
        name = Path(self.training.data).name if self.data == FOLDER else self.training.data
        return TrainingRequest(self.runs / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", self.training, schedule, self.size,
                               self.image_size, self.channels or None, save_every=self.save_every,
                               preview_every=self.preview_every)

    def from_checkpoint(self, checkpoint: Checkpoint) -> TrainingSettings:
        """These settings with a checkpoint's data, network and training settings, for the form to
        show what Continue trains: at least one step more than it holds, on the device these ask
        for; how often to preview and save, and where new runs go, stay."""
        config, model = checkpoint.train_config, checkpoint.model_config
        named = config.data in DATA_CHOICES
        return replace(
            self,
            training=replace(config, steps=max(config.steps, checkpoint.step + 1), device=self.training.device),
            data=config.data if named else FOLDER,
            folder="" if named else config.data,
            image_size=getattr(model, "image_size", self.image_size),
            channels=getattr(model, "in_channels", 0),
            size=size_of(model),
        )


FIRST_SETTINGS = TrainingSettings(training=TrainConfig(**IMAGE_RECIPE.settings()))
"""On first launch: the image recipe (the bundled model's) on the digits, about 17 minutes on a 2-core CPU."""


def restore_settings(saved: str) -> TrainingSettings:
    """The settings ``TrainingSettings.to_json`` wrote, the defaults for anything missing; the
    first launch's if nothing was saved, or if what was cannot be read (by hand or by another
    version): not JSON, values of the wrong kind, or settings the engine refuses."""
    try:
        stored = json.loads(saved) if saved else {}
        if not stored or not isinstance(stored, dict):
            return FIRST_SETTINGS
        known = {f.name for f in fields(TrainConfig)}
        try:
            training = TrainConfig(**{k: v for k, v in stored.get("training", {}).items() if k in known})
        except TypeError:
            training = TrainConfig()
        try:
            size = NetworkSize(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.get("size", {}).items()})
        except TypeError:
            size = NetworkSize()
        check_settings(replace(training, device="auto"))  # the device is checked against this machine's
        check_settings(size)
        data, channels = stored.get("data", "digits"), stored.get("channels", 0)
        return TrainingSettings(
            training=training,
            data=data if data in DATA_CHOICES else "digits",
            folder=str(stored.get("folder", "")),
            image_size=int(stored.get("image_size", 16)),
            channels=channels if channels in COLOURS else 0,
            size=size,
            advanced=bool(stored.get("advanced", False)),
            preview_every=int(stored.get("preview_every", 200)),
            save_every=int(stored.get("save_every", 500)),
            runs_folder=str(stored.get("runs_folder") or ""),
        )
    except (TypeError, ValueError, AttributeError):
        return FIRST_SETTINGS


def preset_parameters(shape: tuple[int, ...]) -> dict[str, int | None]:
    """Each preset's trainable parameters for samples of ``shape`` (None: it cannot be built for
    them); this loads torch."""
    counts: dict[str, int | None] = {}
    for name, size in PRESETS.items():
        try:
            counts[name] = network_parameters(size, shape)
        except DiffusionStudioError:
            counts[name] = None
    return counts


def network_parameters(size: NetworkSize, shape: tuple[int, ...]) -> int:
    """The trainable parameters of the network ``size`` builds for samples of ``shape``
    (DiffusionStudioError, saying why, if it cannot be built); this loads torch."""
    from diffusion_studio.core.models import parameter_count

    return parameter_count(model_config_for(size, shape))


@dataclass(frozen=True)
class TrainingRequest:
    """What to train and where to save it."""

    output: Path  # the checkpoint folder, written every save_every steps and at the end
    config: TrainConfig
    schedule: ScheduleConfig
    size: NetworkSize
    image_size: int = 16  # image data is resized and cropped to this square
    channels: int | None = None  # 1 or 3; None: as the data
    resume: bool = False  # continue the checkpoint at output: its model, data and settings, with config.steps and .device
    save_every: int = 500
    preview_every: int = 200  # 0: no previews


@dataclass(frozen=True)
class RunInfo:
    """Sent once, when the data is loaded and the network built."""

    description: str  # network, parameters, data and device in words
    start_step: int
    total_steps: int
    timesteps: int  # T of the run's schedule
    batch_size: int
    reference: np.ndarray | None  # a 2-D set's points, drawn behind the preview cloud
    skipped: tuple[tuple[str, str], ...] = field(default=())  # unreadable files left out of an image folder
    compiled: bool = False  # the step is compiled: the first one waits for torch.compile


@dataclass(frozen=True)
class TrainingUpdate:
    """The reports since the last update, digested on the worker thread."""

    info: RunInfo | None  # on the first update of a run
    steps: np.ndarray  # the step of every report since the last update …
    losses: np.ndarray  # … and its mean loss
    step: int  # the last step reached (0 before the first report)
    total_steps: int
    loss_by_t: np.ndarray  # … and its running mean loss for LOSS_BUCKETS equal ranges of t: one row per report
    learning_rate: float
    images_per_second: float  # since the run started, pauses left out
    eta_seconds: float
    preview: np.ndarray | None  # the newest EMA preview: an H×W×C uint8 grid or N×2 points
    preview_step: int  # the step it was drawn at
    saved: tuple[tuple[Path, int], ...]  # checkpoints written: (folder, step)


def smooth(losses: np.ndarray, fraction: float = SMOOTHING) -> np.ndarray:
    """A centred moving average of log L over k = max(1, fraction·n) reports on each side: a
    geometric mean, which follows the middle of the noise on a log axis. Near the start the
    window narrows to stay centred (the first point is the first loss, not an average over the
    fall); at the live end it takes what there is."""
    n = len(losses)
    k = max(1, int(fraction * n))
    sums = np.concatenate([[0.0], np.cumsum(np.log(losses))])
    i = np.arange(n)
    low, high = np.maximum(i - k, 0), np.minimum(i + np.minimum(k, i) + 1, n)
    return np.exp((sums[high] - sums[low]) / (high - low))


class ThinnedRows:
    """Rows of a stream of reports, kept evenly spaced and at most ``limit`` of them: every
    ``stride``-th report is kept; when the rows pass the limit, every other one is dropped and the
    stride doubles. The kept reports are those whose index in the stream is a multiple of the
    stride, so they stay evenly spaced however long the stream."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("keep at least one row")  # halving would never bring the rows under it
        self.limit = limit
        self.clear()

    def clear(self) -> None:
        self.steps = np.zeros(0, dtype=np.int64)  # the step of each kept report …
        self.rows = np.zeros((0, 0))  # … and its row
        self.stride = 1
        self.seen = 0  # reports offered since the last clear

    def extend(self, steps: np.ndarray, rows: np.ndarray) -> None:
        """Offer the next reports: their steps and one row each."""
        kept = (self.seen + np.arange(len(steps))) % self.stride == 0
        self.seen += len(steps)
        self.steps = np.concatenate([self.steps, steps[kept]])
        self.rows = np.concatenate([self.rows, rows[kept]]) if len(self.rows) else rows[kept]
        while len(self.steps) > self.limit:
            self.steps, self.rows = self.steps[::2], self.rows[::2]
            self.stride *= 2


def _training_items(request: TrainingRequest, should_stop: ShouldStop):
    """The job's generator: _run_items; a new run's folder (claimed empty by start) is removed
    again if the run ends with nothing written into it."""
    try:
        return (yield from _run_items(request, should_stop))
    finally:
        if not request.resume:
            with contextlib.suppress(OSError):
                request.output.rmdir()  # fails, as wanted, on a folder that holds anything


def _run_items(request: TrainingRequest, should_stop: ShouldStop):
    """Build the run, say what it is, then train with checkpoints."""
    from diffusion_studio.core.export import reference_points
    from diffusion_studio.core.runs import continue_run, new_run, run_training

    if request.resume:
        trainer = continue_run(request.output, request.config.steps, request.config.device, compile=request.config.compile)
    else:
        trainer = new_run(request.config, request.schedule, request.size, request.image_size, request.channels)
    dataset = trainer.dataset
    yield RunInfo(
        description=f"{type(trainer.model).__name__}, {trainer.parameters / 1e6:.2f}M parameters, on "
                    f"{Path(dataset.name).name} ({len(dataset.data):,} {'images' if dataset.is_image else 'points'}), "
                    f"{trainer.device.type.upper()}" + (", compiled" if trainer.compiled else ""),
        compiled=trainer.compiled,
        start_step=trainer.step,
        total_steps=trainer.config.steps,
        timesteps=trainer.schedule.timesteps,
        batch_size=trainer.config.batch_size,
        reference=None if dataset.is_image else reference_points(dataset.data),
        skipped=dataset.skipped,
    )
    yield from run_training(trainer, request.output, request.save_every, should_stop=should_stop,
                            preview_every=request.preview_every,
                            preview_count=default_num(dataset.is_image))
    return trainer.step


def _recipe(data: str) -> Recipe:
    """The recipe of a data choice: FOLDER has the image recipe, anything else core.recipes.recipe_for's."""
    return recipe_for(IMAGES if data == FOLDER else data)


class _Digest:
    """Turns a batch of RunInfo, TrainProgress and Saved items into one TrainingUpdate (worker thread).
    Keeps the run's start, so images/s is over the whole run, pauses left out."""

    def __init__(self, control: RunControl) -> None:
        self.control = control
        self.started = time.monotonic()
        self.first_step = self.total_steps = self.batch_size = 0

    def __call__(self, items: list) -> TrainingUpdate:
        from diffusion_studio.core.data.images import to_uint8
        from diffusion_studio.core.export import batch_grid
        from diffusion_studio.core.runs import Saved

        info = next((item for item in items if isinstance(item, RunInfo)), None)
        if info is not None:
            self.started, self.first_step, self.total_steps = time.monotonic(), info.start_step, info.total_steps
            self.batch_size = info.batch_size
        reports = [item for item in items if not isinstance(item, (RunInfo, Saved))]
        last = reports[-1] if reports else None
        step = last.step if last is not None else self.first_step
        rate = (step - self.first_step) / max(time.monotonic() - self.started - self.control.paused_seconds, 1e-9)
        shown = next((r for r in reversed(reports) if r.preview is not None), None)
        preview = None
        if shown is not None:
            images = shown.preview.ndim == 4
            preview = batch_grid(to_uint8(shown.preview.transpose(0, 2, 3, 1))) if images else shown.preview
        return TrainingUpdate(
            info=info,
            steps=np.array([r.step for r in reports], dtype=np.int64),
            losses=np.array([r.loss for r in reports]),
            step=step,
            total_steps=self.total_steps,
            loss_by_t=np.stack([r.loss_by_t for r in reports]) if reports else np.zeros((0, 0)),
            learning_rate=last.learning_rate if last is not None else 0.0,
            images_per_second=rate * self.batch_size,
            eta_seconds=(self.total_steps - step) / max(rate, 1e-9),
            preview=preview,
            preview_step=shown.step if shown is not None else 0,
            saved=tuple((item.folder, item.step) for item in items if isinstance(item, Saved)),
        )


class TrainingSession:
    """One run at a time: idle → running ⇄ paused → stopping → idle. The loss history of the run
    on screen (the loss of every report, and the loss by t of at most ``loss_by_t_rows`` of them)
    goes on when Continue trains that same run; any other run starts it afresh."""

    stateChanged = Signal(str)  # one of STATES
    started = Signal(object)  # RunInfo: the data is loaded and the network built
    progressed = Signal(object)  # TrainingUpdate, once the history holds it
    saved = Signal(str, int)  # checkpoint folder, step
    finished = Signal(int, bool)  # the last step, whether the user stopped it
    failed = Signal(str)

    def __init__(self, loss_by_t_rows: int = LOSS_BY_T_ROWS) -> None:
        self.state = "idle"
        self.checkpoint: Path | None = None  # the folder Continue trains: the last run's, or one opened
        self.checkpoint_step = 0
        self.output: Path | None = None  # the folder of the run on screen
        self.info: RunInfo | None = None
        self.last: TrainingUpdate | None = None
        self._steps: list[np.ndarray] = []
        self._losses: list[np.ndarray] = []
        self._loss_by_t = ThinnedRows(loss_by_t_rows)
        self._job: Job | None = None
        self.recipe: Recipe | None = None  # the recipe of the data chosen last (None: settings of their own)

    # ---- the data and its recipe --------------------------------------------------------------

    def choose_data(self, data: str, state: StudioState) -> Recipe | None:
        """The user picked ``data``: "digits", a bundled 2-D set's name, FOLDER (any image folder)
        or "points" (core.recipes.recipe_for). When that data's recipe is not the one of the data
        chosen before, it is applied: its schedule becomes the shared one in ``state``, and it is
        returned for the form to show its network and training settings. Otherwise None: the
        settings stay as the user left them."""
        recipe = _recipe(data)
        if recipe == self.recipe:
            return None
        state.set_schedule_config(recipe.schedule)
        self.recipe = recipe
        return recipe

    def schedule_warning(self, data: str, schedule: ScheduleConfig) -> str | None:
        """Why ``schedule`` fails on ``data`` (a choice as choose_data takes it), or None: for 2-D
        points, a schedule whose ᾱ_T is so small that x̂_0 holds only when clamped (core.recipes)."""
        return schedule_warning(schedule, _recipe(data))

    def keep_settings(self, data: str) -> None:
        """The form shows settings of its own for ``data`` (restored from the last session, or a
        checkpoint's): choose_data applies a recipe only once the data changes from it."""
        self.recipe = _recipe(data)

    # ---- running ------------------------------------------------------------------------------

    def start(self, request: TrainingRequest) -> Job:
        """A Job for this request; a new run goes into a folder no run has used, a continued run
        keeps its loss history if it is the run on screen."""
        if self.state != "idle":
            raise RuntimeError("a run is going on")
        if not request.resume:
            request = replace(request, output=claim_folder(request.output))
        if not (request.resume and request.output == self.output):
            self._steps, self._losses, self.last, self.info = [], [], None, None
            self._loss_by_t.clear()
        self.output = request.output
        control = RunControl()
        self._job = Job(run=lambda should_stop: _training_items(request, should_stop), digest=_Digest(control), control=control)
        self._set_state("running")
        return self._job

    def toggle_pause(self) -> None:
        if self.state == "running":
            self._job.control.pause()
            self._set_state("paused")
        elif self.state == "paused":
            self._job.control.resume()
            self._set_state("running")

    def stop(self) -> None:
        """Stop after the current step; the job saves the checkpoint and finishes."""
        if self.state in ("running", "paused"):
            self._job.control.stop()
            self._set_state("stopping")

    def on_update(self, update: TrainingUpdate) -> None:
        """An update from the job (on the UI thread)."""
        if update.info is not None:
            self.info = update.info
            self.started.emit(update.info)
        if len(update.steps):
            self._steps.append(update.steps)
            self._losses.append(update.losses)
            self._loss_by_t.extend(update.steps, update.loss_by_t)
            self.last = update
            self.progressed.emit(update)
        for folder, step in update.saved:
            self.checkpoint, self.checkpoint_step = folder, step
            self.saved.emit(str(folder), step)

    def on_finished(self, step: int) -> None:
        stopped = self._job.control.stopped
        self._end()
        self.finished.emit(step, stopped)

    def on_failed(self, message: str) -> None:
        self._end()
        self.failed.emit(message)

    def _end(self) -> None:
        self._job = None
        self._set_state("idle")

    def _set_state(self, state: str) -> None:
        self.state = state
        self.stateChanged.emit(state)

    def open_checkpoint(self, folder: Path, step: int) -> None:
        """Make this checkpoint the one Continue trains."""
        self.checkpoint, self.checkpoint_step = folder, step

    def adopt_checkpoint(self, checkpoint: Checkpoint, state: StudioState) -> None:
        """A checkpoint read from disk is the one Continue trains, on its schedule (the shared one
        in ``state``); its settings for the form are ``TrainingSettings.from_checkpoint``."""
        state.set_schedule_config(checkpoint.schedule_config)
        self.open_checkpoint(checkpoint.path, checkpoint.step)

    def continue_request(self, settings: TrainingSettings, schedule: ScheduleConfig) -> TrainingRequest:
        """Train the checkpoint on, with its own model, data and settings, up to the settings'
        steps on their device, previewing and saving as they say."""
        if self.checkpoint is None:
            raise RuntimeError("no checkpoint to continue")
        config = replace(TrainConfig(), steps=settings.training.steps, device=settings.training.device)
        return TrainingRequest(self.checkpoint, config, schedule, NetworkSize(), resume=True,
                               save_every=settings.save_every, preview_every=settings.preview_every)

    def continue_refusal(self, steps: int) -> str | None:
        """Why Continue cannot train the checkpoint on up to ``steps`` (core.runs.continue_run), or None."""
        if self.checkpoint is None:
            return "No checkpoint to continue: train one, or open one"
        if steps <= self.checkpoint_step:
            return f"{self.checkpoint.name} is at step {self.checkpoint_step}: set Steps above that to continue it"
        return None

    # ---- the loss history ---------------------------------------------------------------------

    def loss_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Every reported (step, loss) of the run on screen."""
        if not self._steps:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(self._steps), np.concatenate(self._losses)

    def loss_by_t_history(self) -> tuple[np.ndarray, np.ndarray]:
        """The loss by t over the run on screen: the steps of the reports kept (evenly spaced, at
        most ``loss_by_t_rows``) and, for each, its running mean loss per range of t (one row;
        NaN where no t in that range was drawn yet)."""
        return self._loss_by_t.steps, self._loss_by_t.rows

    def export_loss(self, path: Path) -> None:
        """The loss curve as CSV (step,loss, as the run folder's loss.csv writes them), atomically
        (FileSaveError if it cannot be)."""
        from diffusion_studio.core.training_log import LOSS_COLUMNS, csv_row

        steps, losses = self.loss_curve()
        text = csv_row(LOSS_COLUMNS[:2]) + "".join(csv_row(row) for row in zip(steps, losses))
        with atomic_write(path) as handle:
            handle.write(text.encode())
