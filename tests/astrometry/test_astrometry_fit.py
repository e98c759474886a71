"""Fitting a TAN / TAN-SIP WCS to matched pairs, and refining it with all stars."""

import numpy as np
import pytest
from astrometry_helpers import rms_vs_truth
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import fit_wcs_from_points

from glue_zeropoint.astrometry import fit_tan_sip, fit_wcs_from_pairs, refine_wcs
from glue_zeropoint.exceptions import InputError
from glue_zeropoint.simulate import make_field


def _field(sip=0.0, flip=False, rotation=33.0, n=400, seed=3):
    return make_field((1024, 1024), n_stars=n, seed=seed, rotation=rotation, flip=flip,
                      sip_coeff=sip, pixel_scale=1.3)


@pytest.mark.parametrize("sip,flip", [(0.0, False), (0.0, True), (6.0, False), (6.0, True)])
def test_fit_recovers_the_true_wcs(sip, flip):
    field = _field(sip, flip)
    s = field.stars
    noise = np.random.default_rng(1).normal(0, 0.05, (2, len(s)))
    fit = fit_tan_sip(s["x"] + noise[0], s["y"] + noise[1], s["ra"], s["dec"], field.shape)
    assert rms_vs_truth(fit.wcs, field) < 0.02
    assert fit.degree == (3 if sip else 1)  # BIC adds SIP terms only when they are needed
    assert fit.rms_arcsec == pytest.approx(0.05 * 1.3 * np.sqrt(2), rel=0.2)
    # noise-free: exact to a thousandth of a pixel
    exact = fit_tan_sip(s["x"], s["y"], s["ra"], s["dec"], field.shape, degree=3 if sip else 1)
    assert rms_vs_truth(exact.wcs, field) < 1e-3


def test_sip_inverse_round_trips():
    field = _field(8.0)
    s = field.stars
    w = fit_tan_sip(s["x"], s["y"], s["ra"], s["dec"], field.shape).wcs
    assert w.sip is not None and w.sip.ap is not None
    gx, gy = np.meshgrid(np.linspace(0, 1023, 15), np.linspace(0, 1023, 15))
    ra, dec = w.all_pix2world(gx, gy, 0)
    # the AP/BP polynomials alone (what other programs use) invert the forward SIP
    u = gx - (w.wcs.crpix[0] - 1)
    v = gy - (w.wcs.crpix[1] - 1)
    fu = u + sum(w.sip.a[p, q] * u ** p * v ** q for p in range(4) for q in range(4))
    fv = v + sum(w.sip.b[p, q] * u ** p * v ** q for p in range(4) for q in range(4))
    n = w.sip.ap.shape[0]
    iu = fu + sum(w.sip.ap[p, q] * fu ** p * fv ** q for p in range(n) for q in range(n))
    iv = fv + sum(w.sip.bp[p, q] * fu ** p * fv ** q for p in range(n) for q in range(n))
    assert np.max(np.hypot(iu - u, iv - v)) < 0.005
    px, py = w.all_world2pix(ra, dec, 0)
    assert np.max(np.hypot(px - gx, py - gy)) < 1e-4


def test_explicit_degree_and_clipping_of_outliers():
    field = _field(0.0)
    s = field.stars
    x = np.array(s["x"], float)
    x[:10] += 25.0  # ten mismatched stars
    fit = fit_tan_sip(x, s["y"], s["ra"], s["dec"], field.shape, degree=2)
    assert fit.degree == 2 and fit.wcs.sip is not None
    assert not fit.inliers[:10].any()
    assert rms_vs_truth(fit.wcs, field) < 0.01
    with pytest.raises(InputError, match="sip_degree=3 needs at least"):
        fit_tan_sip(s["x"][:12], s["y"][:12], s["ra"][:12], s["dec"][:12], field.shape,
                    degree=3)
    with pytest.raises(InputError, match="same length"):
        fit_tan_sip(s["x"], s["y"][:5], s["ra"], s["dec"], field.shape)


def test_fit_from_a_few_pairs_agrees_with_astropy():
    field = _field(0.0)
    s = field.stars
    idx = [3, 50, 120, 200, 310]
    xy = np.column_stack([s["x"][idx], s["y"][idx]])
    sky = SkyCoord(s["ra"][idx], s["dec"][idx], unit="deg")
    w = fit_wcs_from_pairs(xy, sky, shape=field.shape)
    ref = fit_wcs_from_points((xy[:, 0], xy[:, 1]), sky)
    assert rms_vs_truth(w, field) < 1e-3
    gx, gy = np.meshgrid(np.linspace(0, 1023, 5), np.linspace(0, 1023, 5))
    a = w.pixel_to_world(gx, gy)
    b = ref.pixel_to_world(gx, gy)
    assert np.max(a.separation(b).arcsec) < 0.05  # astropy stops at its tolerance
    # three pairs are enough, as a (2, N) pair of arrays too
    w3 = fit_wcs_from_pairs((xy[:3, 0], xy[:3, 1]), sky[:3], shape=field.shape)
    assert rms_vs_truth(w3, field) < 0.01


def test_fit_from_pairs_errors():
    sky = SkyCoord([1.0, 1.01, 1.02], [2.0, 2.0, 2.0], unit="deg")
    with pytest.raises(InputError, match="at least 3"):
        fit_wcs_from_pairs([(1, 1), (100, 5)], sky[:2])
    with pytest.raises(InputError, match="collinear"):
        fit_wcs_from_pairs([(1, 1), (100, 1), (200, 1)], sky)
    with pytest.raises(InputError, match="one sky position per star"):
        fit_wcs_from_pairs([(1, 1), (100, 5), (30, 80), (5, 5)], sky)
    with pytest.raises(InputError, match="SkyCoord"):
        fit_wcs_from_pairs([(1, 1), (100, 5), (30, 80)], [(1, 2)] * 3)


def test_refine_from_four_hand_matched_stars_with_distortion():
    field = _field(6.0, rotation=-40.0, n=500, seed=7)
    s = field.stars
    on = (s["x"] > 0) & (s["x"] < 1023) & (s["y"] > 0) & (s["y"] < 1023)
    bright = np.flatnonzero(on)[:40]
    pick = [bright[i] for i in (0, 7, 15, 30)]
    rng = np.random.default_rng(2)
    # clicks are off by up to a pixel
    xy = np.column_stack([s["x"][pick], s["y"][pick]]) + rng.uniform(-1, 1, (4, 2))
    start = fit_wcs_from_pairs(xy, SkyCoord(s["ra"][pick], s["dec"][pick], unit="deg"),
                               shape=field.shape)
    assert rms_vs_truth(start, field) > 0.3  # a hand fit is rough
    det = np.column_stack([s["x"][on], s["y"][on]]) + rng.normal(0, 0.05, (on.sum(), 2))
    fit, i_src, i_cat = refine_wcs(start, det[:, 0], det[:, 1], s["ra"], s["dec"],
                                   radius=15.0)
    assert rms_vs_truth(fit.wcs, field) < 0.05
    assert fit.degree >= 2
    assert len(i_src) > 0.9 * on.sum()
