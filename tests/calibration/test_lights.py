import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from glue_zeropoint.calibration import CameraNoise, calibrate_light, scan_frames
from glue_zeropoint.simulate import make_wcs


def write_light(path, *, value=1400, shape=(20, 30), trim="[3:28,2:19]",
                bias="[29:30,1:20]", filt_in_header=True):
    rng = np.random.default_rng(0)
    data = np.full(shape, value, np.float64) + rng.normal(0, 4, shape)
    data[:, 28:] = 1000 + rng.normal(0, 4, (shape[0], 2))  # overscan columns
    data = np.round(data).astype(np.uint16)
    data[10, 10] = 65535  # saturated
    header = make_wcs((18, 26)).to_header()
    # the WCS was made for the trimmed image: on the raw frame the reference pixel moves by
    # the trim offset (2 columns, 1 row)
    header["CRPIX1"] += 2
    header["CRPIX2"] += 1
    header.update({"IMAGETYP": "LIGHT", "GAIN": 2.0, "RDNOISE": 5.0, "TRIMSEC": trim,
                   "BIASSEC": bias, "SATURATE": 65535})
    if filt_in_header:
        header["FILTER"] = "R"
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


def test_light_without_masters(tmp_path):
    write_light(tmp_path / "m57_30s_R001.fits")
    (frame,) = scan_frames(tmp_path)
    noise = CameraNoise(2.0, "header GAIN", 5.0, "header RDNOISE")
    ccd, counts = calibrate_light(frame, noise)
    assert ccd.shape == (18, 26) and ccd.unit == "electron" and ccd.data.dtype == np.float32
    good = ~ccd.mask
    # (raw - overscan) * gain
    assert np.median(ccd.data[good]) == pytest.approx((1400 - 1000) * 2.0, abs=4)
    # sky: sigma^2 = signal + R^2 (in e-); the raw noise is 4 ADU = 8 e- here, not Poisson,
    # so only check the model value
    expected = np.sqrt(800 + 25)
    assert np.median(ccd.uncertainty.array[good]) == pytest.approx(expected, rel=0.02)
    # the saturated raw pixel (10, 10) is (9, 8) after the trim
    assert ccd.mask[9, 8] and counts["saturated"] == 1 and counts["masked"] == 1
    # WCS follows the trim
    true = make_wcs((18, 26))
    np.testing.assert_allclose(ccd.wcs.wcs.crpix, true.wcs.crpix)
    assert "TRIMSEC" not in ccd.meta and "BZERO" not in ccd.meta
    assert ccd.meta["EXPTIME"] == 30.0  # guessed from the name, written in
    history = str(ccd.meta["HISTORY"])
    assert "overscan" in history and "trimmed" in history


def test_guessed_filter_is_written_in(tmp_path):
    write_light(tmp_path / "m57_30s_R001.fits", filt_in_header=False)
    (frame,) = scan_frames(tmp_path)
    ccd, _ = calibrate_light(frame, CameraNoise(2.0, "given", 5.0, "given"))
    assert ccd.meta["FILTER"] == "R"
    assert WCS(ccd.meta).has_celestial


def test_light_with_masters_follows_the_ccd_equation(calibrated):
    truth, night, _ = calibrated("iraf")
    frames = [f for f in scan_frames(truth.root) if f.kind == "light"]
    noise = CameraNoise(truth.camera.gain, "given", truth.camera.read_noise, "given")
    bias, dark, flat = (night.masters[k] for k in ("bias", "dark", "flat_V"))
    ccd, counts = calibrate_light(frames[0], noise, bias=bias, dark=dark, flat=flat)
    raw = fits.getdata(frames[0].path).astype(np.float64)
    x = raw * truth.camera.gain - bias.data - dark.data * 20.0
    expected = x / flat.data
    good = ~ccd.mask
    np.testing.assert_allclose(ccd.data[good], expected[good], rtol=1e-4, atol=1e-2)
    assert counts["hot"] == int(dark.mask.sum())
    # at a bright star core (stands out from its neighbours) the Poisson term is the pixel's
    j, i = np.unravel_index(np.argmax(np.where(good, x, 0)), x.shape)
    var = ((x[j, i] + truth.camera.read_noise ** 2 + bias.uncertainty.array[j, i] ** 2
            + 400 * dark.uncertainty.array[j, i] ** 2 - 2 * bias.uncertainty.array[j, i] ** 2)
           / flat.data[j, i] ** 2
           + expected[j, i] ** 2 * flat.uncertainty.array[j, i] ** 2 / flat.data[j, i] ** 2)
    assert ccd.uncertainty.array[j, i] == pytest.approx(np.sqrt(var), rel=1e-4)


def test_trim_shifts_crpix_and_iraf_ltv_the_same_way():
    from astropy.io import fits

    from glue_zeropoint.calibration.lights import light_header

    class Reader:  # what light_header reads of a PixelReader: the trim and no overscan
        trim = (slice(3, 100), slice(16, 528))
        biassec = None

    class Frame:
        header = fits.Header({"CRPIX1": 100.0, "CRPIX2": 50.0, "LTV1": 0.0, "LTV2": -2.0,
                              "EXPTIME": 10.0})
        name = "x.fits"
        exptime = 10.0
        filter = "V"
        guesses = []

    h = light_header(Frame(), Reader())
    assert (h["CRPIX1"], h["CRPIX2"]) == (84.0, 47.0)
    # IRAF: logical = physical + LTV; the trimmed image starts 16 columns, 3 rows in
    assert (h["LTV1"], h["LTV2"]) == (-16.0, -5.0)
