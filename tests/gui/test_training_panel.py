import json
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication

from diffusion_studio.core.checkpoint import load_checkpoint
from diffusion_studio.core.control import RunControl
from diffusion_studio.core.models import parameter_count
from diffusion_studio.core.models.presets import PRESETS, NetworkSize, model_config_for
from diffusion_studio.core.devices import available_devices
from diffusion_studio.core.recipes import IMAGE_RECIPE, RECIPE_SETTINGS, recipe_for
from diffusion_studio.gui.training_plots import log_ticks

from tests.gui.child_process import run_child
from tests.gui.conftest import drop, write_image
from tests.gui.training_run import configure

SCRIPT = Path(__file__).with_name("training_run.py")


def finish(qtbot, panel, timeout=60_000):
    qtbot.waitUntil(lambda: not panel.running, timeout=timeout)


def start_long_run(qtbot, panel, tmp_path):
    """A run far too long to finish, once its first update has arrived (a hang guard, not a budget:
    at load 19 on 2 cores the first update took over 30 s)."""
    configure(panel, tmp_path, steps=1_000_000)
    panel.start()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=300_000)


def test_training_reports_progress_and_plots_every_loss(qtbot, window, tmp_path):
    panel = window.training
    configure(panel, tmp_path, steps=60, preview_every=20, save_every=25)
    threads = set()
    for event in (panel.session.started, panel.session.progressed, panel.session.saved, panel.session.finished):
        event.connect(lambda *_: threads.add(threading.current_thread()))
    panel.start()
    assert panel.running and not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    finish(qtbot, panel)
    assert threads == {threading.main_thread()}  # the session, and so the widgets, only on the UI thread
    steps, losses = panel.session.loss_curve()
    assert steps.tolist() == list(range(1, 61))  # one report per step on the CPU, all of them plotted
    np.testing.assert_array_equal(panel.plots.raw_curve.yData, losses)
    assert len(panel.plots.smooth_curve.yData) == 60 and np.all(np.isfinite(losses)) and np.all(losses > 0)
    assert panel.progress.value() == 60 == panel.progress.maximum()
    assert "images/s" in panel.rate.text()
    assert np.isfinite(panel.plots.buckets.opts["height"]).all() and len(panel.plots.buckets.opts["height"]) == 10
    assert panel.plots.preview_cloud.getData()[0].shape == (1000,)  # the 2-D preview: a cloud of EMA samples
    assert panel.plots.preview_title.text().startswith("EMA samples at step 60")
    checkpoint = load_checkpoint(panel.session.checkpoint)
    assert checkpoint.step == 60 and checkpoint.train_config.data == "swiss_roll"
    assert panel.session.checkpoint.parent == tmp_path / "runs" and panel.start_button.isEnabled()


def test_the_heatmap_shows_the_loss_by_t_of_every_report_kept(qtbot, window, tmp_path):
    panel = window.training
    axes = [panel.plots.heatmap_plot.getAxis(name) for name in ("left", "bottom")]
    assert panel.plots.heatmap.image is None and not any(axis.isVisible() for axis in axes)  # no axes before a run …
    title = panel.plots.heatmap_plot.getPlotItem().titleLabel.text
    assert not panel.plots.heatmap_bar.isVisible() and title == "Loss by t: from the first steps"
    configure(panel, tmp_path, steps=60)
    panel.start()
    finish(qtbot, panel)
    assert all(axis.isVisible() for axis in axes) and panel.plots.heatmap_bar.isVisible()  # … and labelled ones after
    assert [axis.labelText for axis in axes] == ["t", "training step"]
    steps, rows = panel.session.loss_by_t_history()
    assert steps.tolist() == list(range(1, 61))
    image = panel.plots.heatmap.image
    assert image.shape == (10, 60)  # a row per range of t, a column per report kept
    np.testing.assert_array_equal(image, np.log10(rows.T))  # the colour is log10 of the loss
    extent = panel.plots.heatmap.mapRectToParent(panel.plots.heatmap.boundingRect())
    assert (extent.left(), extent.right(), extent.top(), extent.bottom()) == (0, 60, 0, 50)  # steps 0…60, t 0…T
    assert panel.plots.heatmap_bar.levels() == pytest.approx((np.nanmin(image), np.nanmax(image)))


