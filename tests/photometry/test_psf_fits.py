"""The PSF core fit's analytic Jacobian and the wing fit's grid start (the speed work of
issue 13 must not change what is fitted)."""

import math

import numpy as np
import pytest

from glue_zeropoint.photometry.psf import (
    MIN_TAIL_INDEX,
    _core_jacobian,
    _core_model,
    _fit_core,
    _fit_tail_law,
    law_annulus_mean,
)


@pytest.mark.parametrize("p", [
    [5000.0, 7.2, 6.9, math.log(1.3), math.log(0.9), 0.4, math.log(2.0)],
    [800.0, 5.0, 5.4, math.log(0.4), math.log(0.35), -1.1, math.log(0.3)],
    [1.0e5, 10.1, 9.7, math.log(3.0), math.log(3.0), 2.5, math.log(40.0)],
])
def test_core_jacobian_matches_finite_differences(p):
    os = 4
    sub = (np.arange(os) + 0.5) / os - 0.5
    yy, xx = np.mgrid[0:15, 0:15]
    gx = xx.ravel().astype(float)[:, None] + np.tile(sub, os)[None, :]
    gy = yy.ravel().astype(float)[:, None] + np.repeat(sub, os)[None, :]
    jac = _core_jacobian(np.asarray(p), gx, gy, os)
    # a floor for derivatives that vanish (theta of a round star): the rounding noise of a
    # finite difference of the model
    peak = np.max(np.abs(_core_model(np.asarray(p), gx, gy, os)))
    for k in range(7):
        h = 1e-6 * max(abs(p[k]), 1.0)
        hi, lo = np.array(p, float), np.array(p, float)
        hi[k] += h
        lo[k] -= h
        num = (_core_model(hi, gx, gy, os) - _core_model(lo, gx, gy, os)) / (2 * h)
        rounding = 100 * np.finfo(float).eps * peak / h
        assert np.max(np.abs(jac[:, k] - num)) < 1e-5 * np.max(np.abs(num)) + rounding, k


def test_core_fit_recovers_a_gaussian_width():
    """A Gaussian star drawn on a fine grid (not the fitted family): FWHM within 1%."""
    rng = np.random.default_rng(4)
    n, fwhm, x0, y0 = 21, 3.0, 10.3, 9.8
    sig = fwhm / (2 * math.sqrt(2 * math.log(2)))
    sub = (np.arange(10) + 0.5) / 10 - 0.5
    yy, xx = np.mgrid[0:n, 0:n]
    img = sum(np.exp(-((xx + a - x0) ** 2 + (yy + b - y0) ** 2) / (2 * sig ** 2))
              for a in sub for b in sub)
    img = img * 2e5 / img.sum()
    img = rng.poisson(img + 20.0) - 20.0
    fa, fb, _th, xc, yc, flux = _fit_core(img, np.ones(img.shape, bool), 10, 10, 2.5, 20.0)
    assert abs(math.sqrt(fa * fb) / fwhm - 1) < 0.01
    assert abs(xc - x0) < 0.02 and abs(yc - y0) < 0.02
    assert abs(flux / 2e5 - 1) < 0.02


def test_tail_fit_finds_the_injected_law():
    """Rings of a softened power law minus its sky-annulus mean: index and softening back."""
    a, p, c = 0.02, 4.2, 2.5
    q_true = (math.log(a), p, math.log(c))
    r = np.linspace(4.0, 15.0, 12)
    sky_in, sky_out = 20.0, 30.0
    s = a * (r ** 2 + c * c) ** (-p / 2) - law_annulus_mean(q_true, sky_in, sky_out)
    err = np.full(r.size, 1e-3 * s.min())
    res = _fit_tail_law((r, s, err, sky_in, sky_out), np.ones(r.size, bool), True)
    assert res is not None
    assert abs(res.x[1] - p) < 0.01
    assert abs(math.exp(res.x[2]) - c) < 0.02
    assert res.x[1] >= MIN_TAIL_INDEX
