"""The loader on a generated set of odd files: an array in [−1, 1] or ImageLoadError, nothing else."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from diffusion_studio.core.data import images as images_module
from diffusion_studio.core.data.images import image_grid, load_image, save_image, to_uint8
from diffusion_studio.core.errors import FileSaveError, ImageLoadError, SettingError

RAMP = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (24, 1))  # 24×32, black → white
RGB = np.stack([RAMP, RAMP[:, ::-1], np.full_like(RAMP, 128)], axis=2)


def make(tmp_path, name, image, **save):
    path = tmp_path / name
    image.save(path, **save)
    return path


def check(array, shape):
    assert array.dtype == np.float32 and array.shape == shape
    assert array.min() >= -1.0 and array.max() <= 1.0
    return array


def test_rgb_and_gray(tmp_path):
    rgb = check(load_image(make(tmp_path, "a.png", Image.fromarray(RGB))), (24, 32, 3))
    np.testing.assert_allclose(rgb, RGB / 127.5 - 1, atol=1e-6)
    gray = check(load_image(make(tmp_path, "g.png", Image.fromarray(RAMP))), (24, 32, 1))
    assert (gray[0, 0, 0], gray[0, -1, 0]) == (-1.0, 1.0)
    check(load_image(tmp_path / "g.png", channels=3), (24, 32, 3))
    check(load_image(tmp_path / "a.png", channels=1), (24, 32, 1))


def test_palette_with_and_without_transparency(tmp_path):
    p = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    check(load_image(make(tmp_path, "p.png", p)), (24, 32, 3))
    p.info["transparency"] = 0
    check(load_image(make(tmp_path, "pt.png", p, transparency=0)), (24, 32, 3))
    gif = Image.fromarray(RAMP).convert("P")
    check(load_image(make(tmp_path, "gray.gif", gif)), (24, 32, 1))


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    rgba[0, 0] = (0, 0, 0, 255)  # one opaque black pixel
    a = load_image(make(tmp_path, "t.png", Image.fromarray(rgba, "RGBA")))
    assert a[1, 1].tolist() == [1.0, 1.0, 1.0] and a[0, 0].tolist() == [-1.0, -1.0, -1.0]
    la = Image.fromarray(np.dstack([RAMP, np.full_like(RAMP, 0)]), "LA")
    assert np.all(check(load_image(make(tmp_path, "la.png", la)), (24, 32, 1)) == 1.0)


def test_16_bit_keeps_its_depth(tmp_path):
    deep = (np.arange(24 * 32).reshape(24, 32) * 85).astype(np.uint16)
    a = check(load_image(make(tmp_path, "d.png", Image.fromarray(deep))), (24, 32, 1))
    np.testing.assert_allclose(a[:, :, 0], deep / 65535 * 2 - 1, atol=1e-6)
    assert len(np.unique(a)) == deep.size  # more than 256 levels survive


def test_float_tiff(tmp_path):
    f = Image.fromarray(np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32), "F")
    check(load_image(make(tmp_path, "f.tif", f)), (24, 32, 1))


def test_cmyk_one_bit_and_other_modes(tmp_path):
    check(load_image(make(tmp_path, "c.jpg", Image.fromarray(RGB).convert("CMYK"))), (24, 32, 3))
    one = check(load_image(make(tmp_path, "b.png", Image.fromarray(RAMP).convert("1"))), (24, 32, 1))
    assert set(np.unique(one)) <= {-1.0, 1.0}
    check(load_image(make(tmp_path, "y.jpg", Image.fromarray(RGB).convert("YCbCr"))), (24, 32, 3))


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(RGB)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = make(tmp_path, "rot.jpg", img, exif=exif.tobytes())
    check(load_image(path), (32, 24, 3))


def test_animated_and_multipage_give_the_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (0, 255, 128)]
    gif = make(tmp_path, "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=50)
    assert np.all(load_image(gif) == -1.0)
    tif = make(tmp_path, "pages.tif", frames[1], save_all=True, append_images=[frames[0], frames[2]])
    assert np.all(load_image(tif) == 1.0)


def test_max_side_shrinks_keeping_aspect(tmp_path):
    a = load_image(make(tmp_path, "a.png", Image.fromarray(RGB)), max_side=16)
    assert a.shape == (12, 16, 3)


def _png_header_only(width, height):
    """A PNG that declares a huge 1-bit image: cheap to write, dangerous to decode."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.png", b"", "empty"),
        ("notes.png", b"this is a text file, not a picture\n" * 20, "not an image"),
        ("bomb.png", _png_header_only(60_000, 60_000), "decompression bomb"),
        ("big.png", _png_header_only(9_000, 9_000), "decompression bomb"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert name in str(info.value) and reason in str(info.value)


def test_truncated_missing_and_folder(tmp_path):
    full = make(tmp_path, "full.png", Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:2000])
    with pytest.raises(ImageLoadError, match="cut.png.*damaged"):
        load_image(cut)
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(ImageLoadError, match="megapixels"):
        load_image(full, max_pixels=1000)


