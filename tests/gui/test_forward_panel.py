import numpy as np
import pytest
from PIL import Image

from diffusion_studio.core.data.images import load_image, load_images, to_uint8
from diffusion_studio.gui.forward_panel import SAMPLE_IMAGE
from tests.gui.conftest import drop, write_image


def shown(item) -> np.ndarray:
    return np.asarray(item.image)


def test_window_opens_with_the_sample_image(window):
    panel = window.forward
    assert [image.name for image in panel.session.images] == ["sample"]
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == [
        "Forward process", "Schedules", "Training", "Sampling", "Inpainting", "Your image", "Bound", "2-D lab"]
    expected = to_uint8(load_image(SAMPLE_IMAGE, max_side=512))
    assert np.array_equal(shown(panel.images_items["x0"]), expected)
    assert shown(panel.images_items["xt"]).shape == (512, 512, 3)


@pytest.mark.parametrize("size", [(1280, 800), (1024, 600)])
def test_x_t_takes_most_of_the_window_height(window, qtbot, size):
    """x_t, the panel's subject, is drawn at least half the window's height tall (three images in a row
    were held to a third of it by the width); x_0 and ε, its two terms, stand beside it at half its size."""
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    panel = window.forward

    def on_screen_height(key: str) -> float:
        item = panel.images_items[key]
        return panel.views.canvases[key].mapFromScene(item.sceneBoundingRect()).boundingRect().height()

    qtbot.waitUntil(lambda: on_screen_height("xt") > 0.5 * size[1] - 60)  # 60: the menu, tab and status bars
    qtbot.waitUntil(lambda: 0.35 < on_screen_height("x0") / on_screen_height("xt") < 0.6)
    assert on_screen_height("eps") == pytest.approx(on_screen_height("x0"), abs=2)


def test_dropping_an_image_file_loads_and_shows_it(window, qtbot, tmp_path):
    path = write_image(tmp_path / "photo.png", size=(48, 32))
    drop(window, path)
    qtbot.waitUntil(lambda: len(window.forward.session.images) == 2, timeout=5000)
    panel = window.forward
    assert panel.session.images[-1].name == "photo.png"
    assert panel.thumbnails.currentRow() == 1
    assert np.array_equal(shown(panel.images_items["x0"]), np.asarray(Image.open(path)))
    assert shown(panel.images_items["xt"]).shape == (32, 48, 3)


def test_dropping_a_folder_loads_its_images_and_reports_the_bad_ones(window, qtbot, tmp_path):
    for i in range(3):
        write_image(tmp_path / f"im{i}.png", seed=i)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    drop(window, tmp_path)
    qtbot.waitUntil(lambda: len(window.forward.session.images) == 4, timeout=5000)
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=2000)
    assert "broken.png" in window.error_box.text() and "3 image(s) opened" in window.error_box.text()


def test_a_bad_file_is_named_with_its_reason_in_the_status_bar(window, qtbot, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (_, reason), = load_images([broken]).failed
    drop(window, broken)
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=5000)
    assert window.statusBar().currentMessage() == f"Open images: Nothing was opened; broken.png could not be read ({reason})"


def test_many_bad_files_give_a_short_summary_and_every_one_in_the_details(window, qtbot, tmp_path):
    write_image(tmp_path / "good.png")
    bad = [tmp_path / f"bad{i:02}.png" for i in range(20)]
    for path in bad:
        path.write_bytes(b"not an image")
    drop(window, tmp_path)
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=5000)
    message = window.statusBar().currentMessage()
    assert message.startswith("Open images: 1 image(s) opened; 20 files could not be read: bad00.png (")
    assert message.endswith(" and 19 more") and len(message) < 150
    details = window.error_box.detailedText().splitlines()
    assert [line.split(":")[0] for line in details] == [path.name for path in bad]
    assert len(window.forward.session.images) == 2


