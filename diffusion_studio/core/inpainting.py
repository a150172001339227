"""Inpainting: the reverse process run with some pixels known, the model filling in the rest.

Sohl-Dickstein et al. (2015, §2.5, "Multiplying distributions"; seed 002) condition a diffusion
model by multiplying its p(x_0) by a second function r(x_0), folded into every reverse step. When
r pins some pixels to an image x_0, the forward process says exactly where those pixels are at
every noise level, q(x_s | x_0) = N(√ᾱ_s x_0, (1 − ᾱ_s) I), so each step can take them from there.
With m = 1 on the known pixels and 0 on the region to fill, after the sampler's step from x_t to
x_s (any sampler: DDPM, DDIM, Euler, …):

    x_s ← m ⊙ q_sample(x_0, s, z) + (1 − m) ⊙ x_s,   q_sample(x_0, s, z) = √ᾱ_s x_0 + √(1 − ᾱ_s) z,
          z ~ N(0, I) fresh at each step,                                               for s > 0;
    x_s ← m ⊙ x_0 + (1 − m) ⊙ x_s                                                       at s = 0.

This is eq. (8) of RePaint (Lugmayr et al. 2022) without its resampling. The network sees the
known pixels at the noise level of every step, so what it fills in is drawn to agree with them,
and the result holds the image's known pixels exactly.

Masks follow diffusers and AUTOMATIC1111: white in a mask image is the region to fill, black is
kept. In memory a mask is an H×W bool array at the model's size, True where the model fills in.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from diffusion_studio.core.data.images import image_grid, load_image, set_channels, to_uint8
from diffusion_studio.core.errors import ImageLoadError, MaskError, SettingError
from diffusion_studio.core.process import q_sample
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.schedules import NoiseSchedule
from diffusion_studio.core.trajectory import Recorder, record_run

if TYPE_CHECKING:  # torch loads with the first run, not with this module (the app's window comes first)
    import torch

    from diffusion_studio.core.loaded_model import LoadedModel
    from diffusion_studio.core.sampling import SamplingRun, SamplingStep

MAX_SIDE = 1024
"""Images and masks are read at most this large: they end at the model's size (16 to 256 pixels),
and fitting a larger one would hold up the app's UI thread for longer than a frame."""
ASPECT_TOLERANCE = 0.02
"""A mask's width/height may differ from its image's by this fraction (rounding of a resized copy)."""
MASK_RGB = (255, 48, 96)
"""The colour that marks the region to fill, in pictures and in the app's painted overlay."""


def fit_image(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An H'×W'×C' image in [−1, 1] as a model of sample shape (C, H, W) takes it: C channels (gray
    ↔ RGB as load_image converts), scaled so that it covers H×W and centre-cropped (Lanczos), as
    training images are."""
    channels, height, width = shape
    image = set_channels(np.asarray(image, dtype=np.float32), channels)
    if image.shape[:2] == (height, width):
        return image
    planes = [ImageOps.fit(Image.fromarray(image[:, :, c], "F"), (width, height), Image.Resampling.LANCZOS)
              for c in range(channels)]
    return np.clip(np.stack([np.asarray(p) for p in planes], axis=2), -1.0, 1.0).astype(np.float32)


def fit_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An H'×W' bool mask at ``size`` (H, W), cropped as fit_image crops its image, nearest pixel:
    no pixel is half filled."""
    mask = np.asarray(mask, dtype=bool)
    height, width = size
    if mask.shape == (height, width):
        return mask
    fitted = ImageOps.fit(Image.fromarray(mask.astype(np.uint8) * 255, "L"), (width, height), Image.Resampling.NEAREST)
    return np.asarray(fitted) > 127


def check_mask(mask: np.ndarray) -> None:
    """MaskError unless the mask marks at least one pixel to fill."""
    if not np.any(mask):
        raise MaskError("the mask marks nothing to fill: paint (white, in a mask image) where the model should fill in")


def load_mask(path: str | Path, size: tuple[int, int], aspect: float) -> np.ndarray:
    """A mask image (any format load_image reads; transparency counts as white) as an H×W bool
    array at ``size``, True where its gray value is above half-way (white: fill). ``aspect``: the
    width/height of the image it belongs to, which the mask must share. MaskError if it cannot
    be read, has another aspect, or marks nothing to fill at this size."""
    path = Path(path)
    try:
        gray = load_image(path, channels=1, max_side=MAX_SIDE)[:, :, 0]
    except ImageLoadError as exc:
        raise MaskError(f"cannot open mask '{path.name}': {exc.reason}") from None
    height, width = gray.shape
    if abs(width / height / aspect - 1.0) > ASPECT_TOLERANCE:
        raise MaskError(f"mask '{path.name}' is {width}×{height}, an aspect of {width / height:.3g}, but its image's is "
                        f"{aspect:.3g}: draw the mask over the image itself, at its size or a scaled copy")
    mask = fit_mask(gray > 0.0, size)
    check_mask(mask)
    return mask


