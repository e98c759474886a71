"""find_stars, measure_fwhm, estimate_background."""

import numpy as np
import pytest
from astropy.nddata import CCDData
from scipy.spatial import cKDTree

from glue_zeropoint.exceptions import InputError, PhotometryError
from glue_zeropoint.photometry import estimate_background, find_stars, measure_fwhm
from glue_zeropoint.simulate import simulate_image


@pytest.fixture(scope="module")
def sim():
    return simulate_image(shape=(512, 512), n_stars=150, seed=21, fwhm=3.5)


def test_find_stars_recovers_bright_stars(sim):
    ccd, truth = sim
    found = find_stars(ccd)
    assert {"id", "x", "y", "peak", "sharpness", "roundness1"} <= set(found.colnames)
    assert found.meta["fwhm"] == pytest.approx(3.5, rel=0.08)
    stars = truth["field"].stars
    inside = stars[(stars["x"] > 5) & (stars["x"] < 506) & (stars["y"] > 5) & (stars["y"] < 506)]
    bright = inside[inside["mag_V"] < 16.0]
    d, _ = cKDTree(np.c_[found["x"], found["y"]]).query(np.c_[bright["x"], bright["y"]])
    assert np.mean(d < 1.0) > 0.95
    # few spurious detections: most detections are real stars
    d2, _ = cKDTree(np.c_[stars["x"], stars["y"]]).query(np.c_[found["x"], found["y"]])
    assert np.mean(d2 < 1.5) > 0.95
    assert np.all(np.diff(found["peak"]) <= 0)  # brightest first


def test_find_stars_options(sim):
    ccd, _ = sim
    from photutils.detection import IRAFStarFinder

    a = find_stars(ccd, fwhm=3.5, threshold=10.0)
    b = find_stars(ccd, fwhm=3.5, threshold=5.0)
    assert len(a) < len(b)
    c = find_stars(ccd, fwhm=3.5, finder=IRAFStarFinder)
    assert len(c) > 0.7 * len(b)
    assert len(find_stars(ccd, fwhm=3.5, max_stars=10)) == 10
    mask = np.zeros(ccd.shape, bool)
    mask[:, :256] = True
    half = find_stars(ccd, fwhm=3.5, mask=mask)
    assert np.all(half["x"] > 250)


def test_no_stars_is_a_clear_error():
    rng = np.random.default_rng(0)
    blank = CCDData(rng.normal(100, 10, (200, 200)), unit="electron", meta={"EXPTIME": 1.0})
    with pytest.raises(PhotometryError, match="no stars found above"):
        find_stars(blank, fwhm=3.0)
    with pytest.raises(PhotometryError, match="no stars found"):
        find_stars(blank)
    with pytest.raises(InputError, match="threshold"):
        find_stars(blank, threshold=0)
    flat = CCDData(np.full((100, 100), 5.0), unit="electron")
    with pytest.raises(PhotometryError, match="rms"):
        find_stars(flat, fwhm=3.0)


@pytest.mark.parametrize("fwhm", [2.5, 5.0])
def test_measure_fwhm(fwhm):
    ccd, truth = simulate_image(shape=(384, 384), n_stars=120, seed=3, fwhm=fwhm)
    s = truth["field"].stars
    s = s[(s["x"] > 20) & (s["x"] < 363) & (s["y"] > 20) & (s["y"] < 363)]
    # within 8%: pixel integration broadens the profile slightly
    assert measure_fwhm(ccd, s) == pytest.approx(fwhm, rel=0.08)
    with pytest.raises(PhotometryError, match="FWHM"):
        measure_fwhm(ccd, np.c_[[1.0], [1.0]])


def test_background_matches_truth(sim):
    ccd, truth = sim
    data = np.asarray(ccd.data, float)
    bkg = estimate_background(data, np.zeros(data.shape, bool))
    # the median of Poisson(~120) + faint-star wings: within 1% of the true sky
    assert bkg.median == pytest.approx(truth["sky"], rel=0.01)
    assert bkg.median_rms == pytest.approx(np.sqrt(truth["sky"] + 64.0), rel=0.05)
    assert bkg.level.shape == data.shape
    assert bkg.rms.shape == data.shape
