"""Plate solving of simulated frames with a known WCS (issue 6: within 0.1 pixel rms of truth)."""

import json
import time

import numpy as np
import pytest
from astrometry_helpers import make_frame, offset_center, rms_vs_truth, strip_wcs, without_wcs
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.wcs import WCS

from glue_zeropoint import astrometry
from glue_zeropoint.exceptions import AstrometryError, Cancelled, InputError
from glue_zeropoint.io import to_jsonable
from glue_zeropoint.simulate import make_field, reference_catalog

CASES = {
    # name: (field kwargs, how the frame's WCS is degraded, solve kwargs)
    "plain, no WCS, centre from catalog": (dict(rotation=0.0), "removed", {"scale": 1.0}),
    "rotated, no WCS, centre 6' off": (dict(rotation=137.0), "removed",
                                       {"center_off": 6.0, "scale": 1.1}),
    "flipped, header OBJCTRA + PIXSCALE 7' off": (dict(rotation=250.0, flip=True),
                                                  "pointing", {}),
    "SIP, header WCS 8' off and turned": (dict(rotation=30.0, sip_coeff=6.0), "offset", {}),
    "SIP + flip, 1.6\"/px, no WCS, 10' off": (dict(rotation=-75.0, flip=True, sip_coeff=8.0,
                                                   pixel_scale=1.6), "removed",
                                              {"center_off": 10.0, "scale": 1.5}),
}


def _degrade(ccd, field, how):
    if how == "removed":
        return without_wcs(ccd)
    if how == "pointing":
        c = offset_center(field, 7.0, pa_deg=200.0)
        out = without_wcs(ccd)
        out.meta["OBJCTRA"] = c.ra.to_string(u.hourangle, sep=" ", precision=1)
        out.meta["OBJCTDEC"] = c.dec.to_string(sep=" ", precision=0, alwayssign=True)
        out.meta["PIXSCALE"] = 1.05
        return out
    if how == "offset":
        # a mount's rough WCS: 8 arcmin off, turned by 2 degrees, scale 5% off, no SIP
        c = offset_center(field, 8.0, pa_deg=70.0)
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [c.ra.deg, c.dec.deg]
        w.wcs.crpix = field.wcs.wcs.crpix
        th = np.deg2rad(2.0)
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        w.wcs.cd = 1.05 * rot @ field.wcs.wcs.cd
        out = without_wcs(ccd)
        out.meta.update(w.to_header())
        out.wcs = w
        return out
    raise ValueError(how)


@pytest.mark.parametrize("case", list(CASES))
def test_solution_within_a_tenth_of_a_pixel_of_truth(case):
    field_kwargs, how, kw = CASES[case]
    ccd, field, cat = make_frame(seed=len(case), **field_kwargs)
    ccd = _degrade(ccd, field, how)
    kw = dict(kw)
    if "center_off" in kw:
        kw["center"] = offset_center(field, kw.pop("center_off"))
    t0 = time.perf_counter()
    sol = astrometry.solve(ccd, cat, **kw)
    elapsed = time.perf_counter() - t0
    err = rms_vs_truth(sol.wcs, field)
    print(f"\n{case}: rms vs truth {err:.4f} px, SIP degree {sol.sip_degree}, "
          f"{sol.n_matched} matched, log10 FA {sol.log10_false_alarm:.0f}, {elapsed:.2f} s")
    assert err < 0.1
    assert sol.flipped == bool(field_kwargs.get("flip", False))
    assert sol.pixel_scale == pytest.approx(field_kwargs.get("pixel_scale", 1.0), rel=1e-3)
    rot = field_kwargs.get("rotation", 0.0)
    assert abs((sol.rotation - rot + 180) % 360 - 180) < 0.05
    if field_kwargs.get("sip_coeff"):
        assert sol.sip_degree >= 2
        assert sol.wcs.sip is not None
    else:
        assert sol.sip_degree == 1
    assert sol.n_matched >= 100
    assert sol.log10_false_alarm < -9
    assert sol.quality.rms_pix < 0.3
    assert sol.wcs.pixel_shape == (1024, 1024)


def test_wrong_field_fails_with_a_clear_error():
    ccd, field, _ = make_frame(seed=21, rotation=20.0)
    other = make_field((1024, 1024), n_stars=300, seed=99, rotation=20.0,
                       mag_range=(10.0, 17.0))  # same centre and scale, other stars
    wrong = reference_catalog(other, style="normalised", seed=99)
    with pytest.raises(AstrometryError, match=r"no astrometric solution.*catalog covers"):
        astrometry.solve(without_wcs(ccd), wrong, scale=1.0, center=offset_center(field, 3))


def test_wrong_field_fails_even_without_a_scale(plain):
    ccd, field, _ = plain
    other = make_field((1024, 1024), n_stars=300, seed=98, mag_range=(10.0, 17.0))
    with pytest.raises(AstrometryError, match="no astrometric solution"):
        astrometry.solve(without_wcs(ccd), reference_catalog(other, style="normalised"))


