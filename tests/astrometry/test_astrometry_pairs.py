"""The science of "match to sky" on its own (no glue, no Qt): snapping, nearest star, fit."""

import numpy as np
import pytest

from glue_zeropoint.astrometry.pairs import nearest_star, snap_to_star, wcs_from_pairs
from glue_zeropoint.exceptions import InputError


def _star_image(x0=30.3, y0=20.7, shape=(50, 60)):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    rng = np.random.default_rng(1)
    return (100.0 + rng.normal(0, 2, shape)
            + 5000.0 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.5 ** 2)))


def test_snap_to_star_centroid():
    x, y = snap_to_star(_star_image(), 33.0, 18.0, radius=8.0)
    assert x == pytest.approx(30.3, abs=0.05) and y == pytest.approx(20.7, abs=0.05)
    with pytest.raises(InputError, match="no star near"):
        snap_to_star(_star_image(), 5.0, 45.0, radius=4.0)
    with pytest.raises(InputError, match="outside the image"):
        snap_to_star(_star_image(), 500.0, 45.0, radius=4.0)


def test_nearest_star_scales_ra_by_cos_dec():
    ra = np.array([10.0, 10.0 + 1.5 / 3600 / np.cos(np.deg2rad(60.0)), np.nan])
    dec = np.array([60.0, 60.0, 60.0])
    # 1 arcsec of RA*cos(dec) from the first star, 1.5 from the second
    click_ra = 10.0 + 1.0 / 3600 / np.cos(np.deg2rad(60.0))
    assert nearest_star(ra, dec, click_ra, 60.0) == 1  # nearer on the sky (0.5 arcsec)
    with pytest.raises(InputError, match="finite"):
        nearest_star([np.nan], [np.nan], 0.0, 0.0)


def test_wcs_from_pairs_needs_three():
    from astropy.coordinates import SkyCoord

    with pytest.raises(InputError, match="at least 3"):
        wcs_from_pairs(np.zeros((2, 2)), SkyCoord([1, 2], [3, 4], unit="deg"), (100, 100))
