"""The Sampling panel without widgets: a run's Job, the runs listed for a comparison, the recorded
trajectories and their files, the playhead in t (app.playhead), the enlarged sample, playback, and
the forward process's marginals that the marginals check draws the runs against.

Each frame holds x_t, the network's x̂_0 and ε̂ at that step (x_t = √ᾱ_t x̂_0 + √(1 − ᾱ_t) ε̂).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from diffusion_studio.app.jobs import Job, JobSession, ShouldStop, job_device
from diffusion_studio.app.playhead import Playhead
from diffusion_studio.core.compare import MAX_RUNS, ComparedRun, check_fork, comparison_metadata
from diffusion_studio.core.control import RunControl, tagged
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.provenance import output_metadata
from diffusion_studio.core.sample_config import SampleConfig, run_label, validate_sample_config
from diffusion_studio.core.trajectory import Trajectory, load_trajectory, save_trajectory

if TYPE_CHECKING:
    from diffusion_studio.app.inpainting import InpaintingResult
    from diffusion_studio.core.loaded_model import LoadedModel
    from diffusion_studio.core.marginals import Marginals


@dataclass(frozen=True)
class SamplingPreview:
    """The newest step of a running sampler, as trajectories store frames."""

    index: int  # steps done
    total: int
    t: int
    x_t: np.ndarray  # N×H×W×C uint8 or N×D float32
    pred_x0: np.ndarray
    pred_eps: np.ndarray
    run: int = 0  # in a comparison: which run (the number of runs: the reference being solved)


@dataclass(frozen=True)
class ListedRun:
    """A run listed for the next comparison."""

    config: SampleConfig  # its seed and number of samples are the comparison's, given when it starts
    label: str  # core.sample_config.run_label, on the T of the model it was listed for


@dataclass(frozen=True)
class SamplingResult:
    run: ComparedRun  # the run, as a comparison holds its runs (unmeasured), so that it can be forked
    cancelled: bool  # stopped by the user; the trajectory holds the steps done

    @property
    def trajectory(self) -> Trajectory:
        return self.run.trajectory

    @property
    def final(self) -> np.ndarray:
        """The samples at full precision: N×C×H×W or N×D."""
        return self.run.final


def ended(result: SamplingResult | InpaintingResult) -> str:
    """How a recorded run ended, in words."""
    frames, reached = len(result.trajectory), int(result.trajectory.timesteps[-1])
    return f"Cancelled at t = {reached}: showing the {frames} frames recorded" if result.cancelled else f"Done: {frames} frames recorded"


def _sampling_items(model: LoadedModel, config: SampleConfig, device: str, control: RunControl, should_stop: ShouldStop):
    """The job's generator: every step, recorded on the worker's thread; returns the SamplingResult
    (None if cancelled before the first step)."""
    from diffusion_studio.core.compare import run_label
    from diffusion_studio.core.sampling import SamplingRun
    from diffusion_studio.core.trajectory import record_run

    run = SamplingRun(model, config, job_device(device))
    recorder = yield from record_run(run, should_stop)
    if recorder.final is None:
        return None
    label = run_label(config, run.schedule.timesteps)
    return SamplingResult(ComparedRun(label, config, recorder.trajectory(), recorder.final, recorder.nfe, recorder.seconds),
                          control.stopped)


def preview(steps: list) -> SamplingPreview:
    """The last of the steps since the last update, as stored frames (on the worker's thread);
    a comparison's items are (run, step)."""
    from diffusion_studio.core.trajectory import stored_frame

    run, step = steps[-1] if isinstance(steps[-1], tuple) else (0, steps[-1])
    return SamplingPreview(step.index + 1, step.total, step.t, stored_frame(step.x_t), stored_frame(step.pred_x0),
                           stored_frame(step.pred_eps), run)


@dataclass(frozen=True)
class ComparisonResult:
    runs: list[ComparedRun]  # those that finished, measured when the reference could be had
    cancelled: bool
    reference: np.ndarray | None = None  # what the runs were measured against (core.compare.reference_for)


def _comparison_items(
    model: LoadedModel, configs: list[SampleConfig], device: str, control: RunControl, should_stop: ShouldStop
):
    """The comparison job's generator: (run, step) for every step of every run, then of the
    reference (run = the number of runs); returns the ComparisonResult."""
    from diffusion_studio.core.compare import compare_items, measure, reference_for

    device = job_device(device)
    runs = yield from compare_items(model, configs, device, should_stop)
    if control.stopped:
        return ComparisonResult(runs, True)
    reference_steps = reference_for(model, configs[0], device, should_stop)
    reference = yield from tagged(len(configs), reference_steps)
    return ComparisonResult(measure(runs, reference), control.stopped, reference)


@dataclass(frozen=True)
class ForkResult:
    parents: list[ComparedRun]  # the runs forked from, measured against the reference when there is one
    fork: ComparedRun
    reference: np.ndarray | None  # what they were measured against


def _fork_items(model: LoadedModel, parents: list[ComparedRun], row: int, t: int, child: SampleConfig, device: str,
                reference: np.ndarray | None, should_stop: ShouldStop):
    """The fork job's generator: parent ``row``'s steps down to t, then the child's; returns the
    ForkResult (None if stopped). The fork is measured like a comparison's runs; a single run, which
    no comparison measured, is measured with its fork when a 2-D model's data is at hand."""
    from diffusion_studio.core.compare import fork_items, measure

    fork = yield from fork_items(model, parents[row], t, child, job_device(device), should_stop)
    if fork is None:
        return None
    if reference is None and not model.is_image:
        reference = model.training_points()
        parents = measure(parents, reference)
    return ForkResult(parents, measure([fork], reference)[0], reference)


def model_forward_marginals(model: LoadedModel) -> Marginals | None:
    """The marginals of the forward process q(x_t) on the model's training data, t = 0…T (None
    when that data is not at hand); it reads the data, so run it on a worker."""
    from diffusion_studio.core.marginals import forward_marginals
    from diffusion_studio.core.schedules import NoiseSchedule

    data = model.training_data()
    return None if data is None else forward_marginals(NoiseSchedule(model.schedule_config), data)


class SamplingSession(JobSession, Playhead):
    """Runs one sampler, or a comparison of several from one x_T, and holds what they recorded,
    with a playhead in t that scrubs them together (``times``: every frame of every trajectory)."""

    previewed = Signal(object)  # SamplingPreview while a run goes on
    trajectoriesChanged = Signal()  # a run ended or a file was opened: the playhead is at the result
    focusChanged = Signal(object)  # the enlarged sample's index, or None for the grid
    finished = Signal(str)  # a run ended: what happened, in words
    listedChanged = Signal()  # a run was listed for a comparison, or taken off the list
    forwardChanged = Signal()  # the forward marginals of the model asked for last have come

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[ListedRun] = []  # the runs the next comparison runs
        self.trajectories: list[Trajectory] = []
        self.runs: list[ComparedRun] = []  # a comparison's runs, one per trajectory (empty for a single run)
        self.single: ComparedRun | None = None  # the single run sampled here (not opened from a file)
        self.reference: np.ndarray | None = None  # what the comparison's runs were measured against
        self.focus: int | None = None
        self.comparing = False  # the run going on is a comparison
        self._forward: tuple[LoadedModel | None, Marginals | None] = (None, None)  # a model and its forward marginals

    @property
    def final(self) -> np.ndarray | None:
        """The single run's samples at full precision (None for a comparison or a file)."""
        return None if self.single is None else self.single.final

    @property
    def forkable(self) -> list[ComparedRun]:
        """The runs a fork can start from: the comparison's, or the single run sampled here."""
        return self.runs or ([self.single] if self.single is not None else [])

    @property
    def trajectory(self) -> Trajectory | None:
        """The trajectory the timeline follows (the first)."""
        return self.trajectories[0] if self.trajectories else None

    # ---- running ------------------------------------------------------------------------------

    def start(self, model: LoadedModel, config: SampleConfig, device: str = "cpu") -> Job:
        """A Job sampling ``model`` with ``config`` on ``device`` (its network is moved there; "auto":
        the best here). SettingError, before anything starts, if it cannot."""
        validate_sample_config(config)
        return self._begin(lambda control, should_stop: _sampling_items(model, config, device, control, should_stop))

    def _begin(self, items, comparing: bool = False) -> Job:
        """The Job of ``items(control, should_stop)``, previewed step by step; playback stops."""
        self.stop_playing()
        job = super()._begin(items, preview)
        self.comparing = comparing
        return job

    def start_comparison(self, model: LoadedModel, configs: list[SampleConfig], device: str = "cpu") -> Job:
        """A Job running each config from the same x_T, then the reference they are measured by
        (core.compare); the result goes to ``on_compared``."""
        for config in configs:
            validate_sample_config(config)
        configs = list(configs)
        return self._begin(lambda control, should_stop: _comparison_items(model, configs, device, control, should_stop),
                           comparing=True)

    def list_run(self, config: SampleConfig, timesteps: int) -> None:
        """List a run for the next comparison, labelled on a model of T = ``timesteps``
        (DiffusionStudioError once core.compare.MAX_RUNS are listed)."""
        if len(self.listed) >= MAX_RUNS:
            raise DiffusionStudioError(f"A comparison holds at most {MAX_RUNS} runs")
        self.listed.append(ListedRun(config, run_label(config, timesteps)))
        self.listedChanged.emit()

    def unlist_run(self, index: int) -> None:
        """Take listed[index] off the list (IndexError if there is no such run)."""
        del self.listed[index]
        self.listedChanged.emit()

    def start_listed(self, model: LoadedModel, seed: int, num: int, device: str = "cpu") -> Job:
        """``start_comparison`` of every listed run, all from ``seed`` with ``num`` samples (so from one x_T)."""
        return self.start_comparison(model, [replace(run.config, seed=seed, num=num) for run in self.listed], device)

    def on_compared(self, result: ComparisonResult) -> None:
        self._set_running(False)
        if not result.runs:
            self.failed.emit("Cancelled before the first run ended")
            return
        self.set_trajectories([run.trajectory for run in result.runs], runs=result.runs, reference=result.reference)
        self.finished.emit(f"Compared {len(result.runs)} runs" + (" (cancelled: no distances)" if result.cancelled else ""))

    def start_fork(self, model: LoadedModel, row: int, t: int, child: SampleConfig, device: str = "cpu") -> Job:
        """A Job that goes back to x_t of run ``row`` of ``forkable`` and goes on with ``child``'s
        settings (core.compare.fork_items); the fork becomes a new row beside its parent (``on_forked``)."""
        validate_sample_config(child)
        parents = self.forkable
        if not 0 <= row < len(parents):
            raise SettingError("run", "fork from a run sampled here (a file's trajectory cannot be re-run)")
        if self.running:
            raise RuntimeError("a run is going on")
        check_fork(parents[row], t)
        reference = self.reference
        return self._begin(lambda control, should_stop: _fork_items(model, parents, row, t, child, device, reference,
                                                                    should_stop))

    def on_forked(self, result: ForkResult | None) -> None:
        self._set_running(False)
        if result is None:
            self.failed.emit("Cancelled: no fork made")
            return
        runs = [*result.parents, result.fork]
        self.set_trajectories([run.trajectory for run in runs], runs=runs, reference=result.reference)
        self.finished.emit(f"Forked: {result.fork.label}")

    def on_update(self, preview: SamplingPreview) -> None:
        self.previewed.emit(preview)

    def on_finished(self, result: SamplingResult | None) -> None:
        self._set_running(False)
        if result is None:
            self.failed.emit("Cancelled before the first step")
            return
        self.set_trajectories([result.trajectory], single=result.run)
        self.finished.emit(ended(result))

    def _set_running(self, running: bool) -> None:
        if not running:
            self.comparing = False
        super()._set_running(running)

    # ---- trajectories and the playhead --------------------------------------------------------

    def set_trajectories(self, trajectories: list[Trajectory], runs: Sequence[ComparedRun] = (),
                         reference: np.ndarray | None = None, single: ComparedRun | None = None) -> None:
        """Show these (just sampled, compared, or opened from a file), the playhead at the result;
        ``runs``: a comparison's runs, one per trajectory, and the ``reference`` they were measured
        against; ``single``: the one run sampled here (its samples at full precision, its settings)."""
        self.trajectories = list(trajectories)
        self.runs = list(runs)
        self.reference = reference
        self.single = single
        self.times = np.unique(np.concatenate([tr.timesteps for tr in trajectories]))[::-1] if trajectories else np.zeros(0, int)
        self.focus = None
        self.t = int(self.trajectory.timesteps[-1]) if trajectories else 0
        self.trajectoriesChanged.emit()
        self.playheadChanged.emit(self.t)

    def output_metadata(self) -> dict[str, Any]:
        """What a picture of the runs shown records (core.provenance): a comparison's runs, or the one
        run (an inpainting's, when the trajectory opened was one)."""
        if self.runs:
            return comparison_metadata(self.runs)
        run = self.trajectory.metadata
        return output_metadata("inpaint" if "inpainted_pixels" in run else "sample", [run])

    def open(self, trajectory: Trajectory) -> None:
        """A trajectory from a file: it has no full-precision samples."""
        self.set_trajectories([trajectory])

    def open_file(self, path: Path) -> Trajectory:
        """Show the trajectory saved at ``path`` and return it (TrajectoryError, and nothing
        changed, if the file cannot be read as one)."""
        trajectory = load_trajectory(path)
        self.open(trajectory)
        return trajectory

    def save(self, path: Path) -> None:
        """Write the trajectory the timeline follows as .npz, atomically (DiffusionStudioError,
        and no file, if there is none or it cannot be written)."""
        if self.trajectory is None:
            raise DiffusionStudioError("Nothing to save yet: sample first")
        save_trajectory(self.trajectory, path)

    def frame(self, which: int = 0) -> int:
        """The frame of trajectory ``which`` that the playhead shows (its nearest t)."""
        return self.trajectories[which].frame_at(self.t)

    # ---- the forward process's marginals ------------------------------------------------------

    def forward_marginals(self, model: LoadedModel) -> Marginals | None:
        """``model``'s forward marginals, once ``on_forward`` has brought them (None before, and for a
        model whose training data is not at hand)."""
        return self._forward[1] if self._forward[0] is model else None

    def needs_forward(self, model: LoadedModel) -> bool:
        """True the first time ``model``'s forward marginals are asked for (after another model's):
        compute them then, with model_forward_marginals on a worker, and hand them to ``on_forward``."""
        if self._forward[0] is model:
            return False
        self._forward = (model, None)
        return True

    def on_forward(self, model: LoadedModel, marginals: Marginals | None) -> None:
        """The forward marginals computed for ``model``; kept unless another model was asked for since."""
        if self._forward[0] is model:
            self._forward = (model, marginals)
            self.forwardChanged.emit()

    def set_focus(self, index: int | None) -> None:
        """Enlarge one sample in every view, or None for the whole grid."""
        if index != self.focus:
            self.focus = index
            self.focusChanged.emit(index)
