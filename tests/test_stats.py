"""The shared statistical primitives (glue_zeropoint.stats)."""

import numpy as np
import pytest
from astropy.stats import mad_std as astropy_mad_std

from glue_zeropoint.stats import (
    MAD_TO_SIGMA,
    mad_std,
    pixel_scale_arcsec,
    robust_sigma_about,
    solve_excess_variance,
)


def test_mad_constant_is_astropys():
    x = np.random.default_rng(1).normal(size=1001)
    assert mad_std(x) == pytest.approx(float(astropy_mad_std(x)), rel=1e-15)
    assert MAD_TO_SIGMA * np.median(np.abs(x - np.median(x))) == pytest.approx(mad_std(x))
    assert robust_sigma_about([]) == 0.0


def test_excess_variance_makes_chi2_dof_one():
    rng = np.random.default_rng(2)
    y = rng.normal(0, 0.1, 400)
    e2 = np.full(400, 0.05 ** 2)

    def chi2(s2):
        w = 1.0 / (e2 + s2)
        mu = np.sum(w * y) / np.sum(w)
        return np.sum(w * (y - mu) ** 2)

    s2 = solve_excess_variance(chi2, y.size - 1, 1.0)
    assert chi2(s2) == pytest.approx(y.size - 1, rel=1e-5)
    assert solve_excess_variance(chi2, 1e9, 1.0) == 0.0  # errors already cover the scatter
    assert solve_excess_variance(chi2, 0, 1.0) == 0.0


def test_pixel_scale_from_wcs():
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600]
    assert pixel_scale_arcsec(w) == pytest.approx(1.5)
