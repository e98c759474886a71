"""sky_surface_brightness, sky_level, pixel_area_arcsec2, source_mask."""

import numpy as np
import pytest

from glue_zeropoint.exceptions import InputError, PhotometryError
from glue_zeropoint.simulate import FilterTruth, simulate_image
from glue_zeropoint.zeropoint import (
    ZeroPoint,
    pixel_area_arcsec2,
    sky_level,
    sky_surface_brightness,
    source_mask,
)


@pytest.mark.parametrize("seed,pixel_scale,sky_sb", [(1, 1.0, 20.0), (2, 1.6, 21.3),
                                                     (3, 0.7, 19.2)])
def test_sky_brightness_with_true_zp(seed, pixel_scale, sky_sb):
    filt = FilterTruth(zp=21.5, sky_sb=sky_sb)
    ccd, truth = simulate_image(shape=(384, 384), n_stars=150, seed=seed, filt=filt,
                                pixel_scale=pixel_scale)
    mu, err = sky_surface_brightness(ccd, filt.zp)
    assert abs(mu - sky_sb) < 0.03
    assert 0 < err < 0.03
    # a ZeroPoint object brings its total error along
    zp = ZeroPoint(zp=filt.zp, zp_err=0.01, zp_err_total=0.02, scatter=0.02, sigma_int=0.0,
                   n_matched=10, n_used=10, band="V")
    mu2, err2 = sky_surface_brightness(ccd, zp)
    assert mu2 == pytest.approx(mu) and err2 >= 0.02
    # the given pixel scale overrides the WCS
    mu3, _ = sky_surface_brightness(ccd, filt.zp, pixel_scale=2 * pixel_scale)
    assert mu3 == pytest.approx(mu + 2.5 * np.log10(4.0))


def test_source_mask_and_sky_level():
    ccd, truth = simulate_image(shape=(256, 256), n_stars=80, seed=4)
    data = np.asarray(ccd.data, float)
    mask = source_mask(data, np.zeros(data.shape, bool))
    assert 0.01 < mask.mean() < 0.5
    s_masked, e = sky_level(ccd)
    s_plain, _ = sky_level(ccd, mask_sources=False)
    assert abs(s_masked - truth["sky"]) < abs(s_plain - truth["sky"]) + 0.05
    assert s_masked == pytest.approx(truth["sky"], rel=0.01)
    with pytest.raises(InputError, match="shape"):
        sky_level(ccd, mask_sources=np.zeros((3, 3), bool))
    with pytest.raises(PhotometryError, match="fewer than 100"):
        sky_level(ccd, mask_sources=np.ones(ccd.shape, bool))


def test_bad_inputs():
    ccd, truth = simulate_image(shape=(128, 128), n_stars=10, seed=5)
    sub = ccd.copy()
    sub.data = sub.data - truth["sky"] - 50.0
    with pytest.raises(PhotometryError, match="sky-subtracted"):
        sky_surface_brightness(sub, 21.5)
    no_wcs = ccd.copy()
    no_wcs.wcs = None
    with pytest.raises(InputError, match="pixel_scale"):
        sky_surface_brightness(no_wcs, 21.5)
    assert pixel_area_arcsec2(pixel_scale=0.5) == 0.25
    with pytest.raises(InputError, match="pixel_scale"):
        pixel_area_arcsec2(pixel_scale=0)
