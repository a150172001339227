import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from diffusion_studio.core.data.images import to_uint8
from diffusion_studio.gui.imaging import ClosedFormRenderer, qimage


@given(st.floats(0, 1), st.floats(0, 1), st.integers(0, 2**16))
def test_fast_render_is_the_closed_form_in_bytes(a, b, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, (7, 9, 3)).astype(np.float32)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    pixels = ClosedFormRenderer(x0, eps).render(a, b)
    assert pixels.dtype == np.uint8 and pixels.flags.c_contiguous
    expected = to_uint8(a * x0 + b * eps).astype(int)
    assert np.abs(pixels.astype(int) - expected).max() <= 1


def test_gray_images_display_as_two_dimensional():
    x0 = np.zeros((4, 6, 1), np.float32)
    assert ClosedFormRenderer(x0, x0).render(1.0, 0.0).shape == (4, 6)
    image = qimage(np.full((4, 6, 1), 200, np.uint8))
    assert (image.width(), image.height()) == (6, 4) and image.pixelColor(5, 3).red() == 200
