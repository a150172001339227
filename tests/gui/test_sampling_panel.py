import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from diffusion_studio.cli import main as cli_main
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.export import batch_grid, comparison_frame
from diffusion_studio.core.provenance import read_metadata
from diffusion_studio.core.trajectory import load_trajectory, recorded_frame_count
from diffusion_studio.app.exports import GifOptions
from diffusion_studio.gui.sampling_panel import GifDialog, tile_at


@pytest.fixture(scope="module")
def default_model():
    return open_model("default")


@pytest.fixture
def panel(window, default_model):
    window.state.set_model(default_model)
    return window.sampling


def choose(panel, sampler):
    box = panel.settings.sampler_form["sampler"].widget
    box.setCurrentIndex(box.findData(sampler))


def settle(panel, sampler="ddim", steps=6, num=4, seed=3, every=1):
    choose(panel, sampler)
    for name, value in {"steps": steps, "num": num, "seed": seed, "record_every": every}.items():
        panel.settings.run_form[name].widget.setValue(value)  # as typed and committed


def test_the_form_offers_the_chosen_samplers_own_settings(panel):
    choose(panel, "ddim")
    assert panel.settings.option_forms["ddim"].isVisibleTo(panel) and not panel.settings.option_forms["ddpm"].isVisibleTo(panel)
    assert panel.settings.run_form["steps"].value() == 50
    panel.settings.option_forms["ddim"]["eta"].widget.setValue(0.5)
    assert panel.settings.config().options == {"eta": 0.5}
    choose(panel, "ddpm")
    assert panel.settings.option_forms["ddpm"].isVisibleTo(panel) and not panel.settings.option_forms["ddim"].isVisibleTo(panel)
    assert panel.settings.run_form["steps"].value() == panel.state.model.schedule_config.timesteps  # the full chain
    assert panel.settings.config().options == {"variance": "beta"} and panel.settings.config().spacing == "auto"


def run_to_end(panel, qtbot):
    panel.run()
    qtbot.waitUntil(lambda: not panel.running and panel.session.trajectory is not None, timeout=60000)


def test_sampling_records_the_expected_frames_and_shows_them(panel, qtbot):
    settle(panel, steps=7, every=3)
    assert panel.memory.text().startswith(f"{recorded_frame_count(7, 3)} frames")
    threads = set()
    for event in (panel.session.previewed, panel.session.trajectoriesChanged, panel.session.finished):
        event.connect(lambda *_: threads.add(threading.current_thread()))
    run_to_end(panel, qtbot)
    assert threads == {threading.main_thread()}  # the session, and so the widgets, only on the UI thread
    trajectory = panel.session.trajectory
    assert len(trajectory) == recorded_frame_count(7, 3) == 4
    assert trajectory.x_t.shape == (4, 4, 16, 16, 1) and trajectory.pred_eps.shape == trajectory.x_t.shape
    assert panel.progress.value() == 7 and panel.timeline.slider.maximum() == 3
    # moving the timeline shows that frame's pixels, in all three views
    for k in (0, 2, 3):
        panel.timeline.slider.setValue(k)
        assert np.array_equal(panel.shown_frame("x_t")[..., None], batch_grid(trajectory.x_t[k]))
        assert np.array_equal(panel.shown_frame("pred_x0")[..., None], batch_grid(trajectory.pred_x0[k]))
        assert np.array_equal(panel.shown_frame("pred_eps")[..., None], batch_grid(trajectory.pred_eps[k]))
        assert (f"t = {trajectory.timesteps[k]}" if k < 3 else "the result") in panel.timeline.label.text()


def on_screen(panel, qtbot):
    """The window shown on the panel, active, so that keys reach it as a user's would."""
    window = panel.window()
    window.show()
    window.tabs.setCurrentWidget(panel)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def test_keys_step_through_the_frames(panel, qtbot):
    on_screen(panel, qtbot)
    settle(panel, steps=5)
    run_to_end(panel, qtbot)
    assert panel.timeline.slider.value() == 5
    panel.setFocus()
    qtbot.keyClick(panel, Qt.Key.Key_Home)
    assert panel.timeline.slider.value() == 0
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    assert panel.timeline.slider.value() == 2
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    assert panel.timeline.slider.value() == 1
    qtbot.keyClick(panel, Qt.Key.Key_End)
    assert panel.timeline.slider.value() == 5
    qtbot.keyClick(panel, Qt.Key.Key_Space)  # at the end, play starts from the first frame
    assert panel.timeline.play_timer.isActive()
    qtbot.waitUntil(lambda: not panel.timeline.play_timer.isActive(), timeout=5000)
    assert panel.timeline.slider.value() == 5


