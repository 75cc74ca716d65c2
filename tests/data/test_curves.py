"""CURVES-like images: layout, determinism, and the Gaussian pen against an exact reference."""

import math

import numpy as np
import pytest
import torch

from inertia import data as D
from inertia.data.curves import _render


def test_images_are_float32_784_in_the_unit_interval():
    c = D.curves(20, seed=0)
    assert c.shape == (20, 784) and c.dtype == torch.float32
    assert 0 <= float(c.min()) and float(c.max()) <= 1


def test_same_seed_gives_the_same_images_and_another_seed_others():
    assert torch.equal(D.curves(10, seed=2), D.curves(10, seed=2))
    assert not torch.equal(D.curves(10, seed=2), D.curves(10, seed=3))


def test_a_straight_curve_is_drawn_with_a_gaussian_pen():
    # control points on the horizontal line y = 14.5, through the centres of row 14
    ctrl = np.array([[[4.5, 14.5], [14.5, 14.5], [24.5, 14.5]]])
    img = _render(ctrl, 28, 0.8).reshape(28, 28)
    torch.testing.assert_close(img[14, 4:25], torch.ones(21))
    for row in (12, 13, 15, 16):  # d = |row - 14| pixels
        want = math.exp(-((row - 14) ** 2) / (2 * 0.8**2))
        torch.testing.assert_close(img[row, 4:25], torch.full((21,), want), rtol=0, atol=1e-5)
    assert float(img[14, 2]) == pytest.approx(math.exp(-(2.0**2) / 1.28), abs=1e-5)  # 2 px beyond P0


def _exact(ctrl, size=28, sigma=0.8, segments=1000):
    """exp(-d^2 / 2 sigma^2) with d the distance to the curve, in float64 against a 1000-segment
    polyline (within |P0 - 2P1 + P2| / (4 * 1000^2) < 2e-5 px of the curve)."""
    t = np.linspace(0, 1, segments + 1)[:, None]
    g = torch.arange(size, dtype=torch.float64) + 0.5
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # [P, 2]
    out = []
    for p0, p1, p2 in ctrl:
        pts = torch.from_numpy((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2)  # [S+1, 2]
        a, d = pts[:-1, None], (pts[1:] - pts[:-1])[:, None]  # [S, 1, 2]
        r = grid[None] - a  # [S, P, 2]
        proj = ((r * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-300)).clamp(0, 1)
        d_sq = ((r - proj[..., None] * d) ** 2).sum(-1).amin(0)
        out.append(torch.exp(-d_sq / (2 * sigma**2)))
    return torch.stack(out)


@pytest.mark.slow
def test_intensity_is_the_gaussian_of_the_distance_to_the_bezier_curve():
    ctrl = np.random.default_rng(0).uniform(2, 26, (20, 3, 2))
    ctrl[0] = [[24.3, 25.2], [2.4, 22.7], [25.5, 25.0]]  # a hairpin: the largest curvature
    got = _render(ctrl, 28, 0.8).double()
    # the module's bound: 32-segment chords are within |P0 - 2P1 + P2| / 4096 <= 0.0166 px of the
    # curve, and the intensity changes by at most e^(-1/2) / sigma per px; plus float32 rounding
    bound = 48 * math.sqrt(2) / 4096 * math.exp(-0.5) / 0.8 + 1e-4
    assert float((got - _exact(ctrl)).abs().max()) <= bound


def test_every_image_reaches_one_on_its_curve_and_is_dark_elsewhere():
    c = D.curves(50, seed=1)
    # every point of the plane is within sqrt(2)/2 px of a pixel centre: max >= exp(-0.5 / 1.28) = 0.68
    assert torch.all(c.max(1).values >= 0.67)
    assert torch.all((c < 1e-3).float().mean(1) > 0.5)  # most of each image is background


def test_mean_image_predictor_error_is_about_22_per_image():
    # the figure docs/data.md states (issue 8's prototype: 21.1), summed squared error per image
    c = D.curves(2000, seed=0)
    sse = float(((c - c.mean(0)) ** 2).sum(1).mean())
    assert sse == pytest.approx(22.5, abs=1.0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n": -1}, "n must be an integer >= 1, got -1"),
        ({"n": 5, "pen_sigma": 0}, "pen_sigma must be a positive number of pixels, got 0"),
        ({"n": 5, "image_size": 4}, "image_size must be an integer >= 8, got 4"),
        ({"n": 5, "seed": 1.5}, "seed must be a non-negative integer, got 1.5"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        D.curves(**kwargs)


def test_no_pixel_is_a_denormal_float():
    x = D.curves(300, seed=3)
    tiny = torch.finfo(torch.float32).tiny
    assert not bool(((x != 0) & (x < tiny)).any())
    assert float((x == 0).float().mean()) > 0.01  # far from the pen the intensity is exactly 0
