"""measure_image: injection-recovery over many seeds, and every bad input's clear error."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from glue_zeropoint.exceptions import CatalogError, FitError, InputError, PhotometryError
from glue_zeropoint.simulate import FilterTruth, reference_catalog, simulate_image
from glue_zeropoint.zeropoint import Measurement, measure_image

N_SEEDS = 40


def _run(seed, color_term):
    filt = FilterTruth(zp=21.5, color_term=color_term, sky_sb=20.0)
    ccd, truth = simulate_image(shape=(384, 384), n_stars=120, seed=1000 + seed, filt=filt)
    cat = reference_catalog(truth["field"], style="normalised", seed=1000 + seed)
    m = measure_image(ccd, cat, "V", color="B-V" if color_term else None, color_ref=0.6)
    return m, filt


def _check(name, dev, err):
    """Coverage, stated/actual error and the pull distribution over the seeds.

    The bounds for 40 seeds: the mean of 40 unit-width pulls has a standard error of 0.16, so
    |mean| < 0.35 is ~2 sigma (a bias of ~0.6 sigma, as the zero point had before the fixes of
    tests/benchmarks/diagnose_zp_bias.py, fails it in nearly every draw); the sample standard
    deviation of 40 unit pulls has a standard error of 0.11, so 0.6 - 1.3 allows for the spread
    of the stated errors themselves (the aperture-correction error rests on a few stars)."""
    dev, err = np.asarray(dev), np.asarray(err)
    pull = dev / err
    cover = np.mean(np.abs(pull) <= 3)
    ratio = np.median(err) / np.std(dev)
    msg = (f"{name}: coverage {cover:.3f}, stated/actual {ratio:.2f}, pull mean "
           f"{pull.mean():+.2f} std {pull.std():.2f}, bias {dev.mean():+.4f}")
    assert cover >= 0.95, msg
    # 1.6: since the wing work (outer rings' extrapolation error, halo light) the stated
    # error is 1.5x the scatter on this family (known, issue 10's closing note); was 1.5
    assert 0.5 <= ratio <= 1.6, msg
    assert abs(pull.mean()) < 0.35, msg
    assert 0.6 <= pull.std() <= 1.3, msg
    return msg


@pytest.mark.slow
def test_injection_recovery_zero_point_colour_term_and_sky():
    """Over 40 seeds with an injected colour term (V 10-18): the ZP (at colour_ref 0.6) and the
    colour term lie within 3 stated errors of the truth in >= 95% of seeds, the stated errors
    are at most 1.6x (and at least 0.5x) the actual spread, the pulls (value - truth) / stated
    error are centred (|mean| < 0.35) with a width of 0.6 - 1.3, and the sky brightness is
    within 0.03 mag in >= 95% of seeds."""
    dev, err, cdev, cerr, sky = [], [], [], [], []
    for seed in range(N_SEEDS):
        m, filt = _run(seed, 0.12)
        z = m.zeropoint
        assert z.color == "B-V" and z.color_ref == 0.6
        dev.append(z.zp - filt.zp)
        err.append(z.zp_err_total)
        cdev.append(z.color_term - filt.color_term)
        cerr.append(z.color_term_err)
        sky.append(m.sky_sb - filt.sky_sb)
    print(_check("ZP", dev, err))
    print(_check("colour term", cdev, cerr))
    sky = np.abs(sky)
    assert np.mean(sky < 0.03) >= 0.95, f"sky deviations {np.sort(sky)[-3:]}"
    assert np.median(sky) < 0.015


@pytest.fixture(scope="module")
def sim():
    ccd, truth = simulate_image(shape=(384, 384), n_stars=120, seed=7)
    cat = reference_catalog(truth["field"], style="normalised", seed=7)
    return ccd, truth, cat


def test_measurement_contents_and_given_positions(sim):
    ccd, truth, cat = sim
    calls = []
    m = measure_image(ccd, cat, "V", progress=lambda d, t, msg: calls.append((d, t, msg)))
    assert isinstance(m, Measurement)
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]
    assert len(m.matches) == len(m.stars) == len(m.zeropoint.stars)
    d = m.to_dict()
    assert d["sky_sb"] == m.sky_sb and d["fwhm"] > 0 and d["match_radius_arcsec"] > 0
    s = truth["field"].stars
    s = s[(s["x"] > 10) & (s["x"] < 373) & (s["y"] > 10) & (s["y"] < 373) & (s["mag_V"] < 16)]
    sky = SkyCoord(s["ra"], s["dec"], unit="deg")
    m2 = measure_image(ccd, cat, "V", positions=sky)
    assert len(m2.stars) == len(s)
    assert abs(m2.zeropoint.zp - m.zeropoint.zp) < 3 * m.zeropoint.zp_err_total


@pytest.mark.filterwarnings("ignore:aperture correction")
def test_bad_inputs_give_clear_errors(sim):
    ccd, truth, cat = sim
    no_t = ccd.copy()
    del no_t.meta["EXPTIME"]
    with pytest.raises(InputError, match="EXPTIME.*--exptime"):
        measure_image(no_t, cat, "V")
    no_wcs = ccd.copy()
    no_wcs.wcs = None
    with pytest.raises(InputError, match="WCS.*--wcs"):
        measure_image(no_wcs, cat, "V")
    with pytest.raises(CatalogError, match="no band 'R'; it has: B, V"):
        measure_image(ccd, cat, "R")
    far = cat.copy()
    far["dec"] = far["dec"] - 2.0
    with pytest.raises(CatalogError, match="none of the .* falls on the image"):
        measure_image(ccd, far, "V")
    shifted = cat.copy()
    shifted["ra"] = shifted["ra"] + 15.0 / 3600 / np.cos(np.deg2rad(shifted["dec"]))
    with pytest.raises(CatalogError, match="no star .* matches.*WCS is probably off"):
        measure_image(ccd, shifted, "V", radius=2.0, solve_wcs="never")
    nan_cat = cat.copy()
    nan_cat["mag_V"] = np.nan
    with pytest.raises(CatalogError, match="no star has a V magnitude"):
        measure_image(ccd, nan_cat, "V")
    sat, _ = simulate_image(shape=(384, 384), n_stars=120, seed=7, saturation=200.0)
    with pytest.raises(PhotometryError, match="stars are saturated"):
        measure_image(sat, cat, "V")
    with pytest.raises((PhotometryError, FitError), match="saturated"):
        measure_image(sat, cat, "V", fwhm=3.5)
    blank = ccd.copy()
    blank.data = np.random.default_rng(0).normal(100, 10, ccd.shape).astype(np.float32)
    with pytest.raises(PhotometryError, match="no stars found"):
        measure_image(blank, cat, "V")
    allnan = ccd.copy()
    allnan.data = np.full(ccd.shape, np.nan, dtype=np.float32)
    with pytest.raises(InputError, match="no finite"):
        measure_image(allnan, cat, "V")


def test_rough_header_wcs_is_plate_solved_from(tmp_path):
    """A mount's WCS 15 arcsec off: 'auto' solves from it and recovers the zero point."""
    ccd, truth = simulate_image(shape=(384, 384), n_stars=150, seed=21)
    cat = reference_catalog(truth["field"], bands=("B", "V"), seed=21, style="normalised")
    off = cat.copy()  # moving the catalog 15" east is the same as a header WCS 15" west
    off["ra"] = off["ra"] + 15.0 / 3600 / np.cos(np.deg2rad(off["dec"]))
    result = measure_image(ccd, off, "V", radius=2.0)
    assert result.astrometry["wcs_source"] == "solved"
    assert result.astrometry["wcs_rms_pix"] < 0.3
    assert any("header WCS looked off" in note for note in result.notes)
    zp = result.zeropoint
    assert abs(zp.zp - truth["filter"].zp) < 3 * zp.zp_err_total


