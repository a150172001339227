"""The 2-D lab without widgets: the data (a bundled set or a drawing), the model (opened, trained
here, or the exact denoiser of a Gaussian mixture), DDPM and DDIM runs from one x_T, and what is
shown at the playhead t: both clouds, chosen particles' paths, the drift field, the marginals.

DDPM samples the reverse SDE; DDIM with η = 0 follows the probability-flow ODE (Song et al. 2021)
through the same marginals q(x_t). From the same x_T they end in different places, and the lab
draws both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from diffusion_studio.app.jobs import Job, JobSession, ShouldStop
from diffusion_studio.app.playhead import Playhead
from diffusion_studio.app.training import TrainingRequest
from diffusion_studio.core.atomic import claim_folder
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.export import view_bounds
from diffusion_studio.core.recipes import POINT_RECIPES, POINTS, Recipe, recipe_for
from diffusion_studio.core.sample_config import MAX_POINTS, POINT_SAMPLES, SampleConfig, deterministic

if TYPE_CHECKING:
    from diffusion_studio.core.drift import DriftField, FieldKind
    from diffusion_studio.core.loaded_model import LoadedModel
    from diffusion_studio.core.marginals import Marginals
    from diffusion_studio.core.mixture import GaussianMixture
    from diffusion_studio.core.trajectory import Trajectory

PATHS = 6
"""Particles whose paths are drawn by default."""
GRID = 15
"""Arrows per side of the drift field."""
DRAWN_POINTS = 2000
"""Points drawn from a mixture placed by hand, to train on."""
DRAW_MODES = {"points": "Points", "gaussians": "Gaussians"}
EXACT_SCHEDULE = POINT_RECIPES[POINTS].schedule
"""The exact denoiser's schedule when no model gives one: the points recipe's."""
LAB_PREVIEW_EVERY = 250
"""Training here shows the EMA model's cloud every this many steps."""
FIELD_KINDS = {"score": "Score ∇log q(x_t) = −ε̂/√(1−ᾱ_t)", "mean_step": "Mean DDPM step μ_θ(x_t, t) − x_t"}
"""What the arrows can show (core.drift.FieldKind)."""
RUN_KINDS = {"sde": "DDPM (reverse SDE)", "ode": "DDIM η = 0 (probability-flow ODE)"}


