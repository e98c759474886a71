"""Products that know they are products; the manifest; header checks (in-process)."""

import json

import numpy as np
import pytest
from astropy.io import fits

from glue_zeropoint.calibration import calibrate_night, scan_frames
from glue_zeropoint.calibration.manifest import (
    check_folder,
    check_product,
    folder_problems,
    is_product_header,
    product_files,
)
from glue_zeropoint.exceptions import InputError, StaleProductsError
from glue_zeropoint.simulate import simulate_night


@pytest.fixture
def small(tmp_path):
    raw = tmp_path / "raw"
    simulate_night(raw, shape=(48, 48), n_bias=2, n_dark=2, n_flat=2, lights=(("V", 10.0, 2),),
                   cosmic_rays=0)
    return raw


def test_products_are_marked_and_listed_in_the_manifest(tmp_path, small):
    out = tmp_path / "out"
    night = calibrate_night(small, out)
    assert night.products[-1].name == "calibration.json"
    for path in night.products[:-1]:
        header = fits.getheader(path)
        assert is_product_header(header) and header["ZPRUN"]
    assert {p.name for p in product_files(out)} == {p.name for p in night.products[:-1]}
    report = check_folder(out)
    assert report["manifest"]["complete"] and not folder_problems(out)[0]


def test_scan_skips_products_anywhere_below_the_raw_folder(tmp_path, small):
    calibrate_night(small, small / "deep" / "calibrated")
    frames = scan_frames(small)
    assert len(frames) == 8
    assert len(frames.products) == 6  # 3 masters, 2 lights and calibration.json
    assert all(p.startswith("deep/calibrated/") for p in frames.products)


def test_changed_raw_frame_makes_the_folder_stale(tmp_path, small):
    out = tmp_path / "out"
    calibrate_night(small, out)
    light = small / "M13-V-10s-001.fit"
    with fits.open(light, mode="update") as hdul:
        hdul[0].data[0, 0] += 1
    with pytest.raises(StaleProductsError, match="changed since the calibration.*M13-V-10s-001"):
        check_folder(out)
    with pytest.raises(StaleProductsError, match="calibrate"):
        check_product(out / "M13-V-10s-002_cal.fits")
    # a rerun redoes that light only
    night = calibrate_night(small, out)
    assert night.report["manifest"]["reused"] == ["M13-V-10s-002_cal.fits"]
    assert check_folder(out)


def test_touched_but_unchanged_raw_frame_is_still_current(tmp_path, small):
    import os

    out = tmp_path / "out"
    calibrate_night(small, out)
    os.utime(small / "Bias-001.fit", ns=(1, 1))
    assert folder_problems(out)[0] == []


def test_a_product_of_an_earlier_run_is_named(tmp_path, small):
    out = tmp_path / "out"
    calibrate_night(small, out)
    extra = out / "M13-V-10s-099_cal.fits"
    extra.write_bytes((out / "M13-V-10s-001_cal.fits").read_bytes())
    problems, _ = folder_problems(out)
    assert any("M13-V-10s-099_cal.fits not written by the run" in p for p in problems)
    with pytest.raises(StaleProductsError):
        check_product(extra)
    calibrate_night(small, out)
    assert not extra.exists()


def test_header_checks_refuse_single_frames(tmp_path, small):
    with fits.open(small / "Dark-20s-001.fit", mode="update") as hdul:
        hdul[0].header["EXPTIME"] = -10.0
    with fits.open(small / "Flat-V-001.fit", mode="update") as hdul:
        hdul[0].header["IMAGETYP"] = "Light Frame"
    with pytest.warns(UserWarning, match="refused"):
        frames = scan_frames(small)
    refused = {r["file"] for r in frames.refused}
    assert refused == {"Dark-20s-001.fit", "Flat-V-001.fit"}
    assert len(frames) == 6


def test_conflicting_gains_stop_unless_given(tmp_path, small):
    with fits.open(small / "M13-V-10s-002.fit", mode="update") as hdul:
        hdul[0].header["EGAIN"] = 3.0
    with pytest.raises(InputError, match="disagree on the gain.*M13-V-10s-002.fit.*--gain"):
        calibrate_night(small, tmp_path / "out")
    assert not (tmp_path / "out" / "calibration.json").exists()
    with pytest.warns(UserWarning, match="headers disagree on the gain"):
        night = calibrate_night(small, tmp_path / "out", gain=1.5)
    assert json.loads((tmp_path / "out" / "calibration.json").read_text())["gain"]["value"] \
        == 1.5
    assert np.isfinite(night.lights[0].data).any()


def test_fixing_a_refused_frame_makes_the_folder_out_of_date(tmp_path, small):
    light = small / "M13-V-10s-002.fit"
    with fits.open(light, mode="update") as hdul:
        hdul[0].header["EXPTIME"] = 0.0
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="refused"):
        night = calibrate_night(small, out)
    assert len(night.lights) == 1 and not folder_problems(out)[0]
    with fits.open(light, mode="update") as hdul:
        hdul[0].header["EXPTIME"] = 10.0
    with pytest.raises(StaleProductsError, match="changed since.*M13-V-10s-002.fit"):
        check_folder(out)
    assert len(calibrate_night(small, out).lights) == 2
