from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_studio.core.errors import FileSaveError, SettingError, TrajectoryError
from diffusion_studio.core.export import (
    SCATTER_EXTENT, label_frame, point_view, save_gif, scatter_frame, trajectory_frames, view_bounds,
)
from diffusion_studio.core.samplers import DDIMSampler
from diffusion_studio.core.sampling import sample_loop
from diffusion_studio.core.schedules import make_schedule
from diffusion_studio.core.trajectory import (
    Recorder,
    frame_bytes,
    load_trajectory,
    recorded_frame_count,
    save_trajectory,
)


def run(shape, num_steps=10, every=1, stop_after=None):
    sampler = DDIMSampler(make_schedule("linear", 50))
    sampler.set_timesteps(num_steps)
    recorder = Recorder(every=every, metadata={"sampler": "ddim"})
    should_stop = lambda: stop_after is not None and len(recorder.moments) >= stop_after  # noqa: E731
    for step in sample_loop(lambda x, i: 0.1 * x, sampler, shape, generator=torch.Generator().manual_seed(0),
                            should_stop=should_stop):
        recorder.add(step)
    return recorder


def test_a_stopped_run_ends_at_the_t_it_reached_everywhere_its_frames_go(tmp_path):
    """Issue 28: a run cancelled after 3 of 10 DDIM steps (t = 50, 45, 40) is x_35, not the result."""
    trajectory = run((64, 2), stop_after=3).trajectory()
    assert trajectory.timesteps.tolist() == [50, 45, 40, 35]
    np.testing.assert_array_equal(trajectory.pred_x0[-1], trajectory.pred_x0[-2])  # the last x̂_0 predicted, from x_40
    save_trajectory(trajectory, tmp_path / "stopped.npz")
    assert load_trajectory(tmp_path / "stopped.npz").timesteps.tolist() == [50, 45, 40, 35]
    last = trajectory_frames(trajectory)[-1]  # a GIF's last frame says t = 35, not "result"
    assert np.array_equal(last, label_frame(scatter_frame(trajectory.x_t[-1]), "t = 35"))


@pytest.mark.parametrize(("num_steps", "every"), [(10, 1), (10, 3), (7, 7)])
def test_recording_keeps_every_kth_step_and_the_result(num_steps, every):
    recorder = run((4, 3, 8, 8), num_steps, every)
    trajectory = recorder.trajectory()
    assert len(trajectory) == recorded_frame_count(num_steps, every)
    assert trajectory.timesteps[-1] == 0 and trajectory.timesteps[0] == 50
    assert trajectory.x_t.shape == (len(trajectory), 4, 8, 8, 3) and trajectory.x_t.dtype == np.uint8
    np.testing.assert_array_equal(trajectory.x_t[-1], trajectory.pred_x0[-1])
    recorded = trajectory.x_t.nbytes + trajectory.pred_x0.nbytes + trajectory.pred_eps.nbytes
    assert recorded == len(trajectory) * frame_bytes((4, 3, 8, 8), True)


def test_thousand_steps_of_a_16_sample_grid_stay_within_tens_of_mb():
    # x_t, x̂_0 and ε̂ as bytes: the bundled 16×16 gray model, then a CIFAR-sized 32×32 RGB one
    assert recorded_frame_count(1000, 1) * frame_bytes((16, 1, 16, 16), True) == 1001 * 3 * 16 * 256 < 13e6
    assert recorded_frame_count(1000, 1) * frame_bytes((16, 3, 32, 32), True) < 150e6


def test_save_and_load_round_trip(tmp_path):
    for shape in ((2, 1, 8, 8), (50, 2)):
        trajectory = run(shape).trajectory()
        save_trajectory(trajectory, tmp_path / "t.npz")
        loaded = load_trajectory(tmp_path / "t.npz")
        np.testing.assert_array_equal(loaded.x_t, trajectory.x_t)
        np.testing.assert_array_equal(loaded.timesteps, trajectory.timesteps)
        assert loaded.metadata == {"sampler": "ddim"} and loaded.is_image == (len(shape) == 4)