def test_the_timeline_keys_work_whatever_has_the_focus_but_a_field_being_edited(panel, qtbot):
    """Issue 28: after a run the focus sat in the Compare list, inside a scroll area that took ← and →."""
    on_screen(panel, qtbot)
    settle(panel, steps=5)
    run_to_end(panel, qtbot)
    for focused in (panel.compare_list, panel.settings.sampler_form["sampler"].widget, panel.run_button):
        focused.setFocus()
        qtbot.keyClick(focused, Qt.Key.Key_Home)
        assert panel.timeline.slider.value() == 0
        qtbot.keyClick(focused, Qt.Key.Key_Right)
        assert panel.timeline.slider.value() == 1, type(focused).__name__
        qtbot.keyClick(focused, Qt.Key.Key_End)
        assert panel.timeline.slider.value() == 5
    steps = panel.settings.run_form["steps"].widget  # a number field keeps its keys for editing
    steps.setFocus()
    qtbot.keyClick(steps, Qt.Key.Key_Home)
    assert panel.timeline.slider.value() == 5 and steps.hasFocus()


def test_the_gui_and_the_cli_give_the_same_samples_on_the_device_chosen(panel, qtbot, tmp_path):
    window = panel.window()
    window.show()
    window.tabs.setCurrentWidget(panel)  # the first show finds this machine's devices
    qtbot.waitUntil(lambda: panel.settings.device.findData("cpu") >= 0, timeout=30_000)
    assert panel.settings.device.itemData(0) == "auto" and panel.settings.device.itemText(0).startswith("Best available: ")
    panel.settings.device.setCurrentIndex(panel.settings.device.findData("cpu"))
    settle(panel, sampler="ddpm", steps=8, num=3, seed=11)
    variance = panel.settings.option_forms["ddpm"]["variance"].widget
    variance.setCurrentIndex(variance.findData("beta_tilde"))
    run_to_end(panel, qtbot)
    out = tmp_path / "cli.npy"
    assert cli_main(["sample", "--model", "default", "--sampler", "ddpm", "--steps", "8", "--num", "3", "--seed", "11",
                     "--variance", "beta_tilde", "--device", "cpu", "--output", str(out)]) == 0
    assert np.array_equal(np.load(out), panel.session.final)


def test_cancel_stops_quickly_and_keeps_what_was_recorded(panel, qtbot):
    settle(panel, sampler="ddpm", steps=1000, num=16)
    panel.run()
    qtbot.waitUntil(lambda: panel.progress.value() >= 2, timeout=30000)
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.running, timeout=3000)  # within a step or two
    assert panel.session.trajectory is not None and 2 <= len(panel.session.trajectory) < 1001
    assert panel.run_button.isEnabled()
    reached = int(panel.session.trajectory.timesteps[-1])  # the last frame is x_t where the run stopped
    frames = len(panel.session.trajectory)
    assert reached == 1001 - frames and panel.session.t == reached
    assert panel.timeline.label.text() == f"frame {frames} of {frames}: t = {reached}"
    assert panel.schedule_marker.value() == reached


def test_exported_gif_has_the_frames_size_and_duration_asked_for(panel, qtbot, tmp_path):
    settle(panel, steps=10)
    run_to_end(panel, qtbot)
    path = tmp_path / "d.gif"
    with qtbot.waitSignal(panel.exported, timeout=30000):
        panel.export_gif(path, GifOptions(start=2, stop=11, every=3, fps=5, scale=3, labels=False))
        assert panel.export_progress.isVisibleTo(panel)  # the export's own bar…
    assert not panel.export_progress.isVisibleTo(panel)
    assert (panel.progress.value(), panel.progress.maximum(), panel.progress.format()) == (10, 10, "%v / %m steps")  # …not the run's
    with Image.open(path) as gif:
        assert gif.n_frames == 4  # frames 2, 5 and 8, then 10, the last in range, always kept
        grid = batch_grid(panel.session.trajectory.x_t[0])
        assert gif.size == (grid.shape[1] * 3, grid.shape[0] * 3)
        assert gif.info["duration"] == 200 and gif.info.get("loop") == 0


