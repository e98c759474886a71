"""Frames measured with apertures of different radii share the night's extrapolated tail
(glue_zeropoint.night.run._common_tail): the light beyond each frame's largest radius is
extrapolated from its outer rings and on real frames with broad wings is as uncertain as it
is large; its frame-to-frame noise must not scatter the night."""

import numpy as np
from night_fixture import night_inputs

from glue_zeropoint.night.run import _fit_night


def _with_tail_noise(seed, own_tail):
    """The star-level night with each frame's total magnitudes carrying the noise of its own
    tail extrapolation (2% rms about a true 5%), radii differing from frame to frame; with
    ``own_tail`` False the frames' tails are unknown (NaN), as for a correction that is not
    a curve of growth, so each frame keeps its own."""
    frames, det, sim = night_inputs(seed, n_frames=12)
    rng = np.random.default_rng(seed)
    n = len(frames)
    tail = 1.05 * (1.0 + rng.normal(0.0, 0.02, n))
    dmag = -2.5 * np.log10(tail / 1.05)  # each frame's total magnitudes off by its tail
    frames["aperture_radius"] = np.linspace(3.0, 4.0, n)
    frames["apcorr"] = 1.10 * tail / 1.05
    frames["apcorr_tail"] = tail if own_tail else np.full(n, np.nan)
    k = np.asarray(det["frame"], int)
    det["mag_inst"] = np.asarray(det["mag_inst"], float) + dmag[k]
    frames["zp"] = np.asarray(frames["zp"], float) - dmag
    return frames, det, sim


def test_the_night_takes_the_tail_in_common_and_the_frames_stop_scattering():
    scatter = {}
    for own_tail in (False, True):
        frames, det, sim = _with_tail_noise(7, own_tail)
        notes = []
        res = _fit_night(frames, det, notes, None)
        scatter[own_tail] = {b: f.sigma_int for b, f in res.fits.items()}
        if own_tail:
            assert set(res.frames["photometry"]) == {"total/night tail"}
            assert any("median over the night" in n for n in notes)
            for b, f in res.fits.items():  # k still where the simulation put it
                assert abs(f.k - sim.bands[b].k) < 3 * f.k_err + 0.01, (b, f.k)
        else:
            assert set(res.frames["photometry"]) == {"total"}
    for b in scatter[True]:
        # the 2% tail noise is gone from the frames' scatter (B 0.008 -> 0.003, V 0.017 ->
        # 0.005 on this seed)
        assert scatter[False][b] > 0.005, scatter
        assert scatter[True][b] < 0.5 * scatter[False][b], scatter


def test_a_frame_whose_correction_nobody_measured_is_not_called_cloudy():
    """A frame with the profile envelope's correction (no curve of growth: its error covers
    the PSF families, here 4%) that came out 0.1 mag faint is a frame of unknown correction,
    not a cloud: the comparison of frames carries its correction's error, while the frames
    under the night's tail carry only their measured part (0.1%)."""
    frames, det, _ = _with_tail_noise(7, own_tail=True)
    frames["apcorr_err"] = 0.001 * np.asarray(frames["apcorr"], float)
    frames["apcorr_tail_err"] = np.zeros(len(frames))
    v = np.flatnonzero(np.asarray(frames["band"]) == "V")[3]
    frames["apcorr_tail"][v] = np.nan  # the envelope: no tail of its own
    frames["apcorr_err"][v] = 0.04 * frames["apcorr"][v]
    k = np.asarray(det["frame"], int) == v
    det["mag_inst"][k] = np.asarray(det["mag_inst"], float)[k] + 0.10
    frames["zp"][v] = frames["zp"][v] - 0.10
    res = _fit_night(frames, det, [], None)
    assert res.frames["photometry"][v] == "total"
    assert not res.frames["cloudy"][v]
    assert res.frames["ens_offset_err"][v] > 0.04
    others = np.asarray(res.frames["band"]) == "V"
    others[v] = False
    assert np.all(np.asarray(res.frames["ens_offset_err"])[others] < 0.02)
