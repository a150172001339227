"""diffusion-studio inpaint IMAGE --mask MASK --model M --output out.png"""

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.data.datasets import load_digits
from diffusion_studio.core.data.images import save_image, to_uint8
from diffusion_studio.core.inpainting import MASK_RGB
from diffusion_studio.core.trajectory import load_trajectory

FAST = ["--model", "default", "--sampler", "ddim", "--steps", "4", "--num", "2", "--device", "cpu"]


@pytest.fixture
def files(tmp_path):
    """A held-out digit at the bundled model's 16×16, and a mask at 4× that size: the right half white."""
    digit = load_digits(16, "held_out").data[5, 0]
    save_image(digit, tmp_path / "digit.png")
    drawn = np.zeros((64, 64), np.uint8)
    drawn[:, 32:] = 255
    Image.fromarray(drawn).save(tmp_path / "mask.png")
    return tmp_path, to_uint8(digit)


def tiles(strip: np.ndarray, count: int, side: int = 16, pad: int = 2) -> list[np.ndarray]:
    return [strip[:, k * (side + pad):k * (side + pad) + side] for k in range(count)]


def test_inpaint_keeps_the_known_pixels_and_writes_the_strip_the_gif_and_the_trajectory(files, capsys):
    folder, digit = files
    out, gif, trajectory = folder / "out.png", folder / "out.gif", folder / "out.npz"
    args = ["inpaint", str(folder / "digit.png"), "--mask", str(folder / "mask.png"), *FAST, "--output", str(out)]
    assert main([*args, "--gif", str(gif), "--trajectory", str(trajectory)]) == 0
    assert "filling 128 of 256 pixels at the model's 16×16" in capsys.readouterr().err
    strip = np.asarray(Image.open(out))
    assert strip.shape == (16, 4 * 16 + 3 * 2, 3)
    image, masked, *results = tiles(strip, 4)
    keep = np.zeros((16, 16), bool)
    keep[:, :8] = True
    assert np.array_equal(image[..., 0], digit) and (masked[~keep] == MASK_RGB).all()
    for result in results:
        assert np.abs(result[..., 0][keep].astype(int) - digit[keep]).max() <= 1  # within quantisation
        assert not np.array_equal(result[..., 0][~keep], digit[~keep])  # drawn by the model
    recorded = load_trajectory(trajectory)
    assert len(recorded) == 5 and recorded.metadata["inpainted_pixels"] == 128 and recorded.metadata["num"] == 2
    with Image.open(gif) as animation:
        assert animation.n_frames == 5
    again = folder / "again.png"
    assert main([*args[:-1], str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(again)), strip)  # the same seed, the same results


def test_inpaint_draws_four_candidates_unless_told(files):
    folder, _ = files
    out = folder / "out.png"
    args = ["inpaint", str(folder / "digit.png"), "--mask", str(folder / "mask.png"), "--sampler", "ddim", "--steps", "2",
            "--device", "cpu", "-o", str(out)]
    assert main(args) == 0
    assert Image.open(out).size == (6 * 16 + 5 * 2, 16)


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda f: ["--mask", str(f / "absent.png")], "cannot open mask 'absent.png': no such file"),
        (lambda f: ["--mask", str(f / "notes.png")], "cannot open mask 'notes.png'"),
        (lambda f: ["--mask", str(f / "wide.png")], "mask 'wide.png' is 32×16"),
        (lambda f: ["--mask", str(f / "black.png")], "the mask marks nothing to fill"),
        (lambda f: ["-o", str(f / "out.jpg")], "'out.jpg': use a .png file"),
        (lambda f: ["--eta", "0.5", "--sampler", "ddpm"], "--eta is not an option of DDPM"),
        (lambda f: ["--steps", "0"], "steps"),
    ],
)
def test_inpaint_errors_are_one_line_and_write_nothing(files, capsys, change, needle):
    folder, _ = files
    (folder / "notes.png").write_text("not an image")
    Image.fromarray(np.full((16, 32), 255, np.uint8)).save(folder / "wide.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "black.png")
    args = ["inpaint", str(folder / "digit.png"), "--mask", str(folder / "mask.png"), *FAST, "-o", str(folder / "out.png")]
    assert main([*args, *change(folder)]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert not (folder / "out.png").exists() and not (folder / "out.jpg").exists()


def test_an_unreadable_image_names_the_file(files, capsys):
    folder, _ = files
    (folder / "notes.png").write_text("not an image")
    assert main(["inpaint", str(folder / "notes.png"), "--mask", str(folder / "mask.png"), *FAST, "-o", str(folder / "o.png")]) == 1
    assert "cannot open image 'notes.png'" in capsys.readouterr().err