def test_broken_trajectory_files_are_clear_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(TrajectoryError, match="junk.npz"):
        load_trajectory(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(TrajectoryError, match="missing"):
        load_trajectory(tmp_path / "other.npz")
    np.savez(tmp_path / "obj.npz", timesteps=np.array([object()]), x_t=np.zeros(1), pred_x0=np.zeros(1), metadata=np.array("{}"))
    with pytest.raises(TrajectoryError):
        load_trajectory(tmp_path / "obj.npz")


def test_gif_has_the_frames_size_and_duration_asked_for(tmp_path):
    trajectory = run((4, 3, 8, 8), num_steps=10).trajectory()
    frames = trajectory_frames(trajectory, every=3, labels=False)
    assert len(frames) == 5  # frames 0, 3, 6, 9 and the result (10)
    save_gif(frames, tmp_path / "a.gif", fps=20, scale=2)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 5
        assert gif.size == (2 * frames[0].shape[1], 2 * frames[0].shape[0])
        assert gif.info["duration"] == 50 and gif.info["loop"] == 0


def test_labelled_side_by_side_and_scatter_frames():
    image_frames = trajectory_frames(run((4, 1, 8, 8)).trajectory(), with_x0=True)
    plain = trajectory_frames(run((4, 1, 8, 8)).trajectory(), labels=False)
    assert image_frames[0].shape[0] > plain[0].shape[0] and image_frames[0].shape[1] > 2 * plain[0].shape[1]
    points = trajectory_frames(run((30, 2)).trajectory(), reference=np.zeros((5, 2)))
    assert points[0].shape[2] == 3
    blank = scatter_frame(np.empty((0, 2)), size=50)
    assert np.all(blank[0, 0] == 255)
    dotted = scatter_frame(np.array([[0.5, 0.5]]), size=50)
    assert (dotted != blank).any()


def drawn_box(frame, colour):
    """The bounding box (rows, columns) of the pixels of ``colour`` in a frame, as fractions of its size."""
    rows, columns = np.nonzero((np.abs(frame.astype(int) - colour) <= 12).all(axis=2))
    return (rows.min() / frame.shape[0], (rows.max() + 1) / frame.shape[0],
            columns.min() / frame.shape[1], (columns.max() + 1) / frame.shape[1])


@pytest.mark.parametrize("name", ["eight_gaussians", "swiss_roll"])
def test_a_scatter_fits_its_axes_to_the_data(name):
    from diffusion_studio.core.data.datasets import load_toy

    data = load_toy(name, n=2000).data
    frame = scatter_frame(data[:500] * 0.5, reference=data)
    top, bottom, left, right = drawn_box(frame, (190, 190, 190))  # the data, in grey
    assert max(bottom - top, right - left) > 0.8  # its larger side fills the frame but for the margins …
    assert min(top, left, 1 - bottom, 1 - right) > 0.05 and abs((top + bottom) - 1) < 0.15  # … centred in it
    top, bottom, left, right = drawn_box(frame, (31, 94, 200))  # the samples, in blue, on the same axes
    assert 0.2 < top and bottom < 0.8 and 0.2 < left and right < 0.8
    assert point_view(None) == (0.0, 0.0, SCATTER_EXTENT) == point_view(np.full((3, 2), np.nan))


def test_the_view_of_a_reverse_process_holds_the_noise_and_every_cloud():
    x_min, x_max, y_min, y_max = view_bounds(np.array([[10.0, 0.0], [12.0, 1.0]]))
    assert x_min < -3 and x_max > 12 and y_min < -3 and y_max > 3
    assert x_max - x_min == pytest.approx(y_max - y_min)  # square
    assert view_bounds(None) == view_bounds()  # no data: N(0, I) alone, centred
    wide = view_bounds(None, np.array([[0.0, -20.0], [1.0, 1.0]]), np.array([[np.nan, 5.0]]))
    assert wide[2] < -20 and np.isfinite(wide).all()  # a sample gone non-finite does not break the view


def test_unwritable_gif_path(tmp_path):
    with pytest.raises(FileSaveError):
        save_gif([np.zeros((4, 4, 3), np.uint8)], tmp_path / "missing" / "a.gif")


def test_forward_strip_is_x0_then_the_closed_form_at_each_t():
    from diffusion_studio.core.export import forward_strip
    from diffusion_studio.core.schedules import make_schedule

    schedule = make_schedule("linear", 100)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (6, 5, 3)).astype(np.float32)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    strip = forward_strip(schedule, x0, eps, [0, 60])
    assert strip.shape == (6, 3 * 5 + 2 * 2, 3)
    assert np.array_equal(strip[:, :5], x0) and np.array_equal(strip[:, 7:12], x0)
    expected = schedule.sqrt_alpha_bars[60] * x0 + schedule.sqrt_one_minus_alpha_bars[60] * eps
    assert np.allclose(strip[:, 14:], expected, atol=1e-6)
    with pytest.raises(SettingError, match="0…T = 100"):
        forward_strip(schedule, x0, eps, [5, 101])


def test_frames_of_the_wrong_type_are_refused(tmp_path):
    frames = np.zeros((2, 1, 4, 4, 1), np.float64)  # images must be stored as bytes
    np.savez(tmp_path / "f.npz", timesteps=np.array([5, 0]), x_t=frames, pred_x0=frames, metadata=np.array('{"format_version": 1}'))
    with pytest.raises(TrajectoryError, match="float64, expected uint8"):
        load_trajectory(tmp_path / "f.npz")


def test_trajectories_of_different_step_counts_share_one_timeline_in_t():
    coarse, fine = run((2, 2), num_steps=5).trajectory(), run((2, 2), num_steps=50).trajectory()
    assert list(coarse.timesteps) == [50, 40, 30, 20, 10, 0]
    for t in (50, 37, 20, 1, 0):
        assert fine.timesteps[fine.frame_at(t)] == t
    assert coarse.timesteps[coarse.frame_at(37)] == 40
    assert coarse.timesteps[coarse.frame_at(35)] == 30  # a tie goes to the later frame
    assert coarse.timesteps[coarse.frame_at(3)] == 0


def test_recorded_moments_are_those_of_the_full_precision_samples(tmp_path):
    from diffusion_studio.core.marginals import moments
    from diffusion_studio.core.trajectory import Recorder, load_trajectory, save_trajectory

    steps = [SimpleNamespace(index=i, t=3 - i, prev_t=2 - i, x_t=torch.randn(5, 1, 4, 4) * 3, pred_x0=torch.zeros(5, 1, 4, 4),
                             pred_eps=torch.zeros(5, 1, 4, 4), x_prev=torch.full((5, 1, 4, 4), 0.5), nfe=i + 1)
             for i in range(3)]
    recorder = Recorder()
    for step in steps:
        recorder.add(step)
    trajectory = recorder.trajectory()
    expected = [moments(s.x_t.numpy()) for s in steps] + [moments(steps[-1].x_prev.numpy())]
    np.testing.assert_allclose(trajectory.moments, expected)
    assert trajectory.marginals().std[0] > 2  # std 3, where the uint8 frames would clip at 1
    save_trajectory(trajectory, tmp_path / "run.npz")
    np.testing.assert_allclose(load_trajectory(tmp_path / "run.npz").moments, expected)
