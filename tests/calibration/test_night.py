"""Whole nights: injection-recovery in every header style, grouping, the bad-input list."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from calibration_helpers import checksums, night_kwargs, sky_pixels

from glue_zeropoint.calibration import calibrate_night, read_product
from glue_zeropoint.exceptions import Cancelled, InputError
from glue_zeropoint.simulate import simulate_night

STYLES = ["maxim", "iraf", "thin"]


@pytest.mark.parametrize("style", STYLES)
def test_pulls_of_calibrated_lights(calibrated, style):
    """Issue item 4: (calibrated - truth) / uncertainty over sky pixels is N(0, 1)."""
    truth, night, _ = calibrated(style)
    lights = truth.of_kind("light")
    assert len(night.lights) == len(lights) == 2
    for ccd, frame in zip(night.lights, lights, strict=True):
        assert ccd.meta["BUNIT"] == "electron" and ccd.data.dtype == np.float32
        good, expected = sky_pixels(ccd, truth, frame)
        assert good.sum() > 20000
        pulls = (ccd.data[good] - expected[good]) / ccd.uncertainty.array[good]
        assert 0.95 < pulls.std() < 1.05, f"{style} {frame.path.name}: std {pulls.std():.3f}"
        assert abs(pulls.mean()) < 0.05, f"{style} {frame.path.name}: mean {pulls.mean():.3f}"


@pytest.mark.parametrize("style", STYLES)
def test_mask_catches_hot_and_dead_pixels(calibrated, style):
    truth, night, _ = calibrated(style)
    for ccd in night.lights:
        assert ccd.mask[truth.bad_pixels].all()
        # and little else: the bad pixels plus saturated star cores
        assert ccd.mask.sum() <= truth.bad_pixels.sum() + 50


@pytest.mark.parametrize("style,gain_source,rn_source", [
    ("maxim", "header EGAIN", "measured: 8 biases"),
    ("iraf", "header GAIN", "header RDNOISE"),
    ("thin", "measured: photon transfer from 8 flats + 8 biases",
     "measured: photon transfer from 8 flats + 8 biases")])
def test_gain_and_read_noise(calibrated, style, gain_source, rn_source):
    truth, night, out = calibrated(style)
    gain, rn = night.report["gain"], night.report["read_noise"]
    assert gain["source"] == gain_source and rn["source"].startswith(rn_source)
    if gain["error"] is None:
        assert gain["value"] == truth.camera.gain
    else:  # measured: within its stated error, and the error is small
        assert abs(gain["value"] - truth.camera.gain) < 3 * gain["error"]
        assert gain["error"] / gain["value"] < 0.005
    if rn["error"] is None:
        assert rn["value"] == truth.camera.read_noise
    else:
        # the measured read noise includes the ADC quantisation (gain^2 / 12)
        effective = np.sqrt(truth.camera.read_noise ** 2 + truth.camera.gain ** 2 / 12)
        assert abs(rn["value"] - effective) < 3 * rn["error"]
    header = night.lights[0].meta
    assert header["RAWGAIN"] == pytest.approx(gain["value"]) and header["GAIN"] == 1.0
    assert header["RDNOISE"] == pytest.approx(rn["value"])


def test_products_and_report(calibrated):
    truth, night, out = calibrated("thin")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["master_bias.fits", "master_dark.fits", "master_flat_V.fits",
                            "M13_20s_V001_cal.fits", "M13_20s_V002_cal.fits",
                            "calibration.json"])
    assert [p.name for p in night.products][-1] == "calibration.json"
    report = json.loads((out / "calibration.json").read_text())
    assert set(report) >= {"groups", "masters", "lights", "gain", "read_noise", "guesses",
                           "skipped", "products"}
    assert report["masters"]["bias"]["n"] == 8 and report["masters"]["flat_V"]["n"] == 8
    assert report["lights"][0]["flat"] == "flat_V"
    assert report["lights"][0]["dark_match"] == "matched exposure 20s"
    assert any("40 ms dark used as a bias" in g for g in report["guesses"])
    assert any("filter 'V' from the file name" in g for g in report["guesses"])
    # the product on disk is what night.lights holds
    back = read_product(out / "M13_20s_V001_cal.fits")
    np.testing.assert_array_equal(back.data, night.lights[0].data)
    np.testing.assert_array_equal(back.mask, night.lights[0].mask)
    assert back.meta["MFLAT"] == "master_flat_V.fits" and back.meta["FILTER"] == "V"
    assert night.to_dict() is night.report


def test_raw_files_are_never_modified(tmp_path):
    raw = tmp_path / "raw"
    simulate_night(raw, style="iraf", shape=(48, 48), n_bias=2, n_dark=2, n_flat=2,
                   field_kwargs={"n_stars": 5})
    before = checksums(raw)
    calibrate_night(raw, tmp_path / "out")
    assert checksums(raw) == before


def test_mixed_filters_and_exposures(tmp_path):
    raw = tmp_path / "raw"
    truth = simulate_night(raw, style="maxim", shape=(64, 64), n_bias=4, n_dark=3, n_flat=3,
                           dark_exptimes=(20.0,), lights=(("V", 20.0, 1), ("B", 60.0, 1)),
                           field_kwargs={"n_stars": 10})
    night = calibrate_night(raw, tmp_path / "out")
    assert set(night.masters) == {"bias", "dark", "flat_V", "flat_B"}
    lights = {e["filter"]: e for e in night.report["lights"]}
    assert lights["V"]["flat"] == "flat_V" and lights["B"]["flat"] == "flat_B"
    assert lights["V"]["dark_match"] == "matched exposure 20s"
    assert lights["B"]["dark_match"] == "scaled from 20s to 60s"
    assert night.report["masters"]["flat_B"]["frames"] == [
        f.path.name for f in truth.of_kind("flat", "B")]
    b = next(c for c in night.lights if c.meta["FILTER"] == "B")
    assert "scaled from 20s to 60s" in str(b.meta["HISTORY"])


def test_several_dark_exposures(tmp_path):
    raw = tmp_path / "raw"
    simulate_night(raw, style="maxim", shape=(48, 48), n_bias=3, n_dark=3, n_flat=2,
                   dark_exptimes=(10.0, 60.0), lights=(("V", 60.0, 1), ("V", 30.0, 1)),
                   field_kwargs={"n_stars": 5})
    night = calibrate_night(raw)
    assert {"dark_10s", "dark_60s"} <= set(night.masters)
    matches = sorted(e["dark_match"] for e in night.report["lights"])
    assert matches == ["matched exposure 60s", "scaled from 60s to 30s"]
    assert night.products == []  # nothing written without out_dir


def _night(tmp_path, **kwargs):
    kw = dict(style="maxim", shape=(64, 64), n_bias=3, n_dark=3, n_flat=3, lights=(("V", 20.0, 1),),
              field_kwargs={"n_stars": 10})
    kw.update(kwargs)
    return simulate_night(tmp_path / "raw", **kw)


@pytest.mark.parametrize("missing", ["bias", "dark", "flat"])
def test_missing_calibration_frames(tmp_path, missing):
    truth = _night(tmp_path)
    for frame in truth.of_kind(missing):
        frame.path.unlink()
    night = calibrate_night(tmp_path / "raw", tmp_path / "out")
    assert len(night.lights) == 1 and (tmp_path / "out" / "M13-V-20s-001_cal.fits").exists()
    steps = " ".join(night.report["groups"][0]["skipped_steps"])
    assert f"no {missing}" in steps
    assert not any(name.startswith(missing) for name in night.masters)
    if missing == "bias":  # MaxIm headers have no read noise: measured from the darks
        assert night.report["read_noise"]["source"].startswith("measured: 2 darks of 20s")


def test_flat_with_zeros_and_negatives_is_masked(tmp_path):
    truth = _night(tmp_path)
    for frame in truth.of_kind("flat"):
        with fits.open(frame.path) as hdul:
            data = hdul[0].data.copy()
            header = hdul[0].header.copy()
        data[5:8, 5:8] = 0  # below the bias: negative after bias subtraction
        fits.PrimaryHDU(data, header=header).writeto(frame.path, overwrite=True)
    with pytest.warns(UserWarning, match="zero or negative; they are masked"):
        night = calibrate_night(tmp_path / "raw")
    assert night.masters["flat_V"].mask[5:8, 5:8].all()
    assert night.lights[0].mask[5:8, 5:8].all()
    assert night.report["masters"]["flat_V"]["nonpositive_pixels"] == 9


def test_different_shapes_are_grouped_apart(tmp_path):
    truth = _night(tmp_path)
    other = tmp_path / "raw" / "binned 2x2"
    other.mkdir()
    for i in range(2):
        header = fits.getheader(truth.of_kind("bias")[0].path)
        header["XBINNING"] = header["YBINNING"] = 2
        fits.PrimaryHDU(np.full((32, 32), 1000, np.uint16), header=header).writeto(
            other / f"bias2x2_{i}.fits")
    with pytest.warns(UserWarning, match="grouped apart"):
        night = calibrate_night(tmp_path / "raw", tmp_path / "out")
    assert night.masters["bias"].shape == (64, 64)
    assert night.masters["bias_32x32_bin2x2"].shape == (32, 32)
    assert night.report["masters"]["bias"]["n"] == 3
    assert {g["name"] for g in night.report["groups"]} == {"64x64", "32x32_bin2x2"}
    assert (tmp_path / "out" / "master_bias_32x32_bin2x2.fits").exists()


def test_unusable_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no readable FITS"):
        calibrate_night(empty)
    _night(tmp_path)
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot create the output folder"):
        calibrate_night(tmp_path / "raw", blocker / "out")


def test_read_only_output_folder(tmp_path, monkeypatch):
    _night(tmp_path)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    real_access = os.access  # answer for it as for a normal user (root, in CI, bypasses bits)
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: (
        False if Path(path) == out and mode & os.W_OK else real_access(path, mode, *a, **k)))
    try:
        with pytest.raises(InputError, match="not writable"):
            calibrate_night(tmp_path / "raw", out)
    finally:
        out.chmod(0o700)


def test_thin_night_without_enough_frames_for_the_gain(tmp_path):
    truth = simulate_night(tmp_path / "raw", style="thin", shape=(32, 32), n_bias=1, n_dark=1,
                           n_flat=1, field_kwargs={"n_stars": 3})
    with pytest.raises(InputError, match=r"M13_20s_V001.FIT: no gain .* pass --gain"):
        calibrate_night(tmp_path / "raw")
    night = calibrate_night(tmp_path / "raw", gain=1.4, read_noise=8.0)
    assert night.report["gain"]["source"] == "given"
    assert len(night.lights) == len(truth.of_kind("light"))


def test_cancel_leaves_earlier_outputs_intact(tmp_path):
    _night(tmp_path, lights=(("V", 20.0, 3),))
    out = tmp_path / "out"
    first = calibrate_night(tmp_path / "raw", out)
    before = checksums(out)
    calls = []

    def cancel_at_second_light(done, total, message):
        calls.append(message)
        if message.startswith("calibrated") and sum(m.startswith("calibrated")
                                                    for m in calls) == 2:
            raise Cancelled("user pressed cancel")

    with pytest.raises(Cancelled):
        calibrate_night(tmp_path / "raw", out, progress=cancel_at_second_light)
    # everything written is complete: no temporary files, every product readable
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    for path in out.glob("*.fits"):
        read_product(path)
    assert checksums(out).keys() == before.keys()
    assert json.loads((out / "calibration.json").read_text())["products"] == \
        [p.name for p in first.products]


def test_progress_reaches_the_end(tmp_path):
    _night(tmp_path)
    calls = []
    calibrate_night(tmp_path / "raw", progress=lambda d, t, m: calls.append((d, t, m)))
    done, total, _ = calls[-1]
    assert done == total and all(d <= t for d, t, _ in calls)
    # first the scan of the headers, then the calibration steps, each counting up
    assert any(m.startswith("reading ") for _, _, m in calls)
    stage = [d for d, t, m in calls if t == total and not m.startswith(("reading", "frames"))]
    assert stage == sorted(stage) and len(stage) >= 4


def test_output_inside_the_raw_folder_is_not_rescanned(tmp_path):
    _night(tmp_path)
    out = tmp_path / "raw" / "calibrated"
    calibrate_night(tmp_path / "raw", out)
    night = calibrate_night(tmp_path / "raw", out)
    assert night.report["masters"]["bias"]["n"] == 3 and len(night.lights) == 1


def test_mean_combine(tmp_path):
    _night(tmp_path)
    night = calibrate_night(tmp_path / "raw", combine="mean")
    assert night.report["masters"]["bias"]["method"] == "mean"
    with pytest.raises(InputError, match="'median' or 'mean'"):
        calibrate_night(tmp_path / "raw", combine="sum")


def test_unicode_and_spaces_everywhere(tmp_path):
    raw = tmp_path / "nuit du 1er juillet ☾" / "raw frames"
    simulate_night(raw, style="thin", shape=(48, 48), n_bias=4, n_dark=2, n_flat=4,
                   field_kwargs={"n_stars": 5})
    out = tmp_path / "sortie été"
    night = calibrate_night(raw, out)
    assert (out / "M13_20s_V001_cal.fits").exists() and len(night.lights) == 2
    shutil.rmtree(out)


@pytest.mark.parametrize("style", ["maxim", "thin"])  # header gain; measured gain
def test_master_bias_is_the_true_bias_within_its_stated_uncertainty(calibrated, style):
    """The master bias (e-) against the simulator's bias map: its pulls are N(0, 1), so both
    the level and the stated uncertainty (read noise / sqrt(8), median-combined) are right."""
    truth, night, _ = calibrated(style)
    bias = night.masters["bias"]
    assert bias.unit == "electron"
    expected = truth.maps.bias * night.report["gain"]["value"]
    good = ~truth.bad_pixels & (~bias.mask if bias.mask is not None else True)
    pulls = (bias.data - expected)[good] / bias.uncertainty.array[good]
    assert abs(pulls.mean()) < 0.05 and 0.95 < pulls.std() < 1.05, (pulls.mean(), pulls.std())
    assert night.report["masters"]["bias"]["n"] == night_kwargs(style)["n_bias"]


def test_lights_of_the_same_name_in_two_folders(tmp_path):
    truth = _night(tmp_path)
    light = truth.of_kind("light")[0].path
    (tmp_path / "raw" / "second").mkdir()
    shutil.copy(light, tmp_path / "raw" / "second" / light.name)
    night = calibrate_night(tmp_path / "raw", tmp_path / "out")
    products = sorted(e["product"] for e in night.report["lights"])
    assert products == ["M13-V-20s-001_cal.fits", "second_M13-V-20s-001_cal.fits"]
    assert all((tmp_path / "out" / p).exists() for p in products)


def test_real_saao_frame_with_overscan(tmp_path):
    """The real SAAO 1.0 m frame: overscan subtracted, trimmed, header gain and read noise."""
    from pathlib import Path

    src = Path(__file__).parents[1] / "data" / "raw" / "saao1m_raw_a8280271.fits"
    raw = tmp_path / "saao raw"
    raw.mkdir()
    shutil.copy(src, raw / src.name)
    before = checksums(raw)
    night = calibrate_night(raw, tmp_path / "out")
    assert checksums(raw) == before
    (ccd,) = night.lights
    assert ccd.shape == (520, 512)
    data = fits.getdata(src).astype(float)
    level = np.median(data[:, 3:13])
    np.testing.assert_allclose(ccd.data, (data[:, 16:528] - level) * 1.9, atol=2.0)
    assert night.report["gain"]["source"] == "header GAIN"
    assert night.report["read_noise"] == {"value": 5.0, "source": "header RDNOISE",
                                          "error": None}
    steps = " ".join(night.report["groups"][0]["skipped_steps"])
    assert "no bias frames" in steps and "no dark frames" in steps and "no flat" in steps
    sky = np.median(ccd.data)
    assert np.median(ccd.uncertainty.array) == pytest.approx(np.sqrt(sky + 25), rel=0.05)
    assert ccd.meta["EXPTIME"] == 150.04 and "overscan" in str(ccd.meta["HISTORY"])


def test_failed_write_stops_cleanly_and_keeps_earlier_products(tmp_path, monkeypatch):
    import glue_zeropoint.calibration.night as night_module

    _night(tmp_path, lights=(("V", 20.0, 3),))
    real = night_module.write_product

    def failing(ccd, path):
        if path.name == "M13-V-20s-002_cal.fits":
            raise OSError("disk full")
        return real(ccd, path)

    monkeypatch.setattr(night_module, "write_product", failing)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        calibrate_night(tmp_path / "raw", out)
    names = sorted(p.name for p in out.iterdir())
    assert "M13-V-20s-001_cal.fits" in names and "master_flat_V.fits" in names
    assert "M13-V-20s-002_cal.fits" not in names and "calibration.json" not in names
    assert not [n for n in names if n.endswith(".tmp")]
    for name in names:
        read_product(out / name)


def test_output_folder_must_not_be_the_raw_folder(tmp_path):
    raw = _night(tmp_path).root
    before = checksums(raw)
    with pytest.raises(InputError, match="must not be the raw folder.*calibrated"):
        calibrate_night(raw, raw)
    assert checksums(raw) == before