def test_the_colour_bar_ticks_read_as_the_loss_whatever_its_range():
    def labels(low, high):
        return [label for _, label in log_ticks(np.log10(low), np.log10(high))]

    assert labels(1e-3, 10) == ["0.001", "0.01", "0.1", "1", "10"]  # powers of ten when three or more fit
    assert labels(0.03, 1.2) == ["0.05", "0.1", "0.2", "0.5", "1"]  # 1, 2 and 5× them when fewer do
    assert labels(0.55, 1.1) == ["0.6", "0.7", "0.8", "0.9", "1"]  # 1…9× them over a short range
    assert labels(0.25, 0.29) == ["0.25", "0.29"]  # the ends when none of those fits twice


def test_the_loss_curve_exports_as_csv(qtbot, window, tmp_path):
    panel = window.training
    configure(panel, tmp_path, steps=8)
    panel.start()
    finish(qtbot, panel)
    panel.export_loss(tmp_path / "loss.csv")
    table = np.loadtxt(tmp_path / "loss.csv", delimiter=",", skiprows=1)
    steps, losses = panel.session.loss_curve()
    np.testing.assert_array_equal(table[:, 0], steps)
    np.testing.assert_allclose(table[:, 1], losses, rtol=1e-5)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    panel.export_loss(blocker / "loss.csv")  # a path that cannot be written
    assert "cannot save 'loss.csv'" in window.error_box.text()


def test_image_data_trains_a_unet_and_shows_the_preview_grid(qtbot, window, tmp_path):
    panel = window.training
    configure(panel, tmp_path, data="digits", steps=4, preview_every=2)
    panel.start()
    finish(qtbot, panel)
    assert panel.plots.previews.currentIndex() == 0
    assert panel.plots.preview_item.image.shape[:2] == (4 * 8 + 3 * 2, 4 * 8 + 3 * 2)  # 16 samples of 8×8 in a 4×4 grid
    assert load_checkpoint(panel.session.checkpoint).model_config.image_size == 8


def test_stop_ends_the_run_within_a_step_and_saves_it(qtbot, window, tmp_path):
    panel = window.training
    start_long_run(qtbot, panel, tmp_path)
    clicked = time.monotonic()
    panel.stop_button.click()
    finish(qtbot, panel, timeout=10_000)
    assert time.monotonic() - clicked < 5  # a tiny step takes milliseconds; the bound only catches a stop that is ignored
    saved = load_checkpoint(panel.session.checkpoint)
    assert 0 < saved.step < 1_000_000 and saved.step >= panel.progress.value()
    assert "Stopped at step" in window.statusBar().currentMessage()


def test_pause_holds_the_step_and_resume_goes_on(qtbot, window, tmp_path, monkeypatch):
    waiting = threading.Event()  # set when the worker, its step done, waits at the paused control
    should_stop = RunControl.should_stop

    def noting_the_wait(control):
        if control.paused:
            waiting.set()
        return should_stop(control)

    monkeypatch.setattr(RunControl, "should_stop", noting_the_wait)
    panel = window.training
    start_long_run(qtbot, panel, tmp_path)
    panel.pause_button.click()
    assert panel.pause_button.text() == "Resume"
    qtbot.waitUntil(waiting.is_set, timeout=60_000)
    QCoreApplication.processEvents()  # the updates the worker sent before it waited are shown
    held = panel.progress.value()
    qtbot.wait(300)
    assert panel.progress.value() == held
    panel.pause_button.click()
    qtbot.waitUntil(lambda: panel.progress.value() > held, timeout=60_000)
    panel.stop_button.click()
    finish(qtbot, panel)


def test_continue_goes_on_from_the_saved_step(qtbot, window, tmp_path):
    panel = window.training
    configure(panel, tmp_path, steps=30)
    panel.start()
    finish(qtbot, panel)
    first = panel.session.checkpoint
    assert not panel.continue_button.isEnabled()  # Steps is the checkpoint's step: nothing to continue to
    assert panel.continue_button.toolTip() == f"{first.name} is at step 30: set Steps above that to continue it"
    box = panel.train_form["steps"].widget
    box.lineEdit().selectAll()
    qtbot.keyClicks(box, "50")  # typed, not yet committed (Enter, or leaving the box)
    assert box.value() == 30 and panel.continue_button.isEnabled()
    assert panel.continue_button.toolTip().startswith(f"Train {first.name} on from step 30 up to Steps")
    box.setValue(50)
    panel.continue_button.click()
    finish(qtbot, panel)
    steps, _ = panel.session.loss_curve()
    assert steps.tolist() == list(range(1, 51))  # the curve goes on where it stopped
    assert panel.plots.heatmap.image.shape == (10, 50)  # and so does the loss by t
    assert panel.session.checkpoint == first and load_checkpoint(first).step == 50