def test_wrong_parity_is_not_forced_into_a_solution(plain):
    ccd, field, cat = plain
    with pytest.raises(AstrometryError, match="mirrored"):
        astrometry.solve(without_wcs(ccd), cat, scale=1.0, flip=True)


def test_wrong_scale_range_fails(plain):
    ccd, field, cat = plain
    with pytest.raises(AstrometryError, match="arcsec/pixel"):
        astrometry.solve(without_wcs(ccd), cat, scale=2.0, scale_range=(0.9, 1.1))


def test_catalog_elsewhere_on_the_sky_is_reported(plain):
    ccd, field, cat = plain
    far = SkyCoord(10.0, -40.0, unit="deg")
    with pytest.raises(AstrometryError, match="does not cover this field"):
        astrometry.solve(without_wcs(ccd), cat, center=far, scale=1.0)


def test_blank_image_says_no_stars():
    ccd = CCDData(np.random.default_rng(1).normal(100, 5, (256, 256)).astype(np.float32),
                  unit="electron")
    cat = Table({"ra": [1.0, 1.01, 1.02, 1.03], "dec": [2.0, 2.01, 2.0, 2.02],
                 "mag_V": [10.0, 11, 12, 13]})
    with pytest.raises(AstrometryError, match="stars detected"):
        astrometry.solve(ccd, cat, scale=1.0)


def test_solve_from_a_sources_table_and_sip_degree(plain):
    ccd, field, cat = plain
    src = astrometry.detect_sources(ccd)
    sol = astrometry.solve(src["x", "y", "flux"], cat, shape=(1024, 1024), sip_degree=2,
                           center=offset_center(field, 4), scale=1.0)
    assert sol.sip_degree == 2
    assert rms_vs_truth(sol.wcs, field) < 0.1
    # the matches point back into the table given
    m = sol.matches
    assert np.allclose(src["x"][m["source_index"]], m["x"])
    assert np.allclose(cat["ra"][m["catalog_index"]], m["ra"])


def test_proper_motions_are_applied_to_the_observation_date():
    # 0.25"/yr rms over 8.5 years: ~2" between catalog and image positions
    field = make_field((1024, 1024), n_stars=300, seed=4, proper_motion=250.0,
                       mag_range=(10.0, 17.0))
    from glue_zeropoint.simulate import simulate_image

    ccd, _ = simulate_image(field=field, seed=4)
    cat = reference_catalog(field, style="normalised", seed=4)
    sol = astrometry.solve(without_wcs(ccd), cat, scale=1.0)
    assert rms_vs_truth(sol.wcs, field) < 0.1
    assert sol.quality.rms_arcsec < 0.3


def test_progress_and_cancel(plain):
    ccd, field, cat = plain
    calls = []
    astrometry.solve(ccd, cat, progress=lambda d, t, m: calls.append((d, t, m)))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]

    def cancel(done, total, message):
        if done == 2:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        astrometry.solve(ccd, cat, progress=cancel)


def test_solution_outputs(plain):
    ccd, field, cat = plain
    sol = astrometry.solve(ccd, cat)
    d = sol.to_dict()
    json.dumps(to_jsonable(d))
    assert d["n_matched"] == sol.n_matched == len(sol.to_table())
    h = sol.header()
    assert h["IMAGEW"] == 1024 and "ZP_ARMS" in h
    assert "solved" in str(sol)


def test_bad_arguments(plain):
    ccd, field, cat = plain
    with pytest.raises(InputError, match="scale_range"):
        astrometry.solve(ccd, cat, scale_range=(1.2, 1.5))
    with pytest.raises(InputError, match="scale"):
        astrometry.solve(ccd, cat, scale=-1)
    with pytest.raises(InputError, match="no ra"):
        astrometry.solve(ccd, Table({"x": [1.0]}))
    with pytest.raises(InputError, match="mag_Z"):
        astrometry.solve(ccd, cat, band="Z")


def test_header_ra_dec_hint_is_used():
    ccd, field, cat = make_frame(seed=8, rotation=95.0)
    c = offset_center(field, 5.0)
    ccd = without_wcs(ccd)
    ccd.meta = strip_wcs(ccd.meta)
    ccd.meta["RA"] = Angle(c.ra).to_string(u.hourangle, sep=":")
    ccd.meta["DEC"] = Angle(c.dec).to_string(sep=":", alwayssign=True)
    ccd.meta["FOCALLEN"] = 1000.0
    ccd.meta["XPIXSZ"] = 4.85  # 1.0004 arcsec/pixel
    sol = astrometry.solve(ccd, cat)
    assert sol.hints["center"].startswith("header RA/DEC")
    assert "FOCALLEN" in sol.hints["scale"]
    assert rms_vs_truth(sol.wcs, field) < 0.1


@pytest.fixture(scope="module")
def plain():
    return make_frame(seed=5, rotation=10.0)
