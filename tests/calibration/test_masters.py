"""Masters of a simulated night against the simulator's truth."""

import numpy as np
import pytest

from glue_zeropoint.calibration import CameraNoise, make_master_bias, scan_frames


def pulls(estimate, truth, sigma, good=None):
    p = (estimate - truth) / sigma
    return p[np.isfinite(p) & (True if good is None else good)]


def test_master_bias_matches_truth(calibrated):
    truth, night, _ = calibrated("maxim")
    bias = night.masters["bias"]
    assert bias.unit == "electron" and bias.data.dtype == np.float32
    p = pulls(bias.data, truth.maps.bias * truth.camera.gain, bias.uncertainty.array)
    assert 0.93 < p.std() < 1.07 and abs(p.mean()) < 0.05
    # median of 8 values: variance factor 1.347 R^2 / 8
    expected = truth.camera.read_noise * np.sqrt(1.347 / 8)
    assert np.median(bias.uncertainty.array) == pytest.approx(expected, rel=0.02)


def test_master_dark_rate_matches_truth(calibrated):
    truth, night, _ = calibrated("maxim")
    dark = night.masters["dark"]
    assert dark.unit == "electron / s" and dark.meta["EXPTIME"] == 20.0
    p = pulls(dark.data, truth.maps.dark_rate, dark.uncertainty.array)
    assert 0.93 < p.std() < 1.07 and abs(p.mean()) < 0.05
    # cosmic rays on the darks were clipped: no pixel is far off
    assert np.abs(p).max() < 6
    # every true hot pixel is flagged, few others are
    assert dark.mask[truth.maps.hot].all()
    assert (dark.mask & ~truth.maps.hot).sum() <= 3


def test_master_flat_matches_truth(calibrated):
    truth, night, _ = calibrated("maxim")
    flat = night.masters["flat_V"]
    assert flat.unit.is_equivalent("") and np.nanmedian(flat.data) == pytest.approx(1, abs=1e-3)
    true_flat = truth.maps.flats["V"]
    good = ~truth.maps.dead & ~truth.maps.hot
    p = pulls(flat.data, true_flat, flat.uncertainty.array, good)
    assert 0.93 < p.std() < 1.07 and abs(p.mean()) < 0.1
    assert flat.mask[truth.maps.dead].all()
    assert (flat.mask & ~truth.maps.dead).sum() == 0


@pytest.mark.parametrize("style", ["iraf", "thin"])
def test_masters_in_other_styles(calibrated, style):
    truth, night, _ = calibrated(style)
    assert set(night.masters) == {"bias", "dark", "flat_V"}
    dark = night.masters["dark"]
    p = pulls(dark.data, truth.maps.dark_rate, dark.uncertainty.array)
    assert 0.9 < p.std() < 1.1
    flat = night.masters["flat_V"]
    p = pulls(flat.data, truth.maps.flats["V"], flat.uncertainty.array, ~truth.maps.dead)
    assert 0.9 < p.std() < 1.1


def test_mean_combine_of_biases(calibrated):
    truth, _, _ = calibrated("iraf")
    frames = [f for f in scan_frames(truth.root) if f.kind == "bias"]
    noise = CameraNoise(truth.camera.gain, "given", truth.camera.read_noise, "given")
    bias = make_master_bias(frames, noise, method="mean")
    assert np.median(bias.uncertainty.array) == pytest.approx(
        truth.camera.read_noise / np.sqrt(len(frames)), rel=0.02)
    assert bias.meta["NCOMBINE"] == len(frames) and bias.meta["COMBINE"] == "mean"