def test_a_checkpoint_opened_from_disk_fills_the_form_and_continues(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.training
    configure(panel, tmp_path, data="two_moons", steps=10)
    panel.start()
    finish(qtbot, panel)
    folder = panel.session.checkpoint
    other = make_window()
    other.tabs.setCurrentWidget(other.training)
    drop(other, folder)  # a checkpoint dropped on the Training panel is one to continue
    qtbot.waitUntil(lambda: other.training.session.checkpoint == folder, timeout=20_000)
    assert other.training.data.currentData() == "two_moons" and other.state.schedule.config.timesteps == 50
    other.training.train_form["steps"].widget.setValue(15)
    other.training.continue_button.click()
    finish(qtbot, other.training)
    assert other.training.session.loss_curve()[0].tolist() == list(range(11, 16))


def test_sample_from_it_hands_the_model_to_the_sampling_panel(qtbot, window, tmp_path):
    panel = window.training
    configure(panel, tmp_path, steps=5)
    panel.start()
    finish(qtbot, panel)
    panel.sample_button.click()
    qtbot.waitUntil(lambda: window.state.model is not None and window.tabs.currentWidget() is window.sampling, timeout=20_000)
    assert Path(window.state.model.source) == panel.session.checkpoint and window.state.model.sample_shape == (2,)


def test_closing_the_window_mid_training_stops_and_keeps_the_checkpoint(qtbot, window, tmp_path):
    panel = window.training
    start_long_run(qtbot, panel, tmp_path)
    output = panel.session.output
    window.close()  # waits for the worker, which saves
    qtbot.waitUntil(lambda: not panel.running, timeout=1000)
    assert 0 < load_checkpoint(output).step < 1_000_000


@pytest.mark.parametrize("mode", ["close", "flood"])
def test_the_app_exits_cleanly_and_survives_thousands_of_signals(tmp_path, mode):
    """In a child process, as an abort would take pytest down: 'close' closes the window mid-run;
    'flood' sends every one of 3,000 steps' progress as its own signal, then ends normally."""
    result = run_child([str(SCRIPT), mode, str(tmp_path)])  # however long it takes, while it goes on
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "QThread: Destroyed" not in result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if mode == "flood":
        assert report["updates"] >= 3000 and report["step"] == 3000
    else:
        assert 0 < report["step"] < 1_000_000


def test_a_folder_without_images_is_a_clear_message_and_the_panel_stays_idle(qtbot, window, tmp_path):
    panel = window.training
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    configure(panel, tmp_path)
    window.tabs.setCurrentWidget(panel)
    drop(window, empty)
    assert panel.data.currentData() == "folder" and panel.folder.text() == str(empty)
    panel.start()
    finish(qtbot, panel)
    assert "holds no image files" in window.error_box.text()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_image_folder_trains_and_skips_broken_files(qtbot, window, tmp_path):
    panel = window.training
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        write_image(images / f"{i}.png", seed=i)
    (images / "broken.png").write_bytes(b"not a png")
    configure(panel, tmp_path, data="folder", steps=3)
    panel.folder.setText(str(images))
    panel.start()
    finish(qtbot, panel)
    assert [name for name, _ in panel.session.info.skipped] == ["broken.png"]
    checkpoint = load_checkpoint(panel.session.checkpoint)
    assert checkpoint.step == 3 and checkpoint.model_config.in_channels == 3


def test_settings_persist_between_launches(make_window, tmp_path):
    first = make_window()
    configure(first.training, tmp_path, data="checkerboard", steps=1234)
    first.training.advanced.setChecked(True)
    levels = first.training.size_form["channel_mults"].widget
    levels.setText("1,2,4")
    levels.editingFinished.emit()
    first.close()
    second = make_window().training
    assert second.data.currentData() == "checkerboard" and second.train_form["steps"].value() == 1234
    assert second.train_form["learning_rate"].value() == pytest.approx(0.001) and second.advanced.isChecked()
    assert second.network_size() == NetworkSize(8, (1, 2, 4), 1, None, 0.1, 1, 32, 1)
    assert second.preset.currentData() == "custom" and second.runs_folder.text() == str(tmp_path / "runs")


def test_devices_and_presets_show_what_this_machine_has(qtbot, window):
    window.show()
    window.tabs.setCurrentWidget(window.training)
    panel = window.training
    device = panel.train_form["device"].widget
    qtbot.waitUntil(lambda: device.count() > 1, timeout=20_000)
    assert [device.itemData(i) for i in range(device.count())] == ["auto", *available_devices()]
    panel.data.setCurrentIndex(panel.data.findData("digits"))
    panel.image_size.setValue(16)
    for i, name in enumerate(PRESETS):
        count = parameter_count(model_config_for(PRESETS[name], (1, 16, 16)))
        assert f"{count / 1e6:.2f}M parameters" in panel.preset.itemText(i)
    panel.preset.setCurrentIndex(panel.preset.findData("small"))
    assert panel.parameters.text() == "1,623,169 parameters"  # the bundled model's size


def test_unreadable_stored_settings_fall_back_to_the_first_launch_ones(make_window, settings_file):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(settings_file), QSettings.Format.IniFormat)
    settings.setValue("training/settings", json.dumps({"image_size": "big", "training": {"steps": "many"}}))
    settings.sync()
    panel = make_window().training
    assert panel.train_form["steps"].value() == 5000 and panel.image_size.value() == 16 and panel.data.currentData() == "digits"