def load_inpainting(image_path: str | Path, mask_path: str | Path, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) from files, both at a model's sample shape (C, H, W): the image H×W×C in
    [−1, 1] (fit_image) and the mask H×W (load_mask), cropped alike."""
    source = load_image(image_path, max_side=MAX_SIDE)
    return fit_image(source, shape), load_mask(mask_path, shape[1:], source.shape[1] / source.shape[0])


class Inpainting:
    """The known pixels put back after each step: a SamplingRun's ``after_step`` hook, hook(s, x_s),
    doing x_s ← m ⊙ q_sample(x_0, s, z) + (1 − m) ⊙ x_s (s > 0) and m ⊙ x_0 + (1 − m) ⊙ x_s (s = 0).

    z of step s comes from a generator seeded by (seed, s), so that a run is repeatable and the
    known pixels' noise is the same on every device.
    """

    def __init__(self, schedule: NoiseSchedule, image: np.ndarray, mask: np.ndarray, seed: int,
                 device: torch.device | str = "cpu") -> None:
        import torch

        self.schedule = schedule
        self.seed = seed
        self.x0 = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None].to(device)  # 1×C×H×W
        self.known = torch.from_numpy(~np.asarray(mask, dtype=bool))[None, None].to(device)  # m, 1×1×H×W

    def noise(self, s: int, shape: tuple[int, ...]) -> torch.Tensor:
        """z of the step that lands on s (the same on every call)."""
        z = np.random.default_rng((self.seed, s)).standard_normal(shape, dtype=np.float32)
        return self.x0.new_tensor(z)

    def __call__(self, s: int, x_s: torch.Tensor) -> torch.Tensor:
        known = self.x0 if s == 0 else q_sample(self.schedule, self.x0, s, self.noise(s, tuple(x_s.shape)))
        return known.to(x_s.dtype).where(self.known, x_s)


def image_shape(model: LoadedModel) -> tuple[int, int, int]:
    """The (C, H, W) of the model's images; SettingError for a model of 2-D points."""
    if not model.is_image:
        raise SettingError("model", "inpainting needs an image model; this one makes 2-D points")
    channels, height, width = model.sample_shape
    return channels, height, width


def inpainting_run(model: LoadedModel, config: SampleConfig, image: np.ndarray, mask: np.ndarray,
                   device: torch.device | str = "cpu") -> SamplingRun:
    """A SamplingRun of ``model`` with ``config`` (any sampler; its x̂_0 clamp applies as ever)
    that fills the ``mask`` region of ``image`` (H×W×C in [−1, 1] and H×W, at the model's size)
    and keeps the rest. SettingError or MaskError, before anything runs, if it cannot."""
    from diffusion_studio.core.sampling import SamplingRun

    channels, height, width = image_shape(model)
    if image.shape != (height, width, channels):
        raise SettingError("image", f"expected {height}×{width}×{channels} (the model's size), got {'×'.join(map(str, image.shape))}")
    if mask.shape != (height, width):
        raise MaskError(f"the mask is {'×'.join(map(str, mask.shape))}, the model's images {height}×{width}")
    check_mask(mask)
    hook = Inpainting(NoiseSchedule(model.schedule_config), image, mask, config.seed, device)
    return SamplingRun(model, config, device, after_step=hook)


def record_inpainting(model: LoadedModel, config: SampleConfig, image: np.ndarray, mask: np.ndarray,
                      device: torch.device | str = "cpu", should_stop: Callable[[], bool] = lambda: False,
                      ) -> Generator[SamplingStep, None, Recorder]:
    """inpainting_run, recorded as any run is (record_run): yields every step, returns the Recorder,
    whose trajectory notes how many pixels were filled."""
    run = inpainting_run(model, config, image, mask, device)
    return (yield from record_run(run, should_stop, metadata={"inpainted_pixels": int(np.count_nonzero(mask))}))


def masked_image(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What the model is given: the image's known pixels, the region to fill in MASK_RGB (H×W×3 uint8)."""
    pixels = to_uint8(set_channels(image, 3))
    pixels[mask] = MASK_RGB
    return pixels


def inpainting_strip(image: np.ndarray, mask: np.ndarray, results: np.ndarray) -> np.ndarray:
    """One row, uint8: the image | the masked image | each result (results N×C×H×W in [−1, 1])."""
    tiles = [to_uint8(image), masked_image(image, mask), *to_uint8(results.transpose(0, 2, 3, 1))]
    return image_grid(tiles, columns=len(tiles))
