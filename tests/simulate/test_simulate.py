import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from glue_zeropoint.simulate import (
    Camera,
    FilterTruth,
    make_field,
    reference_catalog,
    render_stars,
    simulate_image,
    simulate_night,
)


def test_render_conserves_total_flux():
    img = render_stars((101, 101), [50.3], [49.7], [1e5], fwhm=3.0)
    # the stamp holds all but ~1e-4 of the Moffat flux
    assert img.sum() == pytest.approx(1e5, rel=3e-4)
    assert np.unravel_index(img.argmax(), img.shape) == (50, 50)


def test_field_truth_follows_zero_point_convention():
    field = make_field((256, 256), n_stars=50, seed=3)
    filt = FilterTruth(band="V", zp=21.0, color_term=0.1, color=("B", "V"), color_ref=0.5)
    rates = field.rates(filt)
    m_inst = -2.5 * np.log10(rates)
    y = field.stars["mag_V"] - m_inst
    assert np.allclose(y, 21.0 + 0.1 * (field.colors(("B", "V")) - 0.5))


@pytest.mark.parametrize("style", ["maxim", "iraf", "thin"])
def test_night_files_and_headers(tmp_path, style):
    truth = simulate_night(tmp_path / "night é", style=style, shape=(64, 80),
                           lights=(("V", 20.0, 1),), n_bias=3, n_dark=2, n_flat=2,
                           cosmic_rays=2, camera=Camera(overscan=8 if style == "iraf" else 0),
                           field_kwargs={"n_stars": 3})
    assert len(truth.frames) == 3 + 2 + 2 + 1
    light = truth.of_kind("light")[0]
    data = fits.getdata(light.path)
    hdr = fits.getheader(light.path)
    assert data.dtype.kind in "ui" and data.shape == (64, 80 + (8 if style == "iraf" else 0))
    if style == "maxim":
        assert hdr["IMAGETYP"] == "Light Frame" and hdr["EGAIN"] == truth.camera.gain
        assert WCS(hdr).has_celestial
    elif style == "iraf":
        assert hdr["OBSTYPE"] == "OBJECT" and "EXPOSURE" in hdr and hdr["BIASSEC"]
    else:
        assert "IMAGETYP" not in hdr and "FILTER" not in hdr and "GAIN" not in hdr
        assert light.path.name == "M13_20s_V001.FIT"
        assert truth.of_kind("bias")[0].path.name == "dark_40ms001.FIT"
    # the raw light is bias + signal/gain: its median sits above the bias level by sky/gain
    sky = truth.filters["V"].sky_rate(truth.field.pixel_area_arcsec2) * 20.0
    active = data[:, :80].astype(float)
    assert np.median(active) == pytest.approx(truth.camera.bias_level + sky / truth.camera.gain,
                                              rel=0.02)


def test_simulated_image_and_catalog():
    ccd, truth = simulate_image(seed=2, shape=(200, 200), n_stars=30, saturation=5e4)
    assert ccd.unit == "electron" and ccd.wcs.has_celestial
    sky = np.median(ccd.data)
    assert sky == pytest.approx(truth["sky"], rel=0.05)
    pulls = (ccd.data - truth["expected"]) / ccd.uncertainty.array
    assert 0.9 < np.std(pulls) < 1.1
    cat = reference_catalog(truth["field"], seed=1, extra_stars=5)
    assert len(cat) == 35 and {"RAJ2000", "Vmag", "e_Vmag", "B-V"} <= set(cat.colnames)
    resid = (cat["Vmag"][:30] - truth["field"].stars["mag_V"]) / cat["e_Vmag"][:30]
    assert abs(np.mean(resid)) < 1.0


def test_iraf_names_do_not_collide_and_small_overscan_is_valid(tmp_path):
    truth = simulate_night(tmp_path, style="iraf", shape=(32, 32), n_bias=1, n_dark=1,
                           n_flat=1, lights=(("V", 10.0, 1), ("V", 20.0, 1)), cosmic_rays=0,
                           camera=Camera(overscan=1), field_kwargs={"n_stars": 2})
    paths = [f.path for f in truth.frames]
    assert len(set(paths)) == len(paths)
    hdr = fits.getheader(truth.of_kind("light")[0].path)
    assert hdr["BIASSEC"] == "[33:33,1:32]"
