"""The ``extended`` flag on real frames: a galaxy and a satellite streak are not stars.

Frames (tests/data/MANIFEST.md): a DECam z cutout from the Legacy Survey pipeline tests
(about 10 sources: 3 Gaia stars and one obvious extended galaxy at x=116.6, y=191.2) and a
YSTAR/SAAO R frame with a long satellite streak across y ~ 310-340, which the detection
breaks into a row of ~15 "sources". Before the flag, the galaxy entered the zero-point fit
(ours - photutils +0.18 mag against -0.03..-0.08 for the point sources) and the streak's
pieces were measured as stars.
"""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from glue_zeropoint.photometry import FLAG_CROWDED, FLAG_EXTENDED, find_stars, measure_stars
from glue_zeropoint.photometry.flags import EXCLUDE_FROM_FIT
from glue_zeropoint.zeropoint.reasons import flag_reasons

RAW = Path(__file__).parents[1] / "data" / "raw"


def _decam():
    stem = RAW / "decam-legacypipe" / "c4d_170316_062107_{}_z_ls9.N2.fits.gz"
    with fits.open(stem.parent / stem.name.format("ooi")) as hl:
        data = hl[1].data.astype(np.float64)
        header = hl[1].header.copy()
        header["EXPTIME"] = hl[0].header["EXPTIME"]
    dq = fits.getdata(stem.parent / stem.name.format("ood"))
    return CCDData(data, unit="adu", meta=header, mask=dq != 0)


def _ystar():
    with fits.open(RAW / "ystar-saao" / "ystar_saao_R_long.fits.gz") as hl:
        return CCDData(hl[0].data.astype(np.float64), unit="adu", meta=hl[0].header.copy())


def _extended(stars):
    return (np.asarray(stars["flags"]) & FLAG_EXTENDED) != 0


def test_decam_galaxy_is_flagged_and_the_stars_are_not():
    ccd = _decam()
    stars = measure_stars(ccd, find_stars(ccd))
    ext = _extended(stars)
    snr = np.asarray(stars["flux_aper"] / stars["flux_aper_err"])
    galaxy = np.argmin(np.hypot(stars["x"] - 116.6, stars["y"] - 191.2))
    assert np.hypot(stars["x"][galaxy] - 116.6, stars["y"][galaxy] - 191.2) < 1.0
    assert ext[galaxy]
    assert "extended" in stars["flag_text"][galaxy]
    # its light is far less concentrated than the stars' (0.64 against 0.84)
    bright_stars = (snr > 20) & ~ext
    assert bright_stars.sum() >= 3
    c_star = np.median(stars["concentration"][bright_stars])
    assert stars["concentration"][galaxy] < c_star - 10 * stars["concentration_err"][galaxy]
    assert ext.sum() == 1
    # the fit leaves it out, with its own reason
    assert FLAG_EXTENDED & EXCLUDE_FROM_FIT
    assert flag_reasons(np.array([FLAG_EXTENDED]))["extended"].tolist() == [True]


def test_ystar_streak_pieces_are_flagged_not_the_stars():
    ccd = _ystar()
    stars = measure_stars(ccd, find_stars(ccd))
    ext = _extended(stars)
    snr = np.asarray(stars["flux_aper"] / stars["flux_aper_err"])
    y = np.asarray(stars["y"])
    x = np.asarray(stars["x"])
    # 6 when the fluxes' sky was 3-sigma clipped; 5 with 5 sigma (more of the streak's light
    # stays in its pieces' sky), 4 of them at S/N > 20; the pieces are out of the fit either
    # way (below)
    assert ext.sum() >= 5
    # every flagged source with S/N > 20 lies on the streak, and they span the frame
    strong = ext & (snr > 20)
    assert strong.sum() >= 4
    assert np.all((y[strong] > 300) & (y[strong] < 345))
    assert np.ptp(x[strong]) > 200
    # the streak's pieces are out of any fit: flagged extended, or crowded by the next piece
    on_streak = (np.abs(y - (335.7 + (x - 57.9) * (311.9 - 335.7) / (326.4 - 57.9))) < 4) & (
        snr > 20)
    out = (np.asarray(stars["flags"]) & (FLAG_EXTENDED | FLAG_CROWDED)) != 0
    assert on_streak.sum() >= 10 and np.mean(out[on_streak]) > 0.85
    # the stars are kept: >= 90% of the bright sources off the streak are unflagged
    off = (snr > 20) & ((y < 295) | (y > 350))
    assert off.sum() > 40
    assert np.mean(~ext[off]) > 0.9


@pytest.mark.parametrize("psf, fwhm", [("gaussian", 0.5), ("moffat:beta=2", 3.0),
                                        ("moffat:beta=3,ellipticity=0.35,angle=35", 3.0)])
def test_no_star_of_a_simulated_field_is_extended(psf, fwhm):
    """Stars of any profile (undersampled, broad wings, elongated) are not flagged: the
    reference is the frame's own stars, both radii are phase-safe."""
    from glue_zeropoint.simulate import make_field, simulate_image

    field = make_field((384, 384), seed=5002, n_stars=120, psf=psf, fwhm=fwhm)
    ccd, _ = simulate_image(field, exptime=30.0, seed=5002)
    stars = measure_stars(ccd, find_stars(ccd))
    ext = _extended(stars)
    assert ext.sum() <= 1
    assert np.isfinite(stars["concentration"]).mean() > 0.65  # judged (S/N high enough): 0.69 for beta 2
