"""Draw resources/images/sample.png, the picture the forward panel shows on first launch.

Made by this project from nothing but code (no photograph, no third-party art), so it carries the
project's own licence. Strong edges, flat areas, gradients and a range of colours make it easy to
see what q(x_t | x_0) keeps and loses at each t. Run: python tools/make_sample_image.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 512
OUTPUT = Path(__file__).resolve().parents[1] / "resources" / "images" / "sample.png"


def _vertical_gradient(top: tuple[int, int, int], bottom: tuple[int, int, int], height: int) -> np.ndarray:
    w = np.linspace(0.0, 1.0, height)[:, None, None]
    return (1 - w) * np.array(top, float) + w * np.array(bottom, float)


def _ridge(rng: np.random.Generator, base: float, roughness: float) -> list[tuple[float, float]]:
    """A mountain outline: a random walk smoothed over x, from the left edge to the right."""
    steps = rng.normal(0.0, roughness, SIZE // 8 + 1).cumsum()
    steps -= np.linspace(steps[0], steps[-1], steps.size)
    xs = np.linspace(0, SIZE, steps.size)
    return [(float(x), float(base + y)) for x, y in zip(xs, steps)]


def draw() -> Image.Image:
    rng = np.random.default_rng(7)
    horizon = int(SIZE * 0.62)
    sky = _vertical_gradient((40, 70, 160), (250, 170, 110), horizon)
    sky = np.broadcast_to(sky, (horizon, SIZE, 3))
    water = _vertical_gradient((60, 90, 150), (20, 35, 80), SIZE - horizon)
    water = np.broadcast_to(water, (SIZE - horizon, SIZE, 3))
    image = Image.fromarray(np.concatenate([sky, water]).astype(np.uint8))
    draw = ImageDraw.Draw(image)

    sun = (SIZE * 0.70, horizon - 190, 48)
    draw.ellipse([sun[0] - sun[2], sun[1] - sun[2], sun[0] + sun[2], sun[1] + sun[2]], fill=(255, 228, 120))
    ridges = ((horizon - 85, 5.0, (120, 90, 140)), (horizon - 45, 4.0, (70, 65, 105)), (horizon - 12, 2.5, (35, 70, 55)))
    for base, roughness, colour in ridges:
        outline = _ridge(rng, base, roughness)
        draw.polygon(outline + [(SIZE, horizon), (0, horizon)], fill=colour)

    # the sky and mountains mirrored in the lake, darkened and softened
    top = np.asarray(image)[:horizon]
    reflection = Image.fromarray((top[::-1][: SIZE - horizon] * 0.55).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3))
    image.paste(reflection, (0, horizon))
    draw = ImageDraw.Draw(image)
    for y in range(horizon + 8, SIZE, 14):  # ripples, a few short dashes per row
        for x in rng.integers(0, SIZE, 6):
            draw.line([(int(x), y), (int(x) + 40, y)], fill=(150, 160, 210), width=2)

    # a red-roofed cabin and a pine tree on the shore
    draw.rectangle([80, horizon - 48, 150, horizon], fill=(200, 190, 160))
    draw.polygon([(70, horizon - 48), (115, horizon - 88), (160, horizon - 48)], fill=(180, 40, 40))
    draw.rectangle([105, horizon - 30, 122, horizon], fill=(90, 50, 30))
    draw.rectangle([130, horizon - 40, 144, horizon - 26], fill=(255, 230, 140))
    for i in range(4):
        half = 30 - 6 * i
        y = horizon - 20 - 28 * i
        draw.polygon([(410 - half, y), (410, y - 45), (410 + half, y)], fill=(20, 90, 50))
    draw.rectangle([405, horizon - 20, 415, horizon], fill=(80, 50, 30))
    return image


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    draw().save(OUTPUT, optimize=True)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