def test_frames_export_and_trajectory_round_trip(panel, qtbot, tmp_path):
    settle(panel, steps=4)
    run_to_end(panel, qtbot)
    frames = tmp_path / "frames"
    frames.mkdir()
    with qtbot.waitSignal(panel.exported, timeout=30000):
        panel.export_frames(frames)
    assert sorted(p.name for p in frames.iterdir()) == [f"frame_{i:04d}.png" for i in range(5)]
    # every frame records the run: the command line samples it again, to the same numbers
    assert cli_main(["sample", "--from", str(frames / "frame_0002.png"), "-o", str(tmp_path / "again.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "again.npy"), panel.session.final)
    assert panel.save_trajectory(tmp_path / "t.npz")
    reopened = load_trajectory(tmp_path / "t.npz")
    assert np.array_equal(reopened.pred_eps, panel.session.trajectory.pred_eps)
    panel.session.set_trajectories([])
    assert panel.open_trajectory(tmp_path / "t.npz") and len(panel.session.trajectory) == 5
    assert panel.session.final is None and panel.timeline.slider.value() == 4


def test_a_cli_trajectory_opens_in_the_panel(panel, tmp_path):
    path = tmp_path / "cli.npz"
    assert cli_main(["sample", "--model", "default", "--sampler", "ddim", "--steps", "3", "--num", "2", "--device", "cpu",
                     "--output", str(tmp_path / "s.png"), "--trajectory", str(path)]) == 0
    assert panel.open_trajectory(path)
    assert panel.timeline.slider.maximum() == 3
    assert np.array_equal(panel.shown_frame()[..., None], batch_grid(panel.session.trajectory.x_t[-1]))


def test_broken_files_and_unwritable_paths_give_a_message_and_change_nothing(panel, qtbot, tmp_path):
    settle(panel, steps=3)
    run_to_end(panel, qtbot)
    before = panel.session.trajectory
    (tmp_path / "bad.npz").write_bytes(b"PK not a zip")
    with qtbot.waitSignal(panel.failed) as failed:
        assert not panel.open_trajectory(tmp_path / "bad.npz")
    assert "bad.npz" in failed.args[1] and panel.session.trajectory is before
    with qtbot.waitSignal(panel.failed, timeout=30000) as failed:
        panel.export_gif(tmp_path / "missing" / "d.gif", GifOptions())
    assert "d.gif" in failed.args[1]
    with qtbot.waitSignal(panel.failed) as failed:
        assert not panel.save_trajectory(tmp_path / "missing" / "t.npz")


def test_clicking_a_sample_enlarges_it(window, panel, qtbot):
    assert tile_at(20, 3, 4, 16, 16) == 1 and tile_at(17, 3, 4, 16, 16) is None and tile_at(3, 40, 4, 16, 16) is None
    settle(panel, steps=3, num=4)
    run_to_end(panel, qtbot)
    window.show()
    window.tabs.setCurrentWidget(panel)
    panel.timeline.slider.setValue(1)

    def click(x, y):  # at pixel (x, y) of x̂_0's grid, as the user clicks it
        view = panel.image_views.canvases["pred_x0"]
        at = view.mapFromScene(panel.items["pred_x0"].mapToScene(QPointF(x, y)))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=at)

    click(16 + 2 + 5, 16 + 2 + 5)  # inside the bottom-right tile of x̂_0's 2×2 grid
    assert panel.session.focus == 3
    assert np.array_equal(panel.shown_frame()[..., None], panel.session.trajectory.x_t[1][3])
    click(5, 5)  # any click brings the grid back
    assert panel.session.focus is None and np.array_equal(panel.shown_frame()[..., None], batch_grid(panel.session.trajectory.x_t[1]))


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    """A tiny two-moons model with T = 20 (the bundled digits model has another T)."""
    folder = tmp_path_factory.mktemp("moons") / "moons"
    assert cli_main(["train", "--data", "two_moons", "--steps", "30", "--batch-size", "64", "--timesteps", "20",
                     "--hidden", "32", "--output", str(folder)]) == 0
    return open_model(folder)


def test_a_two_dimensional_model_shows_a_point_cloud(window, qtbot, moons):
    window.state.set_model(moons)
    panel = window.sampling
    assert panel.settings.run_form["num"].value() == 1000  # a distribution, not a handful of points
    settle(panel, sampler="ddpm", steps=20, num=50)
    run_to_end(panel, qtbot)
    assert panel.views.currentIndex() == 1 and panel.session.trajectory.x_t.shape == (21, 50, 2)
    panel.timeline.slider.setValue(4)
    assert np.allclose(panel.shown_frame(), panel.session.trajectory.x_t[4])
    assert len(panel.references["x_t"].data) == 2000  # the training data behind the cloud…
    assert len(panel.references["pred_eps"].data) == 0  # …but not behind the predicted noise
    view = panel.point_plots["x_t"].viewRange()
    assert -4 < view[0][0] < -3 and 3 < view[0][1] < 4  # fitted to N(0, I) and the moons, not ±20


def shown_while_running(panel, qtbot):
    """The view kind and the √ᾱ_t strip's T at every live preview of one run."""
    seen = []
    panel.session.previewed.connect(lambda *_: seen.append((panel.views.currentIndex(), panel.schedule_curve.getData()[0].max())))
    run_to_end(panel, qtbot)
    return seen


def test_the_views_and_schedule_strip_follow_the_model_from_the_first_preview(window, qtbot, moons, default_model):
    panel = window.sampling
    window.state.set_model(moons)  # opened, nothing sampled yet: the point views and its strip at once
    assert panel.views.currentIndex() == 1 and panel.schedule_curve.getData()[0].max() == 20
    settle(panel, sampler="ddim", steps=5, num=20)
    assert set(shown_while_running(panel, qtbot)) == {(1, 20)}
    window.state.set_model(default_model)  # the points stay until the next run starts…
    settle(panel, sampler="ddim", steps=5, num=2)
    T = default_model.schedule_config.timesteps
    assert set(shown_while_running(panel, qtbot)) == {(0, T)}  # …which shows images from its first preview
    window.state.set_model(moons)
    settle(panel, sampler="ddim", steps=5, num=20)
    assert set(shown_while_running(panel, qtbot)) == {(1, 20)}


def test_the_gif_dialog_numbers_frames_as_the_timeline_does(qtbot):
    dialog = GifDialog(51)
    qtbot.addWidget(dialog)
    assert (dialog.start.value(), dialog.stop.value()) == (1, 51)  # "frame 1 of 51" … "frame 51 of 51"
    assert (dialog.options().start, dialog.options().stop) == (0, 51)
    dialog.start.setValue(21)
    dialog.stop.setValue(30)
    options = dialog.options()
    assert list(range(51))[options.start:options.stop] == list(range(20, 30))  # frames 21…30, both shown
    dialog.start.setValue(40)
    assert dialog.stop.value() == 40  # never ends before it starts


def test_a_comparison_shows_a_row_per_run_scrubbed_together_in_t(window, qtbot, moons):
    window.state.set_model(moons)
    panel = window.sampling
    settle(panel, sampler="ddim", steps=4, num=30)
    panel.add_run()
    settle(panel, sampler="heun", steps=10, num=30)
    panel.add_run()
    assert panel.compare_list.count() == 2 and panel.compare_button.isEnabled()
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running and len(panel.session.runs) == 2, timeout=60_000)
    assert panel.views.currentWidget() is panel.comparison_view
    coarse, fine = panel.session.trajectories
    assert np.array_equal(coarse.x_t[0], fine.x_t[0])  # one x_T
    assert all(run.distance is not None for run in panel.session.runs)  # measured against the moons
    only_fine = next(k for k, t in enumerate(panel.session.times) if t not in coarse.timesteps)
    panel.timeline.slider.setValue(only_fine)  # a stop of the shared timeline that only the finer run visits
    t = panel.session.t
    assert t in fine.timesteps and len(panel.session.times) > len(coarse)
    for row, trajectory in enumerate((coarse, fine)):
        assert np.allclose(panel.comparison_view.shown(row), trajectory.x_t[trajectory.frame_at(t)])
    panel.timeline.slider.setValue(panel.timeline.slider.maximum())
    assert np.allclose(panel.comparison_view.shown(0), coarse.x_t[-1])
    assert panel.comparison_view.quality_points.data.size == 2  # distance against NFE, a point per run
    settle(panel, sampler="ddim", steps=3, num=5)
    run_to_end(panel, qtbot)  # a single run goes back to the three views
    assert panel.views.currentIndex() == 1 and panel.session.runs == []


@pytest.mark.parametrize("compared", [True, False], ids=["a-comparisons-row", "a-single-run"])
def test_forking_at_the_playhead_adds_a_row_with_its_parents_prefix(window, qtbot, moons, compared):
    """Fork a row of a comparison, or a single run (which then becomes the first of two rows)."""
    window.state.set_model(moons)
    panel = window.sampling
    settle(panel, sampler="ddpm", steps=20, num=40)
    if compared:
        panel.add_run()
        panel.compare()
        qtbot.waitUntil(lambda: not panel.running and len(panel.session.runs) == 1, timeout=60_000)
    else:
        run_to_end(panel, qtbot)
        assert panel.views.currentIndex() == 1 and panel.session.runs == []
    assert panel.fork_button.isEnabled() and panel.fork_row.count() == 1
    panel.timeline.slider.setValue(8)  # t = 12 of the parent's 20 frames
    t = panel.session.t
    settle(panel, sampler="ddim", steps=4, num=40, seed=9)
    qtbot.mouseClick(panel.fork_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running and len(panel.session.runs) == 2, timeout=60_000)
    parent, fork = panel.session.trajectories
    above = parent.timesteps > t
    assert np.array_equal(fork.x_t[: above.sum()], parent.x_t[above]) and fork.timesteps[above.sum()] == t
    assert panel.fork_row.count() == 2 and len(panel.comparison_view.items) == 2
    assert panel.views.currentWidget() is panel.comparison_view
    assert panel.comparison_view.quality_points.data.size == 2  # both measured against the moons


def test_a_comparisons_gif_shows_every_row_at_each_stop_of_the_shared_timeline(window, qtbot, moons, tmp_path):
    window.state.set_model(moons)
    panel = window.sampling
    for sampler, steps in (("ddim", 4), ("ddim", 10)):
        settle(panel, sampler=sampler, steps=steps, num=30)
        panel.add_run()
    panel.compare()
    qtbot.waitUntil(lambda: not panel.running and len(panel.session.runs) == 2, timeout=60_000)
    path = tmp_path / "compare.gif"
    with qtbot.waitSignal(panel.exported, timeout=60_000):
        panel.export_gif(path, GifOptions(labels=True))
    with Image.open(path) as gif:
        # a frame per stop of the shared timeline (Pillow merges stops that draw the same picture):
        # more than the 4-step run's 5 frames, so its row holds its frame while the other moves on
        assert 10 <= gif.n_frames <= len(panel.session.times) == 13
        one_row = comparison_frame(panel.session.trajectories[:1], ["x"], 0, with_x0=False)
        assert gif.size[0] >= one_row.shape[1] and gif.size[1] > 1.8 * one_row.shape[0]  # two rows
    recorded = read_metadata(path)
    assert recorded["kind"] == "compare" and [(r["steps"], r["label"]) for r in recorded["runs"]] == [
        (4, "DDIM 4 steps"), (10, "DDIM 10 steps")]


def test_the_strip_shows_the_marginals_check_against_the_forward_process(panel, qtbot):
    settle(panel, steps=8, num=6)
    run_to_end(panel, qtbot)
    strip = panel.strip_kind
    strip.setCurrentIndex(strip.findData("std"))
    assert not panel.schedule_curve.isVisible()
    qtbot.waitUntil(lambda: panel.forward_curve.getData()[0] is not None and len(panel.forward_curve.getData()[0]) > 0,
                    timeout=20_000)
    t, std = panel.marginal_curves[0].getData()
    moments = panel.session.trajectory.moments
    np.testing.assert_allclose(std, moments[:, 1])
    assert std[0] == pytest.approx(1.0, abs=0.1)  # x_T ~ N(0, I), at full precision (not clipped to [−1, 1])
    forward_t, forward_std = panel.forward_curve.getData()
    assert len(forward_t) == panel.state.model.schedule_config.timesteps + 1
    assert forward_std[0] < 0.8 < forward_std[-1]  # the digits' spread at t = 0, 1 at t = T
    strip.setCurrentIndex(strip.findData("signal"))
    assert panel.schedule_curve.isVisible() and len(panel.forward_curve.getData()[0] or []) == 0
