"""The Inpainting panel: the mouse paints the mask, a run keeps the known pixels, the timeline scrubs."""

import time

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from diffusion_studio.core.data.images import to_uint8
from diffusion_studio.core.export import batch_grid
from diffusion_studio.core.loaded_model import LoadedModel, open_model
from diffusion_studio.core.provenance import read_metadata
from tests.core.points import points_model
from tests.gui.conftest import drop

A = torch.linspace(-0.9, 0.9, 64).reshape(1, 8, 8)


@pytest.fixture(scope="module")
def tiny():
    """An 8×8 gray model that knows two pictures (exact, untrained: tests.core.points)."""
    return points_model(torch.stack([A, -A.flip(-1)]))


@pytest.fixture
def panel(window, qtbot, tiny):
    window.state.set_model(tiny)
    window.resize(1280, 800)
    window.show()
    window.tabs.setCurrentWidget(window.inpainting)
    qtbot.waitExposed(window)
    panel = window.inpainting
    qtbot.waitUntil(lambda: panel.session.image is not None and panel.image_item.image is not None, timeout=5000)
    return panel


def on_screen(panel, x: float, y: float) -> QPoint:
    """Where pixel coordinate (x, y) of the image lies in the editor's viewport."""
    view = panel.editor.canvases["image"]
    return view.mapFromScene(panel.mask_item.mapToScene(QPointF(x, y)))


def stroke(panel, points, button=Qt.MouseButton.LeftButton) -> None:
    viewport = panel.editor.canvases["image"].viewport()
    first, *rest = [on_screen(panel, x, y) for x, y in points]
    QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, first)
    for point in rest:
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, rest[-1] if rest else first)


def test_the_panel_opens_on_a_held_out_digit_fitted_to_the_model(panel):
    assert panel.session.name == "held-out digit 1" and panel.session.image.shape == (8, 8, 1)
    assert "8×8" in panel.image_label.text() and not panel.run_button.isEnabled()  # nothing to fill yet
    panel.digit.setValue(7)
    assert panel.session.name == "held-out digit 7"


def test_a_mouse_stroke_paints_the_pixels_under_it_and_the_right_button_erases(panel, qtbot):
    """Strokes run along pixel edges, so that every pixel is well inside or well outside the brush."""
    panel.radius.setValue(1)
    stroke(panel, [(1.0, 3.0), (3.5, 3.0), (6.0, 3.0)])  # along the edge between rows 2 and 3
    expected = np.zeros((8, 8), bool)
    expected[2:4, 0:7] = True  # every pixel the brush passed over: none skipped between moves
    assert np.array_equal(panel.session.mask, expected)
    assert np.array_equal(panel.shown_frame("mask")[..., 3] > 0, expected)  # the overlay shows it
    assert panel.mask_label.text() == "14 of 64 pixels to fill" and panel.run_button.isEnabled()
    stroke(panel, [(4.0, 3.0)], button=Qt.MouseButton.RightButton)  # a right click erases under the brush
    expected[2:4, 3:5] = False
    assert np.array_equal(panel.session.mask, expected)
    panel.erase_mode.setChecked(True)  # Erase mode: the left button erases too
    stroke(panel, [(0.0, 3.0), (8.0, 3.0)])
    assert not panel.session.mask.any() and not panel.run_button.isEnabled()
    panel.paint_mode.setChecked(True)
    stroke(panel, [(4.0, 4.0)])
    assert panel.session.mask.sum() == 4
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    assert not panel.session.mask.any()


