"""Injection-recovery of the night's extinction over many simulated nights.

The truth (k per band 0.1-0.4, colour terms, a cloud dimming a run of frames by 0.1-0.5 mag,
airmass 1.0-2.5, frame-to-frame flicker, catalog and photon noise) is drawn by
:mod:`glue_zeropoint.simulate.extinction`; the night's own code recovers it from the
detections: ensemble offsets, then the extinction line with clouds named.
"""

import numpy as np
import pytest

from glue_zeropoint.night.ensemble import ensemble_offsets
from glue_zeropoint.night.extinction import fit_extinction
from glue_zeropoint.simulate.extinction import BandTruth, simulate_photometry_night
from glue_zeropoint.zeropoint.fit import fit_zeropoint_arrays

N_SEEDS = 100


def _bands(seed):
    rng = np.random.default_rng([seed, 7])
    return {"B": BandTruth("B", 21.5, float(rng.uniform(0.1, 0.4)), 0.08),
            "V": BandTruth("V", 21.9, float(rng.uniform(0.1, 0.4)), -0.04)}


def _recover(seed, **kw):
    s = simulate_photometry_night(seed, bands=_bands(seed), **kw)
    d, fr = s.detections, s.frames
    out = []
    for b, bt in s.bands.items():
        fm = np.flatnonzero(fr["band"] == b)
        m = np.isin(d["frame"], fm)
        loc = np.searchsorted(fm, d["frame"][m])
        ens = ensemble_offsets(loc, d["star"][m], d["mag_inst"][m], d["mag_inst_err"][m],
                               len(fm))
        f = fit_extinction(fr["airmass"][fm], -ens.offset, ens.offset_err, band=b)
        out.append((bt, f, s.cloudy[fm], fr, fm, s))
    return out


@pytest.fixture(scope="module")
def runs():
    return [r for seed in range(N_SEEDS) for r in _recover(seed)]


def test_k_recovered_within_stated_error_in_95_percent(runs):
    inside = [abs(f.k - bt.k) <= f.k_ci95 for bt, f, *_ in runs]
    pulls = np.array([(f.k - bt.k) / f.k_err for bt, f, *_ in runs])
    assert np.mean(inside) >= 0.95, (np.mean(inside), np.std(pulls))
    assert 0.8 < np.std(pulls) < 1.2
    assert abs(np.mean(pulls)) < 0.2


def test_cloudy_frames_named_and_the_others_kept(runs):
    named = np.mean([np.all(f.cloudy[c]) for _, f, c, *_ in runs])
    false = sum(int(np.sum(f.cloudy & ~c)) for _, f, c, *_ in runs)
    n_clear = sum(int(np.sum(~c)) for _, f, c, *_ in runs)
    assert named >= 0.98
    assert false / n_clear < 0.005


def test_clear_nights_are_photometric_mostly():
    from glue_zeropoint.night.extinction import night_verdict

    verdicts = []
    for seed in range(20):
        fits = [f for _, f, *_ in _recover(1000 + seed, cloud_depth=None)]
        verdicts.append(night_verdict(fits)[0])
    assert verdicts.count("photometric") >= 17


def test_absolute_zero_point_from_frame_fits_and_ensemble_tie():
    """With the frames' own catalog fits tied through the ensemble, ZP0 comes out right."""
    bt, f, cloudy, fr, fm, s = _recover(3)[1]
    d = s.detections
    zps, errs = [], []
    for j in fm:
        m = d["frame"] == j
        y = d["mag_cat"][m] - d["mag_inst"][m]
        ye = np.hypot(d["mag_inst_err"][m], d["mag_cat_err"][m])
        fit = fit_zeropoint_arrays(y, ye, d["colour"][m], color_ref=bt.color_ref)
        zps.append(fit.zp)
        errs.append(fit.zp_err)
    zps = np.array(zps)
    tie = np.median(zps[f.used] - f.model(fr["airmass"][fm][f.used]))
    assert f.zp0 + tie == pytest.approx(bt.zp0, abs=0.01)
