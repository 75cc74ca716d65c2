"""Generated data: shapes, dtypes, determinism, class balance, overlap bound."""

import numpy as np
import pytest
import torch

from inertia import data as D


def test_shapeset_shapes_dtypes_and_range():
    x, y = D.shapeset(90, seed=0)
    assert x.shape == (90, 1024) and x.dtype == torch.float32
    assert y.shape == (90,) and y.dtype == torch.int64
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert D.shapeset(9, seed=0, flatten=False)[0].shape == (9, 1, 32, 32)


def test_shapeset_is_deterministic_for_a_seed():
    a, b, c = D.shapeset(50, seed=3), D.shapeset(50, seed=3), D.shapeset(50, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_shapeset_classes_are_balanced():
    _, y = D.shapeset(900, seed=1)
    assert torch.bincount(y, minlength=9).tolist() == [100] * 9


def test_shapeset_has_nine_classes_of_one_or_two_shapes():
    assert len(D.SHAPESET_CLASSES) == 9
    assert {len(c) for c in D.SHAPESET_CLASSES} == {1, 2}
    assert len(set(tuple(sorted(c)) for c in D.SHAPESET_CLASSES)) == 9


def test_single_shape_images_have_two_grey_levels_and_pairs_at_most_three():
    x, y = D.shapeset(180, seed=2)
    for img, lab in zip(x, y):
        levels = torch.unique(img).numel()
        assert levels <= (2 if lab < 3 else 3)


@pytest.mark.parametrize("bound", [0.0, 0.2, 0.5])
def test_overlap_never_exceeds_the_bound(bound):
    _, y, m1, m2 = D.shapeset(300, seed=5, max_overlap=bound, return_masks=True)
    pairs = y >= 3
    inter = (m1 & m2).sum((1, 2))[pairs]
    smaller = torch.minimum(m1.sum((1, 2)), m2.sum((1, 2)))[pairs]
    assert torch.all(inter <= bound * smaller)
    assert torch.all(m2.sum((1, 2))[~pairs] == 0) and torch.all(m2.sum((1, 2))[pairs] > 0)


def test_easy_variant_has_black_background_and_white_shapes():
    x, _ = D.shapeset(20, seed=0, easy=True)
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        D.shapeset(0)
    with pytest.raises(ValueError, match=r"max_overlap must be in \[0, 1\], got 1.5"):
        D.shapeset(10, max_overlap=1.5)


def test_render_grid_writes_a_png(tmp_path):
    x, y = D.shapeset(12, seed=0)
    D.render_grid(x, y, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 1000


def test_curves_are_28x28_in_unit_range_and_deterministic():
    c = D.curves(20, seed=0)
    assert c.shape == (20, 784) and c.dtype == torch.float32
    assert float(c.min()) >= 0 and float(c.max()) <= 1
    assert torch.equal(c, D.curves(20, seed=0))


def test_curves_peak_at_one_on_the_curve_and_vanish_far_from_it():
    c = D.curves(50, seed=1)
    assert torch.all(c.max(1).values > 0.9)  # some pixel centre lies near the curve
    assert float((c < 1e-3).float().mean()) > 0.5  # most of the image is background


def test_curves_mean_image_error_is_about_21():
    # predicting the mean image: summed squared error per case (issue 8 measured 21.1)
    c = D.curves(2000, seed=0)
    sse = float(((c - c.mean(0)) ** 2).sum(1).mean())
    assert 15 < sse < 30


def test_deep_linear_regression_is_y_equals_w_star_x():
    d = D.deep_linear_regression(d_in=64, n=8, d_out=3, seed=0)
    assert d.X.shape == (64, 8) and d.Y.shape == (3, 8) and d.W_star.shape == (3, 64)
    torch.testing.assert_close(d.Y, d.W_star @ d.X)
    assert d.inputs.shape == (8, 64) and d.targets.shape == (8, 3)
    assert torch.equal(d.X, D.deep_linear_regression(d_in=64, n=8, d_out=3, seed=0).X)


def test_registry_names_every_data_set():
    for name in ("shapeset", "shapeset_easy", "curves", "addition", "multiplication", "memorization5",
                 "memorization20", "temporal_order", "deep_linear_regression", "mnist1d", "digits", "mnist", "cifar10"):
        assert callable(D.get(name))
    with pytest.raises(ValueError, match=r"unknown data set 'nope'; known: .*shapeset"):
        D.get("nope")


def test_digits_split_and_scale():
    s = D.digits()
    assert s.x_train.shape[1] == 64 and s.x_train.shape[0] + s.x_test.shape[0] == 1797
    assert float(s.x_train.max()) <= 1.0 and s.num_classes == 10


def test_mnist1d_generates_offline_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("INERTIA_CACHE", str(tmp_path))
    a = D.mnist1d(60, 20, seed=1)
    assert a.x_train.shape == (60, 40) and a.y_test.shape == (20,)
    assert list(tmp_path.glob("mnist1d-60-20-1.pt"))
    b = D.mnist1d(60, 20, seed=1)
    assert torch.equal(a.x_train, b.x_train)