def _huge_png(path):
    """A valid PNG header claiming 10000×8000 pixels (the pixel data is never reached)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 10000, 8000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: (p / "notes.txt").write_text("just some text") and p / "notes.txt", "not an image format"),
        (lambda p: (p / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00") and p / "cut.png", "cut.png"),
        (lambda p: _huge_png(p / "huge.png"), "megapixels"),
    ],
    ids=["text file", "broken image", "huge image"],
)
def test_a_bad_drop_shows_a_message_and_changes_nothing(window, qtbot, tmp_path, make, reason):
    panel = window.forward
    before = shown(panel.images_items["xt"]).copy()
    t = window.state.t
    drop(window, make(tmp_path))
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=5000)
    assert reason in window.error_box.text()
    assert "Nothing was opened" in window.error_box.text()
    assert reason in window.statusBar().currentMessage()  # the file or the reason, not a cut "could not be read:"
    assert [image.name for image in panel.session.images] == ["sample"]
    assert np.array_equal(shown(panel.images_items["xt"]), before) and window.state.t == t


def test_moving_the_slider_changes_x_t_as_the_closed_form_says(window):
    panel = window.forward
    schedule = window.state.schedule
    x0 = panel.session.images[0].x0
    eps = np.random.default_rng(panel.seed.value()).standard_normal(x0.shape, dtype=np.float32)
    for t in (1, 300, 700, 1000):
        panel.t_slider.setValue(t)
        assert window.state.t == t and panel.t_spin.value() == t
        x_t = panel.session.x_t()
        # regress x_t on x_0 and ε: the coefficients are √ᾱ_t and √(1 − ᾱ_t)
        basis = np.stack([x0.ravel(), eps.ravel()], axis=1).astype(np.float64)
        (a, b), *_ = np.linalg.lstsq(basis, x_t.ravel().astype(np.float64), rcond=None)
        assert a == pytest.approx(schedule.sqrt_alpha_bars[t], abs=1e-5)
        assert b == pytest.approx(schedule.sqrt_one_minus_alpha_bars[t], abs=1e-5)
        # what is on screen is that x_t, to the rounding of a byte
        assert np.abs(shown(panel.images_items["xt"]).astype(int) - to_uint8(x_t).astype(int)).max() <= 1
        assert f"t = {t}</b>" in panel.readout.text()
        assert f"{schedule.sqrt_alpha_bars[t]:.4f}" in panel.readout.text()


def test_the_readout_says_when_x_T_is_mostly_signal(window):
    panel = window.forward
    assert "⚠" not in panel.readout.text()
    window.state.update_schedule(name="sigmoid", timesteps=50)
    assert "⚠ sigmoid T=50 β 0.0001…0.02 ends at ᾱ_T = 0.60" in panel.readout.text()
    assert "is mostly signal" in panel.readout.text()


def test_the_noise_is_held_fixed_until_the_seed_changes(window):
    panel = window.forward
    panel.t_slider.setValue(1000)
    first = panel.session.x_t()
    panel.t_slider.setValue(10)
    panel.t_slider.setValue(1000)
    assert np.array_equal(panel.session.x_t(), first)
    panel.new_noise.click()
    assert panel.seed.value() == 1 and not np.allclose(panel.session.x_t(), first)
    assert np.array_equal(shown(panel.images_items["eps"]), to_uint8(panel.session.eps))


def test_step_by_step_mode_runs_the_chain_into_the_same_distribution(window, qtbot):
    window.state.update_schedule(timesteps=200)
    panel = window.forward
    panel.mode.setCurrentIndex(panel.mode.findData("chain"))
    assert panel.session.mode == "chain" and "Markov" in panel.view_titles["xt"].text()
    panel.t_spin.setValue(150)
    qtbot.waitUntil(lambda: panel.session.x_t() is not None, timeout=20000)
    schedule = window.state.schedule
    x0 = panel.session.images[0].x0
    a, b = schedule.sqrt_alpha_bars[150], schedule.sqrt_one_minus_alpha_bars[150]
    added = (panel.session.x_t() - a * x0) / b
    assert abs(added.mean()) < 0.01 and added.std() == pytest.approx(1.0, abs=0.01)
    closed = np.random.default_rng(panel.seed.value()).standard_normal(x0.shape, dtype=np.float32)
    assert abs(np.corrcoef(added.ravel(), closed.ravel())[0, 1]) < 0.01  # other noise, same law
    assert "std 1.0" in panel.readout.text() or "std 0.99" in panel.readout.text()
    assert panel.hist_closed.isVisible()
    assert np.array_equal(shown(panel.images_items["xt"]), to_uint8(panel.session.x_t()))
    # going back re-walks from a kept state, and lands on the same x_t as before
    kept = panel.session.x_t()
    panel.t_spin.setValue(30)
    qtbot.waitUntil(lambda: panel.session.x_t() is not None, timeout=20000)
    panel.t_spin.setValue(150)
    qtbot.waitUntil(lambda: panel.session.x_t() is not None, timeout=20000)
    assert np.allclose(panel.session.x_t(), kept, atol=1e-5)


def test_save_x_t_and_a_strip(window, tmp_path):
    panel = window.forward
    panel.t_slider.setValue(400)
    assert panel.save_xt(tmp_path / "xt.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "xt.png")), to_uint8(panel.session.x_t()))
    panel.strip_ts.setText("0, 500, 1000")
    assert panel.save_strip(tmp_path / "strip.png")
    assert Image.open(tmp_path / "strip.png").size == (4 * 512 + 3 * 2, 512)


def test_impossible_strip_or_unwritable_path_gives_a_message_and_no_file(window, qtbot, tmp_path):
    panel = window.forward
    panel.strip_ts.setText("0, 2000")
    with qtbot.waitSignal(panel.failed) as failed:
        assert not panel.save_strip(tmp_path / "strip.png")
    assert "0…T = 1000" in failed.args[1] and not (tmp_path / "strip.png").exists()
    panel.strip_ts.setText("ten")
    with qtbot.waitSignal(panel.failed) as failed:
        assert not panel.save_strip(tmp_path / "strip.png")
    assert "whole numbers" in failed.args[1]
    with qtbot.waitSignal(panel.failed) as failed:
        assert not panel.save_xt(tmp_path / "no such folder" / "xt.png")
    assert "xt.png" in failed.args[1]


def test_the_strip_follows_the_images_and_keeps_at_least_one(window, qtbot, tmp_path):
    panel = window.forward
    drop(window, path := write_image(tmp_path / "a.png"))
    qtbot.waitUntil(lambda: len(panel.session.images) == 2, timeout=5000)
    assert panel.thumbnails.count() == 2 and panel.thumbnails.currentRow() == 1
    panel.thumbnails.setCurrentRow(0)  # clicking the sample shows it again
    assert panel.session.image.name == "sample"
    assert np.array_equal(shown(panel.images_items["x0"]), to_uint8(panel.session.x0))
    panel.remove_button.click()
    assert [image.name for image in panel.session.images] == ["a.png"] and panel.thumbnails.count() == 1
    assert np.array_equal(shown(panel.images_items["x0"]), np.asarray(Image.open(path)))
    panel.remove_button.click()
    assert len(panel.session.images) == 1 and panel.thumbnails.count() == 1
    assert "The last image stays" in window.statusBar().currentMessage()