def test_a_run_keeps_the_known_pixels_and_the_timeline_scrubs_it(panel, qtbot, tmp_path):
    panel.session.set_image(A.numpy().transpose(1, 2, 0), "A")
    panel.radius.setValue(2)
    stroke(panel, [(6.0, 0.0), (6.0, 8.0)])  # the right half
    fill = panel.session.mask.copy()
    assert fill[:, 4:].all() and not fill[:, :4].any()
    panel.settings.sampler_form["sampler"].widget.setCurrentIndex(panel.settings.sampler_form["sampler"].widget.findData("ddpm"))
    panel.settings.run_form["steps"].widget.setValue(10)
    panel.run_button.click()
    assert panel.running and panel.stop_button.isEnabled() and not panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.running and panel.session.trajectory is not None, timeout=30_000)
    trajectory, final = panel.session.trajectory, panel.session.final
    assert len(trajectory) == 11 and final.shape == (4, 1, 8, 8)
    keep = ~fill
    assert np.array_equal(final[:, 0][:, keep], np.broadcast_to(A[0].numpy()[keep], (4, keep.sum())))
    assert (trajectory.x_t[-1][..., 0][:, keep] == to_uint8(A[0].numpy())[keep]).all()  # the stored frames too
    assert np.allclose(final[:, 0][:, fill], A[0].numpy()[fill], atol=0.05)  # the known half decided the fill
    assert panel.timeline.slider.maximum() == 10 and panel.timeline.slider.value() == 10
    for k in (0, 4, 10):
        panel.timeline.slider.setValue(k)
        assert np.array_equal(panel.shown_frame("x_t")[..., None], batch_grid(trajectory.x_t[k]))
        assert np.array_equal(panel.shown_frame("pred_x0")[..., None], batch_grid(trajectory.pred_x0[k]))
        assert (f"t = {trajectory.timesteps[k]}" if k < 10 else "the results") in panel.timeline.label.text()
    qtbot.keyClick(panel, Qt.Key.Key_Home)
    assert panel.timeline.slider.value() == 0
    assert panel.save_result(tmp_path / "strip.png")
    assert Image.open(tmp_path / "strip.png").size == (6 * 8 + 5 * 2, 8)
    recorded = read_metadata(tmp_path / "strip.png")
    assert recorded["kind"] == "inpaint" and recorded["runs"][0]["inpainted_pixels"] == fill.sum()
    assert (recorded["runs"][0]["sampler"], recorded["runs"][0]["steps"]) == ("ddpm", 10)


def test_stop_ends_a_run_and_shows_what_it_recorded(panel, qtbot):
    panel.session.paint((4.0, 4.0), 2.0)
    panel.run_button.click()  # DDPM over all 50 steps
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert panel.run_button.isEnabled()


def test_closing_the_window_mid_run_stops_it_within_a_step(window, qtbot, panel):
    window.state.set_model(open_model("default"))  # 1000 DDPM steps of the bundled U-Net: a minute here
    panel.session.paint((8.0, 8.0), 3.0)
    panel.run()
    qtbot.waitUntil(lambda: panel.progress.value() >= 2, timeout=30_000)
    started = time.monotonic()
    window.close()  # the window waits for the worker's thread to end
    assert time.monotonic() - started < 5 and not panel.running


def test_an_image_dropped_on_this_tab_is_the_image_to_inpaint(window, panel, qtbot, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((30, 40), 255, np.uint8)).save(path)
    drop(window, path)
    qtbot.waitUntil(lambda: panel.session.name == "photo.png", timeout=5000)
    assert window.tabs.currentWidget() is panel and np.allclose(panel.session.image, 1.0)
    assert len(window.forward.session.images) == 1  # not the Forward panel's
    (tmp_path / "notes.png").write_text("not an image")
    errors = []
    panel.failed.connect(lambda title, message: errors.append(message))
    drop(window, tmp_path / "notes.png")
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert "notes.png" in errors[0] and panel.session.name == "photo.png"  # nothing lost
    window.error_box.close()  # a window-modal box left open would hold the mouse from later tests' windows


def test_a_model_of_points_cannot_be_painted_on(window, panel, tiny):
    points = LoadedModel(tiny.network, tiny.schedule_config, "eps", (2,), "points", "")
    panel.session.paint((4.0, 4.0), 2.0)
    window.state.set_model(points)
    assert "needs an image model" in panel.model_box.label.text() and not panel.run_button.isEnabled()


def test_the_brush_outline_follows_the_pointer(panel, qtbot):
    panel.radius.setValue(3)
    viewport = panel.editor.canvases["image"].viewport()
    QTest.mouseMove(viewport, on_screen(panel, 2.0, 5.0))
    qtbot.waitUntil(lambda: panel.mask_item.outline.isVisible(), timeout=2000)
    outline = panel.mask_item.outline.rect()
    assert outline.center().x() == pytest.approx(2.0, abs=0.05) and outline.center().y() == pytest.approx(5.0, abs=0.05)
    assert outline.width() == pytest.approx(6.0)
