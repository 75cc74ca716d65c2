"""Shapeset-3x2: layout, determinism, class balance, geometry, the overlap bound, rendering."""

import math

import numpy as np
import pytest
import torch

from inertia import data as D
from inertia.data.shapeset import _RADIUS, _draw


def test_images_are_flat_float32_in_the_unit_interval_and_labels_int64():
    x, y = D.shapeset(90, seed=0)
    assert x.shape == (90, 32 * 32) and x.dtype == torch.float32
    assert y.shape == (90,) and y.dtype == torch.int64
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert set(y.tolist()) <= set(range(9))


def test_unflattened_images_are_n_1_s_s_and_equal_the_flat_ones():
    flat, _ = D.shapeset(18, seed=1)
    square, _ = D.shapeset(18, seed=1, flatten=False)
    assert square.shape == (18, 1, 32, 32)
    assert torch.equal(square.reshape(18, -1), flat)


def test_as_images_reshapes_flat_images_to_n_1_s_s():
    flat, _ = D.shapeset(4, seed=0, image_size=20)
    img = D.as_images(flat)
    assert img.shape == (4, 1, 20, 20) and img.data_ptr() == flat.data_ptr()
    assert D.as_images(img) is img


def test_as_images_rejects_a_non_square_row():
    with pytest.raises(ValueError, match="1000 values per image is not 1 square channel"):
        D.as_images(torch.zeros(2, 1000))


def test_same_seed_gives_the_same_data_and_another_seed_other_data():
    a, b, c = D.shapeset(45, seed=3), D.shapeset(45, seed=3), D.shapeset(45, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_classes_are_exactly_balanced_when_nine_divides_n():
    _, y = D.shapeset(900, seed=1)
    assert torch.bincount(y, minlength=9).tolist() == [100] * 9


def test_class_counts_differ_by_at_most_one_otherwise():
    _, y = D.shapeset(100, seed=2)
    counts = torch.bincount(y, minlength=9)
    assert int(counts.max() - counts.min()) <= 1 and int(counts.sum()) == 100


def test_the_nine_classes_are_the_multisets_of_one_or_two_of_three_shapes():
    expected = {(i,) for i in range(3)} | {(i, j) for i in range(3) for j in range(i, 3)}
    assert set(D.SHAPESET_CLASSES) == expected and len(D.SHAPESET_CLASSES) == 9
    assert D.SHAPESET_CLASS_NAMES[0] == "triangle" and D.SHAPESET_CLASS_NAMES[7] == "triangle + ellipse"


def test_one_shape_classes_have_one_mask_and_pair_classes_two():
    _, y, m1, m2 = D.shapeset(180, seed=2, return_masks=True)
    pixels1, pixels2 = m1.sum((1, 2)), m2.sum((1, 2))
    pair = y >= 3
    assert torch.all(pixels1 > 0)
    assert torch.all(pixels2[pair] > 0) and torch.all(pixels2[~pair] == 0)


def test_image_is_the_background_with_the_shapes_painted_in_order():
    x, _, m1, m2 = D.shapeset(90, seed=5, flatten=False, return_masks=True)
    for img, a, b in zip(x[:, 0], m1, m2, strict=False):
        background = img[~(a | b)].unique()
        assert background.numel() == 1
        assert img[b].unique().numel() <= 1 and img[a & ~b].unique().numel() <= 1


def test_shapes_contrast_with_the_background_by_at_least_0_2():
    x, _, m1, m2 = D.shapeset(180, seed=6, flatten=False, return_masks=True)
    for img, a, b in zip(x[:, 0], m1, m2, strict=False):
        bg = img[~(a | b)][0]
        assert torch.all((img[a | b] - bg).abs() >= 0.2 - 1e-6)


@pytest.mark.parametrize("bound", [0.0, 0.2, 0.5])
def test_overlap_is_at_most_the_bound_times_the_smaller_area(bound):
    _, y, m1, m2 = D.shapeset(270, seed=5, max_overlap=bound, return_masks=True)
    pair = y >= 3
    shared = (m1 & m2).sum((1, 2))[pair]
    smaller = torch.minimum(m1.sum((1, 2)), m2.sum((1, 2)))[pair]
    assert torch.all(shared <= bound * smaller)


def test_shapes_do_overlap_when_allowed():
    # the bound is a constraint that binds, not an artefact of shapes that never touch
    _, y, m1, m2 = D.shapeset(270, seed=5, max_overlap=0.5, return_masks=True)
    assert int(((m1 & m2).sum((1, 2)) > 0).sum()) >= 10


# Expected area / R^2 of each kind, from its definition (module docstring): triangle
# 1/2 E[sin(2pi/3 + j1) + sin(2pi/3 + j2 - j1) + sin(2pi/3 - j2)] with j ~ U[-1/2, 1/2];
# parallelogram 2 E[a] E[sin phi] = 2 * 0.75 * (2 sqrt(2) / pi); ellipse pi E[a] = 0.75 pi.
_S3 = math.sqrt(3) / 2
_AREA_OVER_R2 = {
    0: 0.5 * (2 * _S3 * 2 * math.sin(0.5) + _S3 * 2 * (1 - math.cos(1))),
    1: 2 * 0.75 * 2 * math.sqrt(2) / math.pi,
    2: 0.75 * math.pi,
}


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_each_kind_covers_its_geometric_area(kind):
    size, (lo, hi) = 64, _RADIUS[False]
    masks = _draw(np.random.default_rng(kind), np.full(2000, kind), size, (lo, hi))
    mean_r2 = (hi**3 - lo**3) / (3 * (hi - lo)) * size**2  # E[R^2], R ~ U[lo, hi] * size
    expected = _AREA_OVER_R2[kind] * mean_r2
    # areas vary by about 45% between shapes, so the mean of 2000 has a standard error of 1%: allow 4
    assert float(masks.sum((1, 2)).mean()) == pytest.approx(expected, rel=0.04)


def test_easy_variant_is_white_shapes_on_black():
    x, _ = D.shapeset(27, seed=0, easy=True)
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}


