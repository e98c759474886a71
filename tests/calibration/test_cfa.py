"""Colour (Bayer) mosaics: a colour camera's frame measured in one colour channel
(glue_zeropoint.calibration.cfa), on simulated mosaics with a known answer and on a real
PANOPTES DSLR frame."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.wcs import WCS

from glue_zeropoint.calibration.cfa import (
    cfa_pattern,
    channel_filter,
    channel_position,
    extract_channel,
)
from glue_zeropoint.exceptions import InputError

DATA = Path(__file__).parents[1] / "data" / "raw" / "panoptes"


def _sip_wcs():
    h = fits.Header()
    h.update({"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRVAL1": 301.5,
              "CRVAL2": 44.4, "CRPIX1": 61.3, "CRPIX2": 47.9, "CD1_1": -2.8e-3,
              "CD1_2": 1.1e-4, "CD2_1": 9.0e-5, "CD2_2": 2.8e-3, "A_ORDER": 2, "B_ORDER": 2,
              "A_2_0": 3e-6, "A_1_1": -2e-6, "A_0_2": 1e-6, "B_2_0": -1e-6, "B_1_1": 4e-6,
              "B_0_2": 2e-6})
    return WCS(h)


def _mosaic(pattern="RGGB", shape=(120, 160), response=None, seed=0):
    """A mosaic of a flat sky (per-site level) and a few stars, each site scaled by its
    colour's response; returns (CCDData, the per-site response)."""
    rng = np.random.default_rng(seed)
    response = response or {"R": 0.6, "G": 1.0, "B": 0.4}
    img = np.full(shape, 500.0)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for x, y, f in ((40.3, 30.7, 2e5), (100.6, 80.2, 1e5), (130.1, 20.4, 5e4)):
        img += f / (2 * np.pi * 2.0 ** 2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0)
    scale = np.empty(shape)
    for k, colour in enumerate(pattern):
        scale[k // 2::2, k % 2::2] = response[colour]
    data = rng.normal(img * scale, 3.0)
    meta = fits.Header({"BAYERPAT": pattern, "EXPTIME": 30.0, "RDNOISE": 8.0, "GAIN": 1.5})
    return CCDData(data, unit="adu", meta=meta, wcs=_sip_wcs()), response


def test_the_pattern_comes_from_the_header_with_its_offsets():
    assert cfa_pattern({"BAYERPAT": "rggb "}) == ("RGGB", "BAYERPAT")
    assert cfa_pattern({"COLORTYP": "GRBG"}) == ("GRBG", "COLORTYP")
    assert cfa_pattern({"FILTER": "RGGB"}) == ("RGGB", "FILTER")
    assert cfa_pattern({"BAYERPAT": "RGGB", "YBAYROFF": 1}) == ("GBRG", "BAYERPAT")
    assert cfa_pattern({"BAYERPAT": "RGGB", "XBAYROFF": 1, "YBAYROFF": 1})[0] == "BGGR"
    assert cfa_pattern({"FILTER": "V"}) == (None, None)
    assert cfa_pattern({"BAYERPAT": "CMYG"}) == (None, None)  # not a pattern we read
    assert channel_filter({"BAYERPAT": "RGGB", "FILTER": "L"}, "g") == "L+TG"
    assert channel_filter({"BAYERPAT": "RGGB"}, "B") == "TB"
    assert channel_filter({"FILTER": "V"}, "G") is None


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_green_channel_is_the_sum_of_the_two_greens_on_the_same_sky(pattern):
    ccd, response = _mosaic(pattern)
    sites = [(k // 2, k % 2) for k in range(4) if pattern[k] == "G"]
    ccd.mask = np.zeros(ccd.shape, bool)
    ccd.mask[10 + sites[0][0], 20 + sites[0][1]] = True  # a green pixel of cell (5, 10)
    other = [(k // 2, k % 2) for k in range(4) if pattern[k] != "G"][0]
    ccd.mask[30 + other[0], 40 + other[1]] = True  # a red or blue pixel of cell (15, 20)
    ccd.uncertainty = StdDevUncertainty(np.full(ccd.shape, 3.0))
    before = ccd.meta.copy()
    g = extract_channel(ccd, "G")
    assert g.shape == (60, 80)
    expect = sum(ccd.data[dy::2, dx::2] for dy, dx in sites)
    assert np.array_equal(g.data, expect.astype(g.data.dtype))
    assert g.mask[5, 10] and not g.mask[15, 20] and g.mask.sum() == 1
    np.testing.assert_allclose(g.uncertainty.array, np.sqrt(2) * 3.0, rtol=1e-6)
    # the header: the channel, the pattern, the read noise of a sum of two pixels
    assert g.meta["FILTER"] == "TG" and g.meta["CFAPAT"] == pattern
    assert g.meta["CFACHAN"] == "G" and "BAYERPAT" not in g.meta
    assert g.meta["RDNOISE"] == pytest.approx(8.0 * np.sqrt(2))
    assert (g.meta["CFAOFFX"], g.meta["CFAOFFY"]) == (0.5, 0.5)
    assert ccd.meta == before  # the frame's own header is untouched
    assert cfa_pattern(g.meta) == (None, None)  # a channel image is no mosaic any more
    # a star's green light: half its pixels, each with the green response
    yy, xx = np.mgrid[:60, :80]
    near = (xx - (40.3 - 0.5) / 2) ** 2 + (yy - (30.7 - 0.5) / 2) ** 2 < 6 ** 2
    flux = float(np.sum(g.data[near] - 2 * 500.0 * response["G"]))
    assert flux == pytest.approx(0.5 * 2e5 * response["G"], rel=0.02)


def test_the_channel_wcs_puts_every_position_where_the_mosaic_has_it():
    ccd, _ = _mosaic("RGGB")
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 79, 300), rng.uniform(0, 59, 300)
    for channel in ("G", "R", "B"):
        ch = extract_channel(ccd, channel)
        mx, my = channel_position(x, y, "RGGB", channel)
        a = np.array(ch.wcs.pixel_to_world_values(x, y))
        b = np.array(ccd.wcs.pixel_to_world_values(mx, my))
        assert np.max(np.abs(a - b)) < 1e-9, channel  # SIP and CD rescaled, not dropped
        assert ch.wcs.sip is not None
        assert ch.wcs.pixel_shape == (80, 60)
    # a red pixel sits at the cell's corner, the greens' sum at its centre
    assert channel_position(0.0, 0.0, "RGGB", "R") == (0.0, 0.0)
    assert channel_position(0.0, 0.0, "RGGB", "G") == (0.5, 0.5)


def test_saturated_pixels_mask_their_cell_and_the_level_follows_the_sum():
    ccd, _ = _mosaic("RGGB")
    ccd.meta["SATURATE"] = 4000.0
    ccd.data[60, 81] = 4000.0  # one green pixel of the cell (30, 40) at the raw level
    g = extract_channel(ccd, "G")
    assert g.mask[30, 40] and g.meta["SATURATE"] == 8000.0
    # a calibrated frame (electrons) keeps its own mask: no level from the raw header
    e = CCDData(ccd.data * 1.5, unit="electron", meta=ccd.meta, mask=np.zeros(ccd.shape, bool))
    assert not extract_channel(e, "G").mask[30, 40]


def test_a_pattern_the_sky_contradicts_takes_the_greens_from_the_sky():
    """The two greens see the same sky; a header whose 'greens' differ while the other two
    agree is read with its rows the other way (G channel), and refused for R and B."""
    ccd, response = _mosaic("GBRG")  # the true pattern
    ccd.meta["BAYERPAT"] = "RGGB"  # what the header says
    g = extract_channel(ccd, "G")
    assert g.meta["CFAPAT"] == "GBRG" and g.meta.get("CFANOTE")
    assert "other diagonal" in g.meta["CFANOTE"]
    assert np.array_equal(g.data, (ccd.data[0::2, 0::2] + ccd.data[1::2, 1::2]))
    with pytest.raises(InputError, match="cannot be told from the other colour"):
        extract_channel(ccd, "R")
    # a header that agrees with its sky is used as it is
    ok, _ = _mosaic("RGGB")
    assert extract_channel(ok, "G").meta.get("CFANOTE") is None


def test_bad_requests_are_refused_clearly():
    ccd, _ = _mosaic("RGGB")
    with pytest.raises(InputError, match="give G, R or B"):
        extract_channel(ccd, "Y")
    mono = CCDData(np.ones((10, 10)), unit="adu", meta={"FILTER": "V"})
    with pytest.raises(InputError, match="no colour-filter pattern"):
        extract_channel(mono, "G")


def test_real_panoptes_dslr_frame():
    """A real raw DSLR frame (PANOPTES, FILTER='RGGB', stored the other way up): its sky
    and its stars both say the greens are the cell's diagonal; the G channel keeps the
    frame's sky positions through its rescaled SIP WCS, and its stars are found as stars."""
    from glue_zeropoint.photometry import find_stars, prepare_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(DATA / "panoptes_solved_cutout.fits.gz") as hdul:
            header = hdul[0].header.copy()
            ccd = CCDData(hdul[0].data.astype(np.float32), unit="adu", meta=header,
                          wcs=WCS(header))
    assert cfa_pattern(ccd.meta) == ("RGGB", "FILTER")
    g = extract_channel(ccd, "G", name="panoptes")
    assert g.meta["CFAPAT"] == "GBRG"  # the sky check turned it
    d = ccd.data
    # the stars agree: the diagonal pair's light is equal (same filter), the other is not
    cells = sum(d[a::2, b::2] - np.median(d[a::2, b::2]) for a in (0, 1) for b in (0, 1))
    ys, xs = np.nonzero(cells > np.percentile(cells, 99.5))
    diag = d[0::2, 0::2][ys, xs] - np.median(d[0::2, 0::2])
    diag2 = d[1::2, 1::2][ys, xs] - np.median(d[1::2, 1::2])
    anti = d[0::2, 1::2][ys, xs] - np.median(d[0::2, 1::2])
    anti2 = d[1::2, 0::2][ys, xs] - np.median(d[1::2, 0::2])
    r_diag = np.median(np.log10(diag.sum() / diag2.sum()) ** 2)
    r_anti = np.median(np.log10(anti.sum() / anti2.sum()) ** 2)
    assert r_diag < r_anti
    x, y = np.array([10.0, 60.0, 120.0]), np.array([15.0, 90.0, 100.0])
    mx, my = channel_position(x, y, "GBRG", "G")
    np.testing.assert_allclose(g.wcs.pixel_to_world_values(x, y),
                               ccd.wcs.pixel_to_world_values(mx, my), atol=1e-9)
    g.meta["GAIN"] = 1.0
    stars = find_stars(prepare_image(g))
    assert len(stars) > 100 and stars.meta["fwhm"] < 1.5  # undersampled, as it is


def test_the_master_flat_tells_the_pattern_where_the_light_cannot():
    """After flat-fielding, a light's red and blue skies may come out equal, so a wrong
    header pattern shows nothing in the light; the master flat (greens equal, red and blue
    apart) still tells it."""
    light, _ = _mosaic("GBRG", response={"R": 1.0, "G": 1.0, "B": 1.0})  # flat-fielded
    light.meta["BAYERPAT"] = "RGGB"  # wrong: the greens are the diagonal
    assert extract_channel(light, "G").meta["CFAPAT"] == "RGGB"  # nothing to see
    flat = CCDData(np.ones(light.shape), unit="", meta={"BAYERPAT": "RGGB"})
    for k, level in enumerate((0.9, 1.2, 0.7, 0.9)):  # G B / R G: the greens equal
        flat.data[k // 2::2, k % 2::2] = level
    g = extract_channel(light, "G", reference=flat)
    assert g.meta["CFAPAT"] == "GBRG" and "other diagonal" in g.meta["CFANOTE"]


def test_a_channel_pixel_is_two_mosaic_pixels_for_the_plate_solver_too():
    """The pixel-scale hints a solver reads (PIXSCALE, XPIXSZ with XBINNING) describe the
    channel's pixel, and a calibrated product's marks do not follow a channel image out."""
    from glue_zeropoint.astrometry.header import _scale_from

    ccd, _ = _mosaic("RGGB")
    ccd.meta.update({"PIXSCALE": 1.5, "XPIXSZ": 3.76, "XBINNING": 1, "FOCALLEN": 517.0,
                     "ZPSOFT": "glue-zeropoint x", "ZPKEY": "abc", "DATASEC": "[1:160,1:120]"})
    g = extract_channel(ccd, "G")
    assert g.meta["PIXSCALE"] == 3.0 and g.meta["XPIXSZ"] == 7.52 and g.meta["XBINNING"] == 2
    assert "ZPSOFT" not in g.meta and "ZPKEY" not in g.meta and "DATASEC" not in g.meta
    del g.meta["PIXSCALE"]
    scale = _scale_from(g.meta)
    scale = scale[0] if isinstance(scale, tuple) else scale
    assert scale == pytest.approx(206.265 * 7.52 / 517.0, rel=1e-3)


def test_undersampled_stars_in_a_colour_channel_carry_their_phase_error():
    """Stars of FWHM 1 mosaic pixel put a share of their light on the green pixels that
    depends on where they fall (0.12 mag rms here); their stated errors carry it (pulls of
    unit width), and wider stars get no such term."""
    from astropy.stats import mad_std

    from glue_zeropoint.photometry import find_stars, measure_stars
    from glue_zeropoint.simulate import FilterTruth, make_field, simulate_image

    filt = FilterTruth(band="V", zp=21.5, color_term=0.0, sky_sb=20.0)
    pulls = {}
    for fwhm in (1.0, 3.0):
        d_all, e_all = [], []
        for seed in (6000, 6001, 6002):
            field = make_field((384, 384), seed=seed, n_stars=120, psf="gaussian", fwhm=fwhm)
            ccd, truth = simulate_image(field, filt, 30.0, seed=seed)
            h = ccd.meta.copy()
            h["BAYERPAT"] = "RGGB"
            g = extract_channel(CCDData(np.asarray(ccd.data), unit=ccd.unit, meta=h,
                                        wcs=ccd.wcs, uncertainty=ccd.uncertainty,
                                        mask=ccd.mask), "G")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                st = measure_stars(g, find_stars(g))
            if fwhm == 1.0:
                assert 0.08 < st.meta["cfa_phase_err"] < 0.2
                assert any("depends on where it falls" in a for a in st.meta["assumptions"])
            else:
                assert "cfa_phase_err" not in st.meta
            s = truth["field"].stars
            mx, my = channel_position(np.asarray(st["x"]), np.asarray(st["y"]), "RGGB", "G")
            dist = np.hypot(mx[:, None] - np.asarray(s["x"])[None, :],
                            my[:, None] - np.asarray(s["y"])[None, :])
            k = np.argmin(dist, axis=1)
            ok = (dist[np.arange(len(k)), k] < 1.0) & (np.asarray(st["flags"]) == 0)
            d = np.asarray(s["mag_V"])[k][ok] - np.asarray(st["mag_inst"])[ok]
            d_all.extend(d - np.median(d))
            e_all.extend(np.asarray(st["mag_inst_err"])[ok])
        pulls[fwhm] = float(mad_std(np.asarray(d_all) / np.asarray(e_all)))
    assert 0.7 < pulls[1.0] < 1.4, pulls  # without the term: ~15
    assert pulls[3.0] < 1.6, pulls