def pick(panel, key):
    """Choose the data as a user does: Qt moves the combo to the item and emits activated (a program's
    setCurrentIndex, as restoring settings does, emits only currentIndexChanged)."""
    panel.data.setCurrentIndex(panel.data.findData(key))
    panel.data.activated.emit(panel.data.currentIndex())


def test_picking_the_data_applies_its_recipe_and_edits_stay_until_the_data_changes(qtbot, window):
    panel = window.training
    window.show()
    window.tabs.setCurrentWidget(panel)
    pick(panel, "swiss_roll")
    roll = recipe_for("swiss_roll")
    assert panel.state.schedule.config == roll.schedule and panel.schedule_form.form.values() == asdict(roll.schedule)
    assert {name: panel.train_config().__getattribute__(name) for name in RECIPE_SETTINGS} == roll.settings()
    assert (panel.network_size().hidden, panel.network_size().num_layers) == (roll.size.hidden, roll.size.num_layers)
    assert window.statusBar().currentMessage() == f"Applied the {roll.summary()}"
    panel.train_form["steps"].set_value(123)  # the user edits a field and the schedule …
    panel.state.update_schedule(timesteps=70)
    pick(panel, "swiss_roll")  # … and picking the same data again keeps both
    assert panel.train_form["steps"].value() == 123 and panel.state.schedule.timesteps == 70
    pick(panel, "digits")
    assert panel.state.schedule.config == IMAGE_RECIPE.schedule and panel.train_form["steps"].value() == 5000
    assert panel.network_size() == IMAGE_RECIPE.size and panel.preset.currentData() == "small"
    panel.data.setCurrentIndex(panel.data.findData("checkerboard"))  # a program's change (restoring settings) …
    assert panel.state.schedule.config == IMAGE_RECIPE.schedule  # … applies no recipe


def test_short_runs_have_whole_step_ticks(window):
    for plot in (window.training.plots.loss_plot, window.training.plots.heatmap_plot):
        axis = plot.getAxis("bottom")
        levels = axis.tickValues(0, 3, 400)  # the range a run of 3 steps shows
        ticks = [value for _, values in levels for value in values]
        assert ticks == [0, 1, 2, 3] and axis.tickStrings(ticks, 1, levels[0][0]) == ["0", "1", "2", "3"]


def test_a_schedule_that_ends_far_from_noise_is_warned_about_for_images_too(qtbot, window):
    panel = window.training
    window.show()
    window.tabs.setCurrentWidget(panel)
    pick(panel, "digits")
    assert panel.schedule_warning.isHidden()
    panel.state.update_schedule(name="sigmoid", timesteps=50)
    assert panel.schedule_warning.isVisible() and "ᾱ_T = 0.60" in panel.schedule_warning.text()
    assert "is mostly signal" in panel.schedule_warning.text()


def test_a_schedule_that_fails_on_points_is_warned_about_where_it_is_picked(qtbot, window):
    panel = window.training
    window.show()
    window.tabs.setCurrentWidget(panel)
    pick(panel, "two_moons")
    assert panel.schedule_warning.isHidden()
    panel.state.update_schedule(name="cosine")
    assert panel.schedule_warning.isVisible() and "cosine T=100 on 2-D points" in panel.schedule_warning.text()
    assert window.statusBar().currentMessage().startswith("Warning: cosine T=100 on 2-D points")
    pick(panel, "digits")  # the image recipe's schedule; and images are never warned about
    panel.state.update_schedule(name="cosine")
    assert panel.schedule_warning.isHidden()
