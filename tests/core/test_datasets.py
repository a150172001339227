import numpy as np
import pytest
from PIL import Image

from diffusion_studio.core.data.datasets import (
    TOY_SETS, Dataset, evaluation_set, held_out_digit, load_dataset, load_digits, load_image_folder, load_points_file,
    load_toy, save_points,
)
from diffusion_studio.core.errors import DataError


def test_digits_are_bundled_and_upscaled():
    d = load_digits(16, "all")
    assert d.data.shape == (1797, 1, 16, 16) and d.data.dtype == np.float32
    assert d.data.min() == -1.0 and d.data.max() == 1.0
    assert d.is_image
    assert d.data[:, :, 0, 0].mean() < -0.9  # background is dark, ink bright


def test_held_out_digits_are_a_tenth_never_trained_on():
    train, held_out, every = load_digits(8), load_digits(8, "held_out"), load_digits(8, "all")
    assert (len(train.data), len(held_out.data)) == (1618, 179)
    np.testing.assert_array_equal(held_out.data, every.data[9::10])
    assert not any((held_out.data[i] == train.data).all(axis=(1, 2, 3)).any() for i in range(len(held_out.data)))
    assert load_dataset("digits", 8).data.shape == train.data.shape
    np.testing.assert_array_equal(held_out_digit(1, 8), held_out.data[0])
    assert held_out_digit(179, 8, channels=3).shape == (3, 8, 8)
    for number in (0, 180):
        with pytest.raises(DataError, match="1…179"):
            held_out_digit(number, 8)


@pytest.mark.parametrize("name", TOY_SETS)
def test_toy_sets_are_seeded_and_roughly_unit_scale(name):
    a, b, c = load_toy(name, 2000, seed=1), load_toy(name, 2000, seed=1), load_toy(name, 2000, seed=2)
    assert a.data.shape == (2000, 2) and not a.is_image
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    assert np.all(np.abs(a.data).max(0) < 3.0) and np.all(a.data.std(0) > 0.3)


def test_image_folder_is_recursive_skips_bad_files_and_crops(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.full((40, 60, 3), 255, np.uint8)).save(tmp_path / "wide.png")
    Image.fromarray(np.zeros((30, 20), np.uint8)).save(tmp_path / "sub" / "tall.jpg")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    d = load_image_folder(tmp_path, 16)
    assert d.data.shape == (2, 3, 16, 16)
    assert d.skipped == (("broken.png", d.skipped[0][1]),)
    assert load_image_folder(tmp_path, 8, channels=1).data.shape == (2, 1, 8, 8)


def test_empty_and_all_bad_folders_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no image files"):
        load_image_folder(tmp_path, 16)
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 1 image files"):
        load_image_folder(tmp_path, 16)
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(tmp_path / "a.png", 16)
    with pytest.raises(DataError, match="neither a folder, a CSV of points nor a built-in"):
        load_dataset("mnist")


def test_digits_keep_their_labels():
    every, train, held_out = load_digits(8, "all"), load_digits(8), load_digits(8, "held_out")
    assert every.num_classes == train.num_classes == held_out.num_classes == 10
    counts = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # the file's last column, digit by digit
    assert np.bincount(every.labels).tolist() == counts and every.labels.dtype == np.int64
    np.testing.assert_array_equal(held_out.labels, every.labels[9::10])
    assert (len(train.labels), len(held_out.labels)) == (1618, 179)
    zeros, ones = every.data[every.labels == 0], every.data[every.labels == 1]
    assert zeros[:, :, 4, 4].mean() < ones[:, :, 4, 4].mean()  # a 0 has a hole where a 1 has its stroke
    assert evaluation_set("digits", 8, 3).labels is not None


def test_toy_sets_are_labelled_by_their_parts():
    gaussians = load_toy("eight_gaussians", 4000)
    angles = np.arctan2(gaussians.data[:, 1], gaussians.data[:, 0])
    nearest = np.round(angles / (np.pi / 4)).astype(int) % 8
    np.testing.assert_array_equal(nearest, gaussians.labels)
    moons = load_toy("two_moons", 4000)
    upper = moons.data[moons.labels == 0]
    assert moons.num_classes == 2 and upper[:, 1].mean() > moons.data[moons.labels == 1][:, 1].mean()
    roll = load_toy("swiss_roll", 4000)
    radius = np.linalg.norm(roll.data, axis=1)
    assert radius[roll.labels == 0].max() < radius[roll.labels == 1].mean()  # the inner half of the arm, then the outer
    board = load_toy("checkerboard", 4000)
    column, half = np.floor(board.data[:, 0] + 2), board.data[:, 1] >= 0
    np.testing.assert_array_equal(board.labels, 2 * column + half)
    for data in (gaussians, moons, roll, board):
        assert len(data.labels) == 4000 and np.bincount(data.labels).min() > 4000 / data.num_classes / 2


def test_a_points_file_may_carry_a_label_column_and_images_are_unlabelled(tmp_path):
    points = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], np.float32)
    labelled = load_points_file(save_points(points, tmp_path / "a.csv", labels=np.array([2, 0, 2])))
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == "x,y,label"
    np.testing.assert_array_equal(labelled.data, points)
    assert labelled.labels.tolist() == [2, 0, 2] and labelled.num_classes == 3
    unlabelled = load_points_file(save_points(points, tmp_path / "b.csv"))
    assert unlabelled.labels is None and unlabelled.num_classes == 0
    (tmp_path / "c.csv").write_text("x,y,label\n0,0,1.5\n1,1,0\n")
    with pytest.raises(DataError, match="whole numbers"):
        load_points_file(tmp_path / "c.csv")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    assert load_image_folder(tmp_path, 8).labels is None
    with pytest.raises(DataError, match="labels"):
        Dataset("bad", points, labels=np.array([0, 1]), num_classes=2)
