"""The 2-D lab in the real window: drawing with the mouse, runs scrubbed by the timeline, the field
and the marginals drawn, training from the lab with live previews."""

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from diffusion_studio.gui.lab_panel import arrow_segments, path_lines
from diffusion_studio.gui.training_panel import SETTINGS_KEY


@pytest.fixture
def lab(window, qtbot):
    window.resize(1280, 800)
    window.show()
    window.tabs.setCurrentWidget(window.lab)
    qtbot.waitExposed(window)
    return window.lab


def on_screen(lab, x: float, y: float):
    """Where the plot's point (x, y) lies in the view's viewport."""
    view = lab.view
    return view.mapFromScene(lab.plot.vb.mapViewToScene(QPointF(x, y)))


def choose(lab, data: str) -> None:
    lab.data_choice.setCurrentIndex(lab.data_choice.findData(data))
    lab.data_choice.activated.emit(lab.data_choice.currentIndex())


def test_the_lab_opens_on_the_swiss_roll_with_fitted_square_axes(lab):
    assert lab.session.data_name == "swiss_roll"
    (x0, x1), (y0, y1) = lab.plot.vb.viewRange()
    assert x0 <= lab.session.bounds[0] + 1e-6 and lab.session.bounds[1] - 1e-6 <= x1
    assert y0 < -2 and y1 > 2 and (x1 - x0) < 12  # the roll (±2.5) and N(0, I) fill the view, not ±20
    assert not lab.run_button.isEnabled()  # no model yet
    assert lab.train_steps.value() == lab.session.recipe().training.steps


def test_drawing_points_with_the_mouse_makes_a_data_set_of_that_many(lab, qtbot):
    choose(lab, "drawing")
    assert lab.drawing_area.isVisible()
    viewport = lab.view.viewport()
    marks = [(-1.0, 0.0), (-0.5, 0.5), (0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    first, *rest = [on_screen(lab, x, y) for x, y in marks]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, first)
    for point in rest:
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rest[-1])
    assert lab.session.data.shape == (5, 2)
    np.testing.assert_allclose(lab.session.data, marks, atol=0.1)
    assert lab.data_item.data.size == 5
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, on_screen(lab, 2.0, 2.0))
    assert len(lab.session.data) == 6
    qtbot.mouseClick(lab.undo_button, Qt.MouseButton.LeftButton)
    assert len(lab.session.data) == 5
    qtbot.mouseClick(lab.clear_button, Qt.MouseButton.LeftButton)
    assert len(lab.session.data) == 0


def test_a_run_of_the_exact_denoiser_is_scrubbed_by_the_timeline(lab, qtbot):
    choose(lab, "eight_gaussians")
    lab.exact.setChecked(True)
    assert lab.run_button.isEnabled()
    lab.num.setValue(300)
    lab.steps.setValue(25)
    qtbot.mouseClick(lab.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: lab.session.runs is not None and not lab.busy, timeout=20_000)
    session = lab.session
    assert lab.timeline.slider.isEnabled() and lab.timeline.slider.maximum() == len(session.times) - 1
    start = lab.cloud_items["sde"].data["x"].copy()
    assert len(start) == 300
    lab.timeline.slider.setValue(lab.timeline.slider.maximum())  # drag the timeline to the end: t = 0
    assert session.t == 0
    end = np.stack([lab.cloud_items["sde"].data["x"], lab.cloud_items["sde"].data["y"]], axis=1)
    np.testing.assert_allclose(end, session.runs.sde.x_t[-1])
    assert not np.allclose(start, end[:, 0])
    # the particles' paths run from x_T to here; the arrows of the exact denoiser match the exact ones
    x, _ = lab.path_items["sde"].getData()
    assert np.isfinite(x).sum() == session.paths * len(session.runs.sde)
    learned, exact = lab.arrow_items["learned"].getData(), lab.arrow_items["exact"].getData()
    assert len(learned[0]) > 0
    np.testing.assert_allclose(learned[0], exact[0], atol=1e-4)
    # the marginals are drawn, with the forward process's
    assert len(lab.marginal_curves["std", "q"].getData()[0]) > 0
    assert len(lab.marginal_curves["std", "sde"].getData()[0]) == len(session.runs.sde)


def test_training_from_the_lab_shows_previews_and_opens_the_model(lab, qtbot, window, tmp_path):
    window.preferences.set_value(SETTINGS_KEY, json.dumps({"runs_folder": str(tmp_path)}))  # the Training panel's
    choose(lab, "two_moons")
    lab.train_steps.setValue(300)
    previews = []
    lab.training.progressed.connect(lambda update: update.preview is not None and previews.append(update.preview_step))
    qtbot.mouseClick(lab.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: lab.session.model is not None, timeout=300_000)
    assert previews and previews[0] > 0
    assert window.state.model is lab.session.model and lab.session.model.data == "two_moons"
    assert lab.run_button.isEnabled()
    source = Path(lab.session.model.source)
    assert source.parent == tmp_path and source.name.startswith("two_moons-")  # in the Training panel's runs folder


def test_arrows_and_paths_geometry():
    points, vectors = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])
    segments = arrow_segments(points, vectors, 2.0)
    assert segments.shape == (6, 2)
    np.testing.assert_allclose(segments[:2], [[0, 0], [2, 0]])  # the shaft
    assert segments[3, 0] < 2 and segments[3, 1] * segments[5, 1] < 0  # head strokes back and to both sides
    lines = path_lines(np.zeros((4, 3, 2)))
    assert lines.shape == (15, 2) and np.isnan(lines[4::5]).all()
