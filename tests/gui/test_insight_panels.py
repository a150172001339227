"""The "Your image" and Bound panels in the window, on an exact 8×8 model with T = 30."""

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from diffusion_studio.core.schedules import make_schedule
from tests.core.exact import OnePoint, loaded
from tests.gui.conftest import drop

SCHEDULE = make_schedule("linear", 30, 1e-3, 0.2)


def exact_model():
    point = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 1, 8, 8)).astype(np.float32))
    return loaded(OnePoint(SCHEDULE, point), SCHEDULE, (1, 8, 8))


def test_your_image_shows_the_round_trip_at_t_and_inverts(window, qtbot, tmp_path):
    panel = window.round_trip
    window.state.set_model(exact_model())
    assert panel.session.image is None  # a hidden panel puts nothing through the model
    window.show()
    window.tabs.setCurrentWidget(panel)
    assert panel.error_plot.getViewBox().viewRange()[0] == [0, 30]  # before the error curves come: all of t
    qtbot.waitUntil(lambda: panel.session.trip is not None and panel.session.errors is not None, timeout=10_000)
    assert panel.session.name == "held-out digit 1" and panel.session.image.shape == (1, 8, 8)
    assert panel.t_slider.maximum() == 30 and len(panel.x0_curve.getData()[0]) == 30
    panel.t_slider.setValue(20)
    qtbot.waitUntil(lambda: panel.session.trip.t == 20, timeout=10_000)
    assert panel.trip_views.items["x_t"].image.shape == (8, 8) and "t = 20" in panel.trip_views.titles["x_t"].text()

    panel.invert_steps.setValue(10)
    panel.invert_button.click()
    qtbot.waitUntil(lambda: panel.session.inverted is not None and not panel.runner.running, timeout=10_000)
    assert panel.result_views.items["reconstruction"].image is not None and "RMS error" in panel.result_label.text()
    panel.denoise_button.click()
    qtbot.waitUntil(lambda: panel.session.denoised is not None and not panel.runner.running, timeout=10_000)
    assert panel.session.denoised.t == 20 and "t = 20" in panel.result_views.titles["denoised"].text()

    picture = tmp_path / "mine.png"
    Image.fromarray(np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))).save(picture)
    drop(window, picture)  # dropped on this tab: through the model, not to the forward panel
    qtbot.waitUntil(lambda: panel.session.name == "mine.png", timeout=10_000)
    assert panel.session.inverted is None and window.tabs.currentWidget() is panel


def test_the_bound_panel_fills_the_terms_and_saves_them(window, qtbot, tmp_path, monkeypatch):
    panel = window.bound
    window.tabs.setCurrentWidget(panel)
    window.state.set_model(exact_model())
    panel.num.setValue(3)
    panel.measure_button.click()
    qtbot.waitUntil(lambda: panel.session.summary is not None and not panel.runner.running, timeout=20_000)
    assert panel.progress.value() == 30 and "bits/dim</b> on 3 images of digits (held-out)" in panel.readout.text()
    t, sums = panel.sum_curve.getData()
    assert len(t) == 30 and sums[-1] == pytest.approx(panel.session.summary.total - panel.session.summary.prior)
    target = tmp_path / "terms.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    panel.save_button.click()
    assert target.read_text().splitlines()[0] == "term,t,bits_per_dim" and len(target.read_text().splitlines()) == 33


def test_newest_only_runs_the_first_request_and_then_only_the_newest(qtbot):
    import threading

    from diffusion_studio.gui.tasks import NewestOnly, TaskRunner

    runner, release, ran, done = TaskRunner(), threading.Event(), [], []
    newest = NewestOnly(runner)

    def make(n):
        def work():
            if n == 1:
                release.wait(5)
            ran.append(n)
            return n
        return work

    for n in (1, 2, 3, 4):
        newest.request(lambda n=n: make(n), done.append, done.append)
    release.set()
    qtbot.waitUntil(lambda: done == [1, 4], timeout=5000)
    runner.wait()
    assert ran == [1, 4]