class Drawing:
    """Data drawn by hand: single points, or Gaussians (a click puts a component of std ``std``
    there, and the data is DRAWN_POINTS draws of the mixture, whose exact score is then known)."""

    def __init__(self) -> None:
        self.mode = "points"
        self.std = 0.15  # the std of the next Gaussian placed
        self.points: list[tuple[float, float]] = []
        self.components: list[tuple[float, float, float]] = []  # (x, y, std)

    def add(self, x: float, y: float) -> None:
        if self.mode == "points":
            self.points.append((float(x), float(y)))
        else:
            self.components.append((float(x), float(y), self.std))

    def undo(self) -> None:
        marks = self.points if self.mode == "points" else self.components
        if marks:
            marks.pop()

    def clear(self) -> None:
        self.points.clear()
        self.components.clear()

    @property
    def count(self) -> int:
        return len(self.points) if self.mode == "points" else len(self.components)

    def mixture(self) -> GaussianMixture | None:
        """The mixture placed, in Gaussians mode with at least one component."""
        from diffusion_studio.core.mixture import GaussianMixture

        if self.mode != "gaussians" or not self.components:
            return None
        parts = np.array(self.components)
        return GaussianMixture(parts[:, :2], parts[:, 2], np.ones(len(parts)))

    def data(self, seed: int = 0) -> np.ndarray:
        """The drawn data set: the points, or DRAWN_POINTS draws of the mixture. N×2 float32."""
        return self.labelled_data(seed)[0]

    def labelled_data(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """``data`` and its labels: each draw's component for a mixture, None for drawn points."""
        mixture = self.mixture()
        if mixture is not None:
            return mixture.sample_labelled(DRAWN_POINTS, np.random.default_rng(seed))
        return np.array(self.points, dtype=np.float32).reshape(-1, 2), None


@dataclass(frozen=True)
class LabRuns:
    """DDPM and DDIM runs from the same x_T, every step recorded (points are stored as float32)."""

    sde: Trajectory
    ode: Trajectory
    seconds: float

    def run(self, kind: str) -> Trajectory:
        return self.sde if kind == "sde" else self.ode


@dataclass(frozen=True)
class LabProgress:
    done: int  # steps done over both runs
    total: int


def _as_progress(steps, done: int, total: int):
    """Re-yield a recording run's steps as LabProgress; return what the run returns."""
    while True:
        try:
            step = next(steps)
        except StopIteration as end:
            return end.value
        yield LabProgress(done + step.index + 1, total)


def _lab_items(model: LoadedModel, config: SampleConfig, should_stop: ShouldStop):
    """The job: DDPM, then the DETERMINISTIC sampler (DDIM, η = 0), on the CPU from the same seed
    (so the same x_T); returns LabRuns, or None when stopped."""
    from diffusion_studio.core.sampling import SamplingRun
    from diffusion_studio.core.trajectory import record_run

    started = time.perf_counter()
    runs = [SamplingRun(model, c, "cpu") for c in (replace(config, sampler="ddpm", options={}), deterministic(config))]
    total, done, trajectories = sum(run.num_steps for run in runs), 0, []
    for run in runs:
        recorder = yield from _as_progress(record_run(run, should_stop), done, total)
        if should_stop() or recorder.final is None:
            return None
        trajectories.append(recorder.trajectory())
        done += run.num_steps
    return LabRuns(*trajectories, time.perf_counter() - started)


class LabSession(JobSession, Playhead):
    """The lab's state. The data comes from a bundled set, a drawing, or the model's own training
    data; the exact denoiser stands in for a model when the data is a known Gaussian mixture."""

    dataChanged = Signal()  # data, mixture or bounds replaced
    modelChanged = Signal()
    runsChanged = Signal()  # new runs (or none): the playhead's stops changed
    progressed = Signal(object)  # LabProgress

    def __init__(self) -> None:
        super().__init__()
        self.data_name = ""  # a bundled set's name, "drawing", or the model's data
        self.data: np.ndarray | None = None  # N×2 points drawn behind the clouds
        self.mixture: GaussianMixture | None = None  # the data's exact distribution, when known
        self.bounds = view_bounds(None)
        self.drawing = Drawing()
        self.model: LoadedModel | None = None
        self.use_exact = False  # run the mixture's exact denoiser instead of the model
        self.runs: LabRuns | None = None
        self.config = SampleConfig(num=POINT_SAMPLES)
        self.field_kind: FieldKind = "score"
        self.paths = PATHS

    # ---- data -----------------------------------------------------------------------------------

    def set_data(self, name: str) -> None:
        """Show a bundled 2-D set (with its exact mixture, if it is one)."""
        from diffusion_studio.core.data.datasets import load_toy
        from diffusion_studio.core.mixture import known_mixture

        self._show_data(name, load_toy(name).data, known_mixture(name))

    def show_drawing(self) -> None:
        """Show the drawing as the data (the view refits only when a drawing starts empty)."""
        data = self.drawing.data()
        self._show_data("drawing", data, self.drawing.mixture(), refit=False)

    def draw(self, x: float, y: float) -> None:
        """Add a point (or a Gaussian) to the drawing at (x, y) and show it."""
        self.drawing.add(x, y)
        self.show_drawing()

    def save_drawing(self, folder: Path) -> Path:
        """Write the drawing as points.csv in a new folder under ``folder`` (with its mixture beside
        it, when it is one) and return the file: the data source a run trains on."""
        from diffusion_studio.core.data.datasets import save_points
        from diffusion_studio.core.mixture import save_mixture

        data, labels = self.drawing.labelled_data()
        if len(data) < 2:
            raise SettingError("data", "draw at least 2 points (or place a Gaussian) before training on the drawing")
        path = claim_folder(folder / f"drawing-{time.strftime('%Y%m%d-%H%M%S')}") / "points.csv"
        save_points(data, path, labels)  # a mixture's points labelled by component
        mixture = self.drawing.mixture()
        if mixture is not None:
            save_mixture(mixture, path)
        return path

    def _show_data(self, name: str, data: np.ndarray | None, mixture: GaussianMixture | None, refit: bool = True) -> None:
        self.data_name, self.data, self.mixture = name, data, mixture
        if refit or data is None or len(data) == 0:
            self.bounds = view_bounds(data)
        self.dataChanged.emit()

    # ---- training here ----------------------------------------------------------------------------

    def training_source(self, runs_folder: Path) -> str:
        """What training here trains on: the bundled set or points file shown, or the drawing
        (saved as points.csv in a new folder under runs_folder/drawings)."""
        from diffusion_studio.core.data.datasets import TOY_SETS, is_points_file

        if self.data_name in TOY_SETS or (is_points_file(self.data_name) and Path(self.data_name).is_file()):
            return self.data_name
        return str(self.save_drawing(runs_folder / "drawings"))

    def recipe(self) -> Recipe:
        """The recipe training here uses: the bundled set's, or that of any other point set."""
        return recipe_for(self.data_name if self.data_name in POINT_RECIPES else POINTS)  # a drawing too

    def training_request(self, runs_folder: Path, steps: int | None = None) -> TrainingRequest:
        """A run on the data shown with its recipe (``steps`` instead of the recipe's, if given) on
        the CPU (fastest for an MLP this small), with a preview cloud every LAB_PREVIEW_EVERY
        steps, saved once at the end."""
        recipe, source = self.recipe(), self.training_source(runs_folder)
        config = recipe.train_config(data=source, device="cpu", steps=steps or recipe.training.steps)
        name = source if source in POINT_RECIPES else "drawing"
        return TrainingRequest(runs_folder / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", config,
                               recipe.schedule, recipe.size, save_every=config.steps, preview_every=LAB_PREVIEW_EVERY)

    # ---- the model and its runs -------------------------------------------------------------------

    def set_model(self, model: LoadedModel) -> None:
        """Take a 2-D model; its training data (if known) becomes the data shown. Old runs go."""
        from diffusion_studio.core.mixture import known_mixture

        if model.is_image:
            raise SettingError("model", "the 2-D lab shows models of 2-D points; this one makes images")
        self.model = model
        self.use_exact = False
        points = model.training_points()
        if points is not None:
            self._show_data(model.data, points, known_mixture(model.data))
        self.modelChanged.emit()
        self._set_runs(None)

    def exact_model(self) -> LoadedModel | None:
        """The exact denoiser of the data's mixture, on the model's schedule (or 100 steps of the
        linear one without a model); None when the data is no known mixture."""
        from diffusion_studio.core.drift import MixtureDenoiser
        from diffusion_studio.core.loaded_model import LoadedModel
        from diffusion_studio.core.schedules import NoiseSchedule

        if self.mixture is None:
            return None
        config = self.model.schedule_config if self.model is not None else EXACT_SCHEDULE
        low, high = self.bounds[0], self.bounds[1]
        return LoadedModel(MixtureDenoiser(self.mixture, NoiseSchedule(config)), config, "eps", (2,),
                           "exact", self.data_name, (low, high))

    def denoiser(self) -> LoadedModel | None:
        """What a run samples with: the exact denoiser when asked for (and known), else the model."""
        return self.exact_model() if self.use_exact else self.model

    def set_use_exact(self, use: bool) -> None:
        if use and self.mixture is None:
            raise SettingError("model", "the exact denoiser needs data that is a Gaussian mixture (eight Gaussians, or Gaussians drawn)")
        if use != self.use_exact:
            self.use_exact = use
            self.modelChanged.emit()
            self._set_runs(None)

    def start(self, config: SampleConfig | None = None) -> Job:
        """A Job running DDPM and DDIM from one x_T with ``config``'s count, steps and seed."""
        from diffusion_studio.core.sample_config import validate_sample_config

        if config is not None:
            validate_sample_config(config)
            if config.num > MAX_POINTS:
                raise SettingError("num", f"the lab draws at most {MAX_POINTS:,} points")
            self.config = config
        model = self.denoiser()
        if model is None:
            raise SettingError("model", "train a model here, open a 2-D model, or use the exact denoiser of a mixture first")
        return self._begin(lambda control, should_stop: _lab_items(model, self.config, should_stop), lambda items: items[-1])

    def on_progress(self, progress: LabProgress) -> None:
        self.progressed.emit(progress)

    def on_finished(self, runs: LabRuns | None) -> None:
        self._set_running(False)
        if runs is not None:
            self._set_runs(runs)

    def _set_runs(self, runs: LabRuns | None) -> None:
        self.stop_playing()
        self.runs = runs
        if runs is None:
            self.times = np.zeros(0, int)
        else:
            self.times = np.unique(np.concatenate([runs.sde.timesteps, runs.ode.timesteps]))[::-1]
            self.t = int(self.times[0])
        self.runsChanged.emit()
        self.playheadChanged.emit(self.t)

    # ---- what is shown at t ---------------------------------------------------------------------

    def cloud(self, kind: str) -> np.ndarray | None:
        """A run's points at the frame nearest the playhead (N×2)."""
        if self.runs is None:
            return None
        run = self.runs.run(kind)
        return run.x_t[run.frame_at(self.t)]

    def particle_paths(self, kind: str) -> np.ndarray | None:
        """The first ``paths`` particles' positions from x_T to the frame nearest t: frames×P×2."""
        if self.runs is None:
            return None
        run = self.runs.run(kind)
        return run.x_t[: run.frame_at(self.t) + 1, : self.paths]

    def field(self, grid_size: int = GRID) -> DriftField | None:
        """The drift field at the playhead (t ≥ 1) over the view: the model's (or the exact
        denoiser's) beside the exact one when the data is a mixture."""
        model = self.denoiser()
        if model is None:
            return None
        from diffusion_studio.core.drift import drift_field, grid  # torch: only once there is a model
        t = max(1, min(self.t, model.schedule_config.timesteps)) if len(self.times) else model.schedule_config.timesteps // 2
        return drift_field(model, grid(self.bounds, grid_size), t, self.field_kind, self.mixture)

    def marginals(self) -> dict[str, Marginals]:
        """The marginals check: each run's mean and std of x_t per step, and the forward process's
        on the data ("q"), on the runs' schedule."""
        from diffusion_studio.core.marginals import forward_marginals
        from diffusion_studio.core.schedules import NoiseSchedule

        if self.runs is None:
            return {}
        shown = {kind: self.runs.run(kind).marginals() for kind in RUN_KINDS}
        model = self.denoiser()
        if self.data is not None and len(self.data) and model is not None:
            shown["q"] = forward_marginals(NoiseSchedule(model.schedule_config), self.data)
        return shown

