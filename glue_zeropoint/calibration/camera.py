"""Gain and read noise: from the headers, given, or measured by photon transfer (Janesick).

For two flats F1, F2 and two biases B1, B2 (ADU, overscan-corrected), with the mean bias
subtracted from the flats, mean signals mu1, mu2 and r = mu1 / mu2, the difference
D = F1 - r F2 removes the flat-field pattern even when the twilight level changed between the
two flats, and

    var(D) = mu1 (1 + r) / g + [(1 + r^2) + (1 - r)^2 / 2] sigma_r^2,   sigma_r^2 = var(B1 - B2) / 2

so ``g = mu1 (1 + r) / (var(D) - [(1 + r^2) + (1 - r)^2 / 2] var(B1 - B2) / 2)``; for r = 1 this
is the textbook ``((F1 + F2) - (B1 + B2)) / (var(F1 - F2) - var(B1 - B2))``. The read noise is
``g std(B1 - B2) / sqrt(2)``. Variances are 5-sigma-clipped (hot pixels, cosmic rays) and
corrected for what a 5-sigma clip removes from a normal distribution.
"""

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
from astropy.stats import sigma_clip

__all__ = ["CameraNoise", "photon_transfer", "read_noise_from_biases"]

log = logging.getLogger(__name__)

_CLIP = 5.0


@dataclass
class CameraNoise:
    """Gain and read noise used for a calibration, with where each came from.

    Attributes
    ----------
    gain : float
        e-/ADU.
    gain_source : str
        ``'header EGAIN'``, ``'given'``, ``'measured: photon transfer from 2 flats + 2 biases'``.
    read_noise : float
        e- rms.
    read_noise_source : str
    gain_err, read_noise_err : float or None
        1-sigma statistical errors of measured values (None when not measured).
    """

    gain: float
    gain_source: str
    read_noise: float
    read_noise_source: str
    gain_err: float | None = None
    read_noise_err: float | None = None

    def to_dict(self):
        """JSON-ready dict."""
        return asdict(self)


def _clipped_var(values):
    """Variance of the finite values after an iterative 5-sigma clip, and how many were used."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    kept = sigma_clip(values, sigma=_CLIP, maxiters=5, cenfunc="median", stdfunc="std",
                      masked=False)
    # a 5-sigma clip of a normal distribution keeps all but 6e-7 of it: no correction needed
    return float(np.var(kept, ddof=1)), int(kept.size)


def _clipped_mean(values):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.mean(sigma_clip(values, sigma=_CLIP, maxiters=5, masked=False)))


def photon_transfer(flats, biases):
    """Measure gain and read noise from pairs of flats and pairs of biases.

    Parameters
    ----------
    flats : sequence of ndarray
        At least 2 flats of one filter (ADU, overscan-corrected; NaN = saturated/unusable),
        used in consecutive pairs (1-2, 3-4, ...).
    biases : sequence of ndarray
        At least 2 biases (ADU), used in consecutive pairs.

    Returns
    -------
    dict
        ``gain``, ``gain_err`` (e-/ADU), ``read_noise``, ``read_noise_err`` (e-),
        ``n_flats``, ``n_biases`` used, ``flat_levels`` (ADU) and ``pairs`` (per-pair gains).

    Raises
    ------
    ValueError
        With fewer than 2 flats or 2 biases, or when the flats carry no signal above the noise.
    """
    nf = len(flats) // 2 * 2
    nb = len(biases) // 2 * 2
    if nf < 2 or nb < 2:
        raise ValueError("photon transfer needs at least 2 flats and 2 biases")
    var_b = []
    n_b = 0
    for k in range(0, nb, 2):
        v, n = _clipped_var(biases[k] - biases[k + 1])
        var_b.append(v)
        n_b += n
    var_b = float(np.mean(var_b))
    mean_bias = np.mean(biases[:nb], axis=0)
    gains, errs, levels = [], [], []
    for k in range(0, nf, 2):
        f1 = flats[k] - mean_bias
        f2 = flats[k + 1] - mean_bias
        mu1, mu2 = _clipped_mean(f1), _clipped_mean(f2)
        if not (mu1 > 0 and mu2 > 0):
            raise ValueError("flats have no signal above the bias; cannot measure the gain")
        r = mu1 / mu2
        var_d, n_d = _clipped_var(f1 - r * f2)
        c = ((1 + r * r) + (1 - r) ** 2 / 2) / 2
        denom = var_d - c * var_b
        if not denom > 0:
            raise ValueError("flat-pair variance does not exceed the read noise; cannot "
                             "measure the gain")
        gain = mu1 * (1 + r) / denom
        err_denom = math.sqrt(2 * var_d ** 2 / (n_d - 1) + 2 * (c * var_b) ** 2 / (n_b - 1))
        gains.append(gain)
        errs.append(gain * err_denom / denom)
        levels += [mu1, mu2]
    gain = float(np.mean(gains))
    gain_err = float(np.sqrt(np.sum(np.square(errs)))) / len(gains)
    read_noise = gain * math.sqrt(var_b / 2)
    read_noise_err = read_noise * math.sqrt((gain_err / gain) ** 2 + 1 / (2 * (n_b - 1)))
    return {"gain": gain, "gain_err": gain_err, "read_noise": read_noise,
            "read_noise_err": read_noise_err, "n_flats": nf, "n_biases": nb,
            "flat_levels": levels, "pairs": gains}


def read_noise_from_biases(biases, gain):
    """Read noise (e-) from consecutive pairs of biases (ADU): ``g std(B1 - B2) / sqrt(2)``.

    Returns
    -------
    read_noise, read_noise_err, n_biases : float, float, int
    """
    nb = len(biases) // 2 * 2
    if nb < 2:
        raise ValueError("measuring the read noise needs at least 2 biases")
    variances, count = [], 0
    for k in range(0, nb, 2):
        v, n = _clipped_var(biases[k] - biases[k + 1])
        variances.append(v)
        count += n
    rn = gain * math.sqrt(float(np.mean(variances)) / 2)
    return rn, rn / math.sqrt(2 * (count - 1)), nb
