"""Inpainting (core.inpainting): the hook's formula, known pixels kept by every sampler, the fill
decided by the known pixels, masks read as diffusers and AUTOMATIC1111 users draw them."""

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_studio.core.control import drain
from diffusion_studio.core.data.datasets import load_digits
from diffusion_studio.core.data.images import to_uint8
from diffusion_studio.core.errors import MaskError, SettingError
from diffusion_studio.core.inpainting import (
    MASK_RGB,
    Inpainting,
    fit_image,
    fit_mask,
    inpainting_run,
    inpainting_strip,
    load_inpainting,
    load_mask,
    masked_image,
    record_inpainting,
)
from diffusion_studio.core.loaded_model import LoadedModel, open_model
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.sampling import SamplingRun
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig
from diffusion_studio.core.trajectory import record_run
from tests.core.points import points_model

QUANTUM = 1 / 127.5  # one gray level of an 8-bit image in [−1, 1]
SIZE = 8
A = torch.linspace(-0.9, 0.9, SIZE * SIZE).reshape(1, SIZE, SIZE)  # a ramp
B = -A.flip(-1)  # another picture, different from A at every pixel
RIGHT_HALF = np.zeros((SIZE, SIZE), bool)
RIGHT_HALF[:, SIZE // 2:] = True


@pytest.fixture(scope="module")
def two_pictures():
    """Data that is A or B, evenly: the exact denoiser knows no other images."""
    return points_model(torch.stack([A, B]))


@pytest.fixture(scope="module")
def bundled():
    return open_model("default")


def image_of(picture: torch.Tensor) -> np.ndarray:
    return picture.numpy().transpose(1, 2, 0)  # C×H×W → H×W×C


def final(run: SamplingRun) -> np.ndarray:
    return drain(record_run(run)).final


def test_the_hook_puts_known_pixels_at_q_of_x_s_given_x_0_and_leaves_the_rest():
    schedule = NoiseSchedule(ScheduleConfig())
    image = np.random.default_rng(0).uniform(-1, 1, (SIZE, SIZE, 1)).astype(np.float32)
    hook = Inpainting(schedule, image, RIGHT_HALF, seed=4)
    x_s = torch.randn(3, 1, SIZE, SIZE)
    out = hook(300, x_s)
    x0 = torch.from_numpy(image.transpose(2, 0, 1))
    expected = schedule.sqrt_alpha_bars[300] * x0 + schedule.sqrt_one_minus_alpha_bars[300] * hook.noise(300, (3, 1, SIZE, SIZE))
    known = torch.from_numpy(~RIGHT_HALF)
    torch.testing.assert_close(out[:, :, known], expected[:, :, known].float())
    assert torch.equal(out[:, :, ~known], x_s[:, :, ~known])
    assert torch.equal(hook(300, x_s), out)  # z of a step is the same on every call
    assert not torch.equal(hook.noise(299, (3, 1, SIZE, SIZE)), hook.noise(300, (3, 1, SIZE, SIZE)))
    last = hook(0, x_s)  # at s = 0 the known pixels are the image itself
    assert torch.equal(last[:, :, known], x0[:, known].expand(3, -1, -1))
    assert torch.equal(last[:, :, ~known], x_s[:, :, ~known])


@pytest.mark.parametrize("sampler, steps, share", [("ddpm", None, 1.0), ("ddpm", 20, 1.0), ("ddim", 10, 0.8), ("euler", 10, 0.8),
                                                   ("euler-a", 10, 0.8), ("heun", 8, 0.7), ("dpmpp-2m", 10, 0.8)])
def test_every_sampler_keeps_the_known_pixels_and_the_known_pixels_decide_the_fill(two_pictures, sampler, steps, share):
    """The exact denoiser of {A, B}, given A's left half: every result holds that half exactly and
    lands on the data (A or B) in the other; without the known pixels the same seed's samples split
    between A and B. DDPM's fresh noise at every step lets a sample that leant towards B early turn
    back, so all become A; a deterministic sampler cannot turn back, and some of its samples keep
    B's right half (RePaint's resampling, Lugmayr et al. 2022, is the remedy for that)."""
    num = 40
    config = SampleConfig(sampler=sampler, steps=steps, num=num, seed=1)
    result = final(inpainting_run(two_pictures, config, image_of(A), RIGHT_HALF))[:, 0]
    assert result.shape == (num, SIZE, SIZE)
    known = ~RIGHT_HALF
    assert np.array_equal(result[:, known], np.broadcast_to(A[0].numpy()[known], (num, known.sum())))

    def lands_on(picture, samples):
        return np.abs(samples[:, RIGHT_HALF] - picture[0].numpy()[RIGHT_HALF]).max(axis=1) < 0.05

    on_a, on_b = lands_on(A, result), lands_on(B, result)
    assert (on_a | on_b).all() and on_a.mean() >= share
    free = final(SamplingRun(two_pictures, config))[:, 0]
    assert 0 < lands_on(B, free).sum() < num


def test_an_inpainting_run_is_recorded_as_any_run_and_repeats_from_its_seed(bundled):
    digit = load_digits(16, "held_out").data[0].transpose(1, 2, 0)
    mask = np.zeros((16, 16), bool)
    mask[4:12, 8:] = True
    config = SampleConfig(sampler="ddim", steps=6, num=3, seed=7)
    recorder = drain(record_inpainting(bundled, config, digit, mask))
    trajectory = recorder.trajectory()
    assert trajectory.timesteps.tolist()[-1] == 0 and len(trajectory) == 7 and trajectory.x_t.shape == (7, 3, 16, 16, 1)
    assert trajectory.metadata["inpainted_pixels"] == 64 and trajectory.metadata["sampler"] == "ddim"
    result = recorder.final
    assert np.abs(result[:, 0][:, ~mask] - digit[:, :, 0][~mask]).max() <= QUANTUM  # (exactly, in fact)
    shown = trajectory.x_t[-1][..., 0]  # the stored frames too: one gray level at most
    assert np.abs(shown[:, ~mask].astype(int) - to_uint8(digit[:, :, 0])[~mask]).max() <= 1
    assert not np.allclose(result[:, 0][:, mask], digit[:, :, 0][mask], atol=0.05)  # the filled region is drawn anew
    assert np.abs(result).max() <= 1.0
    again = drain(record_inpainting(bundled, config, digit, mask)).final
    other = drain(record_inpainting(bundled, SampleConfig(sampler="ddim", steps=6, num=3, seed=8), digit, mask)).final
    assert np.array_equal(again, result) and not np.allclose(other[:, 0][:, mask], result[:, 0][:, mask])


def test_runs_that_cannot_inpaint_are_refused_before_anything_runs(two_pictures):
    config = SampleConfig(sampler="ddim", steps=3, num=1)
    with pytest.raises(MaskError, match="nothing to fill"):
        inpainting_run(two_pictures, config, image_of(A), np.zeros((SIZE, SIZE), bool))
    with pytest.raises(MaskError, match="4×4, the model's images 8×8"):
        inpainting_run(two_pictures, config, image_of(A), np.ones((4, 4), bool))
    with pytest.raises(SettingError, match="expected 8×8×1"):
        inpainting_run(two_pictures, config, np.zeros((8, 8, 3), np.float32), RIGHT_HALF)
    points = LoadedModel(two_pictures.network, two_pictures.schedule_config, "eps", (2,), "2-D points", "")
    with pytest.raises(SettingError, match="needs an image model"):
        inpainting_run(points, config, image_of(A), RIGHT_HALF)


# ---- images and masks ---------------------------------------------------------------------------


def save(path, pixels, mode=None):
    Image.fromarray(pixels, mode).save(path)
    return path


def test_white_in_a_mask_image_is_the_region_to_fill(tmp_path):
    pixels = np.zeros((16, 16), np.uint8)
    pixels[2:6, 3:9] = 255
    pixels[10, 10] = 127  # darker than half-way: kept
    pixels[11, 11] = 128  # lighter: filled
    mask = load_mask(save(tmp_path / "m.png", pixels), (16, 16), aspect=1.0)
    expected = np.zeros((16, 16), bool)
    expected[2:6, 3:9] = expected[11, 11] = True
    assert mask.dtype == bool and np.array_equal(mask, expected)


def test_a_large_mask_is_resized_pixel_for_pixel_and_colour_and_transparency_count_by_lightness(tmp_path):
    pixels = np.zeros((64, 64, 4), np.uint8)
    pixels[..., 3] = 255
    pixels[:, 32:, :3] = 255  # the right half white
    pixels[:16, :, 3] = 0  # the top quarter transparent: white, as load_image composites it
    mask = load_mask(save(tmp_path / "m.png", pixels, "RGBA"), (16, 16), aspect=1.0)
    expected = np.zeros((16, 16), bool)
    expected[:, 8:] = expected[:4] = True
    assert np.array_equal(mask, expected)


def test_an_image_and_its_mask_are_cropped_alike_to_the_models_size(tmp_path):
    photo = np.zeros((30, 60, 3), np.uint8)
    photo[:, 15:45] = 255  # the centre square, where a square model's crop falls
    drawn = np.zeros((60, 120), np.uint8)
    drawn[:, 30:60] = 255  # a mask at twice the size: the left half of the centre square
    image, mask = load_inpainting(save(tmp_path / "photo.png", photo), save(tmp_path / "m.png", drawn), (1, 10, 10))
    assert image.shape == (10, 10, 1) and np.allclose(image[:, 1:-1], 1.0, atol=0.01)  # (Lanczos sees past the crop's edge)
    expected = np.zeros((10, 10), bool)
    expected[:, :5] = True
    assert np.array_equal(mask, expected)


def test_bad_masks_say_what_is_wrong(tmp_path):
    with pytest.raises(MaskError, match="cannot open mask 'missing.png': no such file"):
        load_mask(tmp_path / "missing.png", (16, 16), 1.0)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(MaskError, match="cannot open mask 'junk.png'"):
        load_mask(tmp_path / "junk.png", (16, 16), 1.0)
    with pytest.raises(MaskError, match="32×16, an aspect of 2, but its image's is 1"):
        load_mask(save(tmp_path / "wide.png", np.full((16, 32), 255, np.uint8)), (16, 16), 1.0)
    with pytest.raises(MaskError, match="nothing to fill"):
        load_mask(save(tmp_path / "black.png", np.zeros((16, 16), np.uint8)), (16, 16), 1.0)
    speck = np.zeros((64, 64), np.uint8)
    speck[1, 1] = 255  # a pixel that no pixel of the 16×16 mask lands on
    with pytest.raises(MaskError, match="nothing to fill"):
        load_mask(save(tmp_path / "speck.png", speck), (16, 16), 1.0)


def test_fit_image_converts_channels_and_size():
    rgb = np.random.default_rng(0).uniform(-1, 1, (30, 40, 3)).astype(np.float32)
    gray = fit_image(rgb, (1, 16, 16))
    assert gray.shape == (16, 16, 1) and gray.dtype == np.float32 and np.abs(gray).max() <= 1.0
    assert fit_image(gray, (3, 16, 16)).shape == (16, 16, 3)
    assert np.array_equal(fit_image(gray, (1, 16, 16)), gray)
    assert np.array_equal(fit_mask(RIGHT_HALF, (4, 4)), RIGHT_HALF[::2, ::2])


def test_the_strip_shows_the_image_the_masked_image_and_each_result():
    image = image_of(A)
    masked = masked_image(image, RIGHT_HALF)
    assert masked.shape == (SIZE, SIZE, 3) and (masked[RIGHT_HALF] == MASK_RGB).all()
    assert (masked[~RIGHT_HALF] == to_uint8(image)[~RIGHT_HALF]).all()
    strip = inpainting_strip(image, RIGHT_HALF, np.stack([A.numpy(), B.numpy()]))
    assert strip.shape == (SIZE, 4 * SIZE + 3 * 2, 3)
    assert np.array_equal(strip[:, 3 * (SIZE + 2):, 0], to_uint8(B[0].numpy()))