SEED_FILE = io.BytesIO()
Image.fromarray(RGB).save(SEED_FILE, format="PNG")


@given(st.data())
def test_fuzzed_bytes_give_an_array_or_the_clear_error(tmp_path_factory, data):
    original = bytearray(SEED_FILE.getvalue())
    kind = data.draw(st.sampled_from(["flip", "cut", "random"]))
    if kind == "flip":
        for i in data.draw(st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=8)):
            original[i] ^= 0xFF
        content = bytes(original)
    elif kind == "cut":
        content = bytes(original[: data.draw(st.integers(1, len(original)))])
    else:
        content = data.draw(st.binary(min_size=1, max_size=512))
    path = tmp_path_factory.mktemp("fuzz") / "f.png"
    path.write_bytes(content)
    try:
        array = load_image(path)
    except ImageLoadError:
        return
    assert array.dtype == np.float32 and array.ndim == 3 and array.shape[2] in (1, 3)
    assert np.all(np.isfinite(array)) and array.min() >= -1 and array.max() <= 1


def test_save_and_load_round_trip(tmp_path):
    x = np.random.default_rng(1).uniform(-1, 1, (10, 12, 3)).astype(np.float32)
    save_image(x, tmp_path / "x.png")
    np.testing.assert_allclose(load_image(tmp_path / "x.png"), x, atol=1 / 127.5)
    save_image(x[:, :, :1], tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").shape == (10, 12, 1)
    assert to_uint8(np.array([-2.0, -1.0, 0.0, 1.0, 5.0])).tolist() == [0, 0, 128, 255, 255]


def test_failed_save_keeps_the_last_good_file(tmp_path, monkeypatch):
    target = tmp_path / "keep.png"
    save_image(np.zeros((4, 4, 3)), target)
    before = target.read_bytes()

    def broken_save(self, fp, format=None, **params):
        fp.write(b"half a PNG")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(images_module.Image.Image, "save", broken_save)
    with pytest.raises(FileSaveError, match="No space left"):
        save_image(np.ones((4, 4, 3)), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_unwritable_destination(tmp_path):
    with pytest.raises(FileSaveError, match="out.png"):
        save_image(np.zeros((2, 2)), tmp_path / "no-such-folder" / "out.png")
    with pytest.raises(SettingError):
        save_image(np.zeros((2, 2, 2)), tmp_path / "bad.png")


def test_grid_layout():
    tiles = [np.full((2, 3, 1), v, np.float32) for v in (-1.0, 0.0, 1.0)]
    grid = image_grid(tiles, columns=2, pad=1, pad_value=0.5)
    assert grid.shape == (5, 7, 1)
    assert grid[0, 0, 0] == -1.0 and grid[0, 4, 0] == 0.0 and grid[3, 0, 0] == 1.0 and grid[2, 0, 0] == 0.5


def test_load_images_takes_files_and_folders_and_lists_what_failed(tmp_path):
    from diffusion_studio.core.data.images import image_files, load_images

    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("b.png", "a.png"):
        Image.fromarray(np.zeros((3, 5), np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    single = tmp_path / "single.png"
    Image.fromarray(np.zeros((700, 300, 3), np.uint8)).save(single)
    assert [p.name for p in image_files([folder, single])] == ["a.png", "b.png", "bad.jpg", "single.png"]
    loaded = load_images([folder, single], max_side=350)
    assert [(p.name, a.shape) for p, a in loaded.images] == [("a.png", (3, 5, 1)), ("b.png", (3, 5, 1)), ("single.png", (350, 150, 3))]
    assert [p.name for p, _ in loaded.failed] == ["bad.jpg"]
