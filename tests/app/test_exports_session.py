"""Exports of the Sampling session, with no widget: the frames picked, a GIF or PNGs written as a
Job that reports each frame, the runs' settings in every picture, and stopping before the file."""

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.app.exports import ExportProgress, ExportSession, GifOptions, frame_drawings
from diffusion_studio.app.jobs import drive
from diffusion_studio.app.sampling import SamplingSession
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.export import comparison_frame, trajectory_frames
from diffusion_studio.core.loaded_model import LoadedModel
from diffusion_studio.core.models import build_model
from diffusion_studio.core.models.config import UNetConfig
from diffusion_studio.core.provenance import read_metadata
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.schedules import ScheduleConfig
from tests.app.events import Recorder


@pytest.fixture(scope="module")
def model():
    config = UNetConfig(image_size=8, in_channels=1, out_channels=1, base_channels=8, channel_mults=(1,),
                        num_res_blocks=1, attention_resolutions=())
    return LoadedModel(build_model(config).eval(), ScheduleConfig("linear", 20), "eps", (1, 8, 8), "tiny", "")


@pytest.fixture(scope="module")
def sampled(model):
    session = SamplingSession()
    session.on_finished(drive(session.start(model, SampleConfig(sampler="ddim", steps=10, num=4)), session.on_update, 0.0))
    return session


def export(session: ExportSession, job):
    updates = []
    session.on_finished(drive(job, updates.append, 0.0))
    return updates


def test_the_frames_drawn_are_those_trajectory_frames_picks(sampled):
    options = GifOptions(start=2, stop=11, every=3, scale=3, labels=True, with_x0=True)
    drawn = [draw() for draw in frame_drawings(sampled, options, None)]
    expected = trajectory_frames(sampled.trajectory, with_x0=True, every=3, start=2, stop=11, labels=True, scale=3)
    assert len(drawn) == 4 and all(np.array_equal(a, b) for a, b in zip(drawn, expected))
    with pytest.raises(SettingError):
        frame_drawings(sampled, GifOptions(start=5, stop=3), None)


def test_a_gif_reports_every_frame_and_records_the_run(sampled, tmp_path):
    exports = ExportSession()
    seen = Recorder(exports)
    path = tmp_path / "d.gif"
    updates = export(exports, exports.gif(sampled, path, GifOptions(start=2, stop=11, every=3, fps=5, scale=3, labels=False)))
    assert updates == [ExportProgress(k, 4) for k in range(1, 5)]  # each frame's progress, none lost
    assert seen.values("exported") == [str(path)] and seen.values("runningChanged") == [True, False]
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.info["duration"] == 200 and gif.size == (sampled.trajectory.x_t.shape[3] * 2 * 3 + 6,) * 2
    assert read_metadata(path)["runs"][0]["sampler"] == "ddim"


def test_png_frames_are_written_one_by_one_with_the_run(sampled, tmp_path):
    exports = ExportSession()
    updates = export(exports, exports.frames(sampled, tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"frame_{i:04d}.png" for i in range(11)]
    assert updates[-1] == ExportProgress(11, 11)
    assert read_metadata(tmp_path / "frame_0003.png")["runs"][0]["steps"] == 10


def test_a_comparison_exports_its_rows_at_the_stops_of_its_timeline(model, tmp_path):
    session = SamplingSession()
    session.list_run(SampleConfig(sampler="ddim", steps=2), 20)
    session.list_run(SampleConfig(sampler="ddim", steps=5), 20)
    session.on_compared(drive(session.start_listed(model, seed=0, num=2), session.on_update, 0.0))
    drawn = [draw() for draw in frame_drawings(session, GifOptions(scale=1), None)]
    labels = [f"{run.label} · {run.nfe} NFE" for run in session.runs]
    assert len(drawn) == len(session.times) == 7  # the stops of both runs: t = 20, 16, 12, 10, 8, 4, 0
    assert np.array_equal(drawn[1], comparison_frame(session.trajectories, labels, int(session.times[1]), False, None, 1))


def test_stopping_an_export_writes_no_file_and_a_failure_is_reported(sampled, tmp_path):
    exports = ExportSession()
    seen = Recorder(exports)
    job = exports.gif(sampled, tmp_path / "d.gif", GifOptions())
    exports.cancel()
    export(exports, job)
    assert seen.args("stopped") == [()] and not list(tmp_path.iterdir()) and not exports.running
    job = exports.gif(sampled, tmp_path / "missing" / "d.gif", GifOptions())
    with pytest.raises(DiffusionStudioError, match="d.gif"):
        drive(job, exports.on_update, 0.0)