def test_a_crowded_field_keeps_an_aperture_its_stars_fit_in():
    """80 stars of FWHM 6 px on 384^2 (an injection family): no isolated curve-of-growth
    star, so the aperture had been 2 FWHM (12 px), every star then had a neighbour in it and
    the fit refused ("27 crowded"). The radius now steps down while more than a quarter of
    the stars would be crowded; the zero point is found and holds the truth."""
    import warnings

    from glue_zeropoint.photometry.aperture import GrowthCurveWarning
    from glue_zeropoint.simulate import FilterTruth, make_field, reference_catalog, simulate_image
    from glue_zeropoint.zeropoint import measure_image

    filt = FilterTruth(band="V", zp=21.5, color_term=0.0, sky_sb=20.0)
    field = make_field((384, 384), seed=5033, n_stars=80, psf="moffat:beta=3", fwhm=6.0)
    ccd, _ = simulate_image(field, filt, 30.0, seed=5033)
    cat = reference_catalog(field, bands=("B", "V"), seed=5033, style="apass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GrowthCurveWarning)
        m = measure_image(ccd, cat, "V")
    z = m.zeropoint
    assert m.stars.meta["aperture_radius"] < 2.0 * m.stars.meta["fwhm"] - 1.0
    assert z.n_used >= 5
    assert abs(z.zp - 21.5) < 3 * z.zp_err_total
