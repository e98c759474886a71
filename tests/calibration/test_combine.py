import math

import numpy as np
import pytest

from glue_zeropoint.calibration import combine_block, combine_frames, median_variance_factor


def test_median_variance_factor():
    assert median_variance_factor(1) == 1.0 and median_variance_factor(2) == 1.0
    assert median_variance_factor(3) == pytest.approx(1.344, abs=0.01)
    # tends to pi/2 from below, odd n faster than even n (values at n = 101, 1000 are
    # checked against Monte Carlo in the test below for smaller n)
    assert median_variance_factor(101) == pytest.approx(math.pi / 2, rel=0.01)
    assert median_variance_factor(100) < median_variance_factor(1000) < math.pi / 2
    np.testing.assert_allclose(median_variance_factor(np.array([1, 5, 9])),
                               [1.0, 1.43, 1.494], atol=0.01)


def test_median_variance_factor_matches_simulation():
    rng = np.random.default_rng(3)
    for n in (4, 5, 9):
        x = rng.standard_normal((100000, n))
        assert np.median(x, axis=1).var() * n == pytest.approx(median_variance_factor(n),
                                                               rel=0.02)


def test_plain_median_and_mean_without_outliers():
    rng = np.random.default_rng(1)
    stack = rng.normal(100, 5, (7, 20, 30)).astype(np.float32)
    med, n = combine_block(stack, "median", noise=(0.0, 25.0), sigma=10)
    np.testing.assert_allclose(med, np.median(stack, axis=0), rtol=1e-6)
    assert (n == 7).all()
    mean, _ = combine_block(stack, "mean", noise=(0.0, 25.0), sigma=10)
    np.testing.assert_allclose(mean, stack.mean(axis=0), rtol=1e-5)


def test_noise_model_rejects_cosmic_rays_from_five_frames():
    rng = np.random.default_rng(2)
    stack = rng.normal(50, 8, (5, 40, 40)).astype(np.float32)
    stack[2, 10, 10] += 3000
    stack[4, 20, 30] += 80  # a 10-sigma hit
    out, n = combine_block(stack, "mean", noise=(1.0, 64.0))
    assert n[10, 10] == 4 and n[20, 30] == 4
    assert abs(out[10, 10] - 50) < 20 and abs(out[20, 30] - 50) < 20
    # with 5 values a standard-deviation clip could not have found it; MAD does
    out_mad, n_mad = combine_block(stack, "mean")
    assert n_mad[10, 10] <= 4 and abs(out_mad[10, 10] - 50) < 20


def test_nan_values_are_left_out_and_all_nan_gives_nan():
    stack = np.full((3, 2, 2), 10.0, np.float32)
    stack[0, 0, 0] = np.nan
    stack[:, 1, 1] = np.nan
    out, n = combine_block(stack)
    assert out[0, 0] == 10 and n[0, 0] == 2
    assert np.isnan(out[1, 1]) and n[1, 1] == 0


def test_chunked_equals_whole():
    rng = np.random.default_rng(4)
    frames = [rng.normal(0, 1, (53, 17)).astype(np.float32) for _ in range(6)]
    sources = [lambda y0, y1, out, f=f: out.__setitem__(Ellipsis, f[y0:y1]) for f in frames]
    whole, n_whole = combine_block(np.stack(frames))
    calls = []
    chunked, n_chunk = combine_frames(sources, (53, 17), chunk_bytes=6 * 17 * 4 * 5,
                                      progress=lambda d, t, m: calls.append(d))
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_array_equal(n_whole, n_chunk)
    assert len(calls) == 11 and calls[-1] == 6  # 5 rows per block


def test_bad_method():
    with pytest.raises(ValueError, match="'median' or 'mean'"):
        combine_block(np.zeros((2, 2, 2), np.float32), "average")


@pytest.mark.parametrize("n", [32, 41, 64])
def test_median_variance_factor_beyond_the_table_matches_monte_carlo(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(40000, n))
    measured = np.var(np.median(x, axis=1)) * n
    # the Monte Carlo estimate's own relative error is sqrt(2/40000) = 0.7%
    assert median_variance_factor(n) == pytest.approx(measured, rel=0.025)