def test_easy_variant_has_larger_shapes():
    _, y, m1, _ = D.shapeset(270, seed=0, return_masks=True)
    _, ye, m1e, _ = D.shapeset(270, seed=0, easy=True, return_masks=True)
    assert float(m1e.sum((1, 2)).float().mean()) > 1.5 * float(m1.sum((1, 2)).float().mean())


def test_easy_variant_places_disjoint_pairs():
    _, y, m1, m2 = D.shapeset(45, seed=0, easy=True, max_overlap=0.0, return_masks=True)
    assert int((m1 & m2).sum()) == 0 and torch.all(m2.sum((1, 2))[y >= 3] > 0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n": 0}, "n must be an integer >= 1, got 0"),
        ({"n": 10, "max_overlap": 1.5}, r"max_overlap must be a number in \[0, 1\], got 1.5"),
        ({"n": 10, "image_size": 8}, "image_size must be an integer >= 16, got 8"),
        ({"n": 10, "seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"n": 10, "seed": None}, "seed must be a non-negative integer, got None"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        D.shapeset(**kwargs)


def test_render_grid_writes_a_png_with_one_panel_per_image(tmp_path):
    import matplotlib.image

    x, y = D.shapeset(12, seed=0)
    fig = D.render_grid(x, y, tmp_path / "grid.png", ncols=4, class_names=D.SHAPESET_CLASS_NAMES)
    png = (tmp_path / "grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(tmp_path / "grid.png").ndim == 3
    assert len(fig.axes) == 12
    assert [ax.get_title() for ax in fig.axes[:3]] == [D.SHAPESET_CLASS_NAMES[int(c)] for c in y[:3]]


def test_render_grid_titles_are_label_numbers_without_class_names():
    x, y = D.shapeset(3, seed=0)
    fig = D.render_grid(x, y)
    assert [ax.get_title() for ax in fig.axes] == [str(int(c)) for c in y]


def test_render_grid_rejects_a_label_count_mismatch():
    x, y = D.shapeset(4, seed=0)
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        D.render_grid(x, y[:3])
