"""Reference fusions by hand; the comparison grid is a real PNG with the expected layout."""
import imageio.v3 as iio
import numpy as np

from tf_twogan.baselines import average_fusion, fuse_folder, max_fusion
from tf_twogan.figures import comparison_grid, enlarged_inset


def test_average_and_max_by_hand():
    ir = np.array([[0, 10], [255, 3]], np.uint8)
    vis = np.array([[1, 20], [0, 3]], np.uint8)
    assert average_fusion(ir, vis).tolist() == [[1, 15], [128, 3]]   # 0.5 rounds up, 127.5 -> 128
    assert max_fusion(ir, vis).tolist() == [[1, 20], [255, 3]]
    rgb = np.stack([vis] * 3, axis=-1)                                   # gray stored as RGB
    assert max_fusion(ir, rgb).tolist() == [[1, 20], [255, 3]]


def test_fuse_folder_writes_one_png_per_pair(tmp_path):
    for kind, value in (("ir", 100), ("vis", 50)):
        (tmp_path / kind).mkdir()
        iio.imwrite(tmp_path / kind / "a.png", np.full((8, 9), value, np.uint8))
    [path] = fuse_folder(average_fusion, tmp_path / "ir", tmp_path / "vis", tmp_path / "out")
    assert path.name == "a.png" and (iio.imread(path) == 75).all()


def test_inset_enlarges_the_box_into_the_corner():
    image = np.arange(100, dtype=np.uint8).reshape(10, 10)
    out = enlarged_inset(image, (0, 0, 2), scale=2)
    np.testing.assert_array_equal(out[-4:, -4:], [[0, 0, 1, 1], [0, 0, 1, 1], [10, 10, 11, 11], [10, 10, 11, 11]])
    np.testing.assert_array_equal(out[:6, :6], image[:6, :6])


def test_comparison_grid_writes_a_png(tmp_path):
    images = [np.random.default_rng(i).integers(0, 255, (40, 50), dtype=np.uint8) for i in range(2)]
    path = comparison_grid([("IR", images), ("ours", images)], [(5, 5, 10), (20, 30, 10)], tmp_path / "grid.png",
                           column_titles=["a", "b"])
    picture = iio.imread(path)
    assert picture.ndim == 3 and picture.shape[0] > 100 and not list(tmp_path.glob(".*tmp*"))


def test_hot_target_box_finds_the_window_that_stands_out_most_hotly():
    from tf_twogan.figures import hot_target_box

    ir = np.full((40, 60), 20, np.uint8)
    ir[25:31, 41:47] = 250          # a 6x6 hot target
    ir[0:3, 0:3] = 255              # a smaller, hotter speck: less mean heat in a 6x6 window
    assert hot_target_box(ir, 6) == (25, 41, 6)
    assert hot_target_box(np.dstack([ir] * 3), 6) == (25, 41, 6)    # gray stored as RGB
    y, x, side = hot_target_box(ir, 100)                            # the window never exceeds the image
    assert (y, side) == (0, 40) and x <= 41 and x + side >= 47
    # a 4x4 hot person beside a large warm field: the field's 6x6 windows are brighter on
    # average (120 against 116.7), but the person stands out from its surroundings
    scene = np.full((100, 100), 10, np.uint8)
    scene[:, :50] = 120
    scene[70:74, 80:84] = 250
    y, x, _ = hot_target_box(scene, 6)
    assert 68 <= y <= 70 and 78 <= x <= 80
