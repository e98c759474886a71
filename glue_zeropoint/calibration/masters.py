"""Master bias, dark-current rate and flat field, each with its own uncertainty and mask.

Every frame is read a block of rows at a time (overscan-corrected, trimmed, in electrons;
saturated values left out) and combined with :func:`~.combine.combine_frames`. With ``n``
values kept at a pixel, read noise ``R`` and the median's variance factor ``k(n)`` (about
pi/2, :func:`~.combine.median_variance_factor`; 1 for a mean):

- bias ``B``: variance ``k R^2 / n``;
- dark rate ``d = combine(D_i - B) / t``: variance ``[k (max(c, 0) + R^2) / n + sigma_B^2] / t^2``;
- flat: each ``F_i - B - d t_f`` is scaled to the mean level of the flats (twilight fades),
  combined into ``c`` and divided by its median ``M``:
  variance ``[k (s1 max(c, 0) + s2 R^2) / n + s1^2 (sigma_B^2 + t_f^2 sigma_d^2)] / M^2`` with
  ``s1, s2`` the mean scale and mean squared scale.

Hot pixels are flagged in the dark mask, dead and low-response pixels in the flat mask.
"""

import logging
import warnings

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty
from numba import njit, prange

from ..exceptions import CalibrationWarning
from ..headers import ascii_text
from ..stats import mad_std
from .combine import combine_frames, median_variance_factor

__all__ = ["make_master_bias", "make_master_dark", "make_master_flat", "find_hot_pixels",
           "find_low_response", "electrons_source", "HOT_SIGMA", "LOW_RESPONSE"]

log = logging.getLogger(__name__)

HOT_SIGMA = 5.0
LOW_RESPONSE = 0.5


def electrons_source(reader, gain, minus=None, scale=1.0):
    """A ``source(y0, y1, out)`` writing a frame's rows in electrons, saturated values NaN.

    Parameters
    ----------
    reader : `~.sections.PixelReader`
    gain : float
        e-/ADU.
    minus : ndarray, optional
        Full-frame image (e-) to subtract, e.g. the master bias.
    scale : float
        Multiply the result by this (flats scaled to a common level).
    """

    def source(y0, y1, out):
        reader.read_into(y0, y1, out, gain=gain,
                         minus=None if minus is None else minus[y0:y1], scale=scale,
                         nan_saturated=True, want_saturated=False)

    return source


@njit(parallel=True, cache=True)
def _lookup(table, index, out):
    ny, nx = index.shape
    for j in prange(ny):
        for i in range(nx):
            out[j, i] = table[index[j, i]]


def _factor(n_used, method):
    """Per-pixel ``k(n) / n`` (variance of the combined value per unit variance of one)."""
    top = int(n_used.max(initial=0)) + 1
    n = np.maximum(np.arange(top), 1)
    k = median_variance_factor(n) if method == "median" else np.ones(top)
    out = np.empty(n_used.shape, np.float32)
    _lookup((k / n).astype(np.float32), np.ascontiguousarray(n_used), out)
    return out


def _ccd(data, variance, mask, unit, meta):
    """CCDData from a variance image (turned into sigma in place: no copy)."""
    sigma = np.asarray(variance, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        np.maximum(sigma, 0, out=sigma)
        np.sqrt(sigma, out=sigma)
    mask |= ~np.isfinite(data)
    mask |= ~np.isfinite(sigma)
    return CCDData(data.astype(np.float32, copy=False), unit=unit,
                   uncertainty=StdDevUncertainty(sigma, copy=False), mask=mask, meta=meta)


def _meta(kind, frames, method, extra=()):
    from astropy.io import fits

    meta = fits.Header()
    meta["IMAGETYP"] = (f"master {kind}", "combined by glue-zeropoint")
    meta["NCOMBINE"] = (len(frames), "frames combined")
    meta["COMBINE"] = (method, "sigma-clipped combine")
    for key, value in extra:
        meta[key] = value
    for frame in frames:
        meta.add_history(f"input: {ascii_text(frame.name)}")
    return meta


def make_master_bias(frames, noise, *, method="median", sigma=3.0, progress=None):
    """Combine biases into a master bias in electrons.

    Parameters
    ----------
    frames : sequence of `~.frames.RawFrame`
    noise : `~.camera.CameraNoise`
    method : {'median', 'mean'}
    sigma : float
        Clipping threshold (noise model: read noise).
    progress : callable, optional
        ``progress(frames_read, n_frames, message)``.

    Returns
    -------
    `~astropy.nddata.CCDData`
        Unit electron; uncertainty ``sqrt(k R^2 / n)``.
    """
    readers = [f.reader() for f in frames]
    shape = readers[0].shape
    sources = [electrons_source(r, noise.gain) for r in readers]
    r2 = noise.read_noise ** 2
    data, n_used = combine_frames(sources, shape, method, sigma=sigma, noise=(0.0, r2),
                                  progress=progress, message="master bias")
    variance = r2 * _factor(n_used, method)
    meta = _meta("bias", frames, method)
    meta.add_history(f"master bias: {method} of {len(frames)} frames, {sigma:g}-sigma clip "
                     f"(read noise {noise.read_noise:.3g} e-); variance k R^2 / n")
    return _ccd(data, variance, np.zeros(shape, bool), "electron", meta)


def add_square(total, sigma, factor=1.0, *, rows=256):
    """``total += factor * sigma**2`` a block of rows at a time (no full-size temporary)."""
    f = np.float32(factor)
    for y0 in range(0, total.shape[0], rows):
        block = np.square(sigma[y0:y0 + rows], dtype=np.float32)
        if factor != 1.0:
            block *= f
        total[y0:y0 + rows] += block


def _native(data):
    """A C-contiguous native float32 version of ``data`` (no copy when it already is)."""
    return np.ascontiguousarray(data, dtype=np.float32)


def make_master_dark(frames, bias, noise, *, method="median", sigma=3.0, progress=None):
    """Combine darks of one exposure time into a dark-current rate (e-/s).

    Parameters
    ----------
    frames : sequence of `~.frames.RawFrame`
        Darks, all of the same exposure time ``t``.
    bias : `~astropy.nddata.CCDData` or None
        Master bias (e-), subtracted from each dark before combining. Without it the result
        still holds the bias (divided by ``t``) and is only right for lights of exposure ``t``.
    noise : `~.camera.CameraNoise`

    Returns
    -------
    `~astropy.nddata.CCDData`
        Unit electron / s, meta ``EXPTIME`` = t; mask = hot pixels.
    """
    t = float(frames[0].exptime)
    readers = [f.reader() for f in frames]
    shape = readers[0].shape
    minus = _native(bias.data) if bias is not None else None
    sources = [electrons_source(r, noise.gain, minus) for r in readers]
    r2 = noise.read_noise ** 2
    combined, n_used = combine_frames(sources, shape, method, sigma=sigma, noise=(1.0, r2),
                                      progress=progress, message=f"master dark {t:g} s")
    variance = np.maximum(combined, 0)
    variance += np.float32(r2)
    variance *= _factor(n_used, method)
    del n_used
    if bias is not None:
        add_square(variance, bias.uncertainty.array)
    rate = combined
    rate /= np.float32(t)
    variance /= np.float32(t * t)
    hot = find_hot_pixels(rate)
    meta = _meta("dark", frames, method, [("EXPTIME", (t, "exposure of the darks (s)")),
                                         ("BUNIT", "electron / s")])
    meta.add_history(f"master dark: {method} of {len(frames)} darks of {t:g} s minus "
                     f"{'the master bias' if bias is not None else 'nothing (no bias)'}, "
                     f"{sigma:g}-sigma clip, divided by {t:g} s (rate e-/s)")
    meta.add_history(f"mask: {int(hot.sum())} hot pixels (> {HOT_SIGMA:g} sigma above median)")
    return _ccd(rate, variance, hot, "electron / s", meta)


def _robust_stats(data, mask=None, max_samples=2 ** 20):
    values = data if mask is None else data[~mask]
    values = values[np.isfinite(values)].ravel()
    if values.size > max_samples:
        values = values[:: values.size // max_samples + 1]
    if values.size == 0:
        return np.nan, np.nan
    median = float(np.median(values))
    mad = mad_std(values)
    return median, mad


def find_hot_pixels(rate, nsigma=HOT_SIGMA):
    """Pixels whose dark rate is more than ``nsigma`` robust sigma above the median.

    Parameters
    ----------
    rate : ndarray
        Dark-current rate (e-/s).

    Returns
    -------
    ndarray (bool)
    """
    median, mad = _robust_stats(rate)
    if not np.isfinite(mad) or mad <= 0:
        return np.zeros(rate.shape, bool)
    with np.errstate(invalid="ignore"):
        return rate > median + nsigma * mad


def find_low_response(flat, low=LOW_RESPONSE):
    """Dead and low-response pixels of a normalised flat: below ``low``, <= 0 or not finite."""
    with np.errstate(invalid="ignore"):
        return ~(flat > low) | ~np.isfinite(flat)


def _flat_level(reader, gain, bias, dark, t):
    """Median electron level of a flat (after bias and dark) from a sample of its rows."""
    step = max(1, reader.shape[0] // 128)
    rows, index = reader.sample_rows(step)
    saturated = rows >= np.float32(reader.saturation - reader.overscan_level) \
        if reader.saturation is not None else np.zeros(rows.shape, bool)
    values = rows * np.float32(gain)
    if bias is not None:
        values -= bias.data[index]
    if dark is not None:
        values -= dark.data[index] * np.float32(t)
    values[saturated] = np.nan
    return float(np.nanmedian(values))


def make_master_flat(frames, bias, dark, noise, *, method="median", sigma=3.0, progress=None,
                     low=LOW_RESPONSE):
    """Combine flats of one filter into a normalised flat (median 1) with its uncertainty.

    Parameters
    ----------
    frames : sequence of `~.frames.RawFrame`
        Flats of one filter.
    bias : `~astropy.nddata.CCDData` or None
        Master bias (e-).
    dark : `~astropy.nddata.CCDData` or None
        Master dark rate (e-/s), scaled by each flat's exposure.
    noise : `~.camera.CameraNoise`
    low : float
        Pixels of the normalised flat below ``low`` are masked (dead / low response).

    Returns
    -------
    flat : `~astropy.nddata.CCDData`
        Dimensionless; mask = dead, low-response, non-positive and non-finite pixels.
    info : dict
        ``levels`` (e- of each flat), ``used`` (file names), ``skipped`` (file, reason),
        ``n_nonpositive`` (pixels <= 0 in the combined flat).
    """
    readers, levels, used, skipped = [], [], [], []
    for frame in frames:
        reader = frame.reader()
        level = _flat_level(reader, noise.gain, bias, dark, frame.exptime)
        if not level > 0:
            message = (f"{frame.name}: flat level {level:.4g} e- after bias/dark is not "
                       "positive; flat skipped")
            warnings.warn(message, CalibrationWarning, stacklevel=2)
            skipped.append({"file": frame.name, "reason": message})
            continue
        readers.append((frame, reader))
        levels.append(level)
    if not readers:
        return None, {"levels": [], "used": [], "skipped": skipped, "n_nonpositive": 0}
    mean_level = float(np.mean(levels))
    scales = np.array([mean_level / lv for lv in levels])
    sources = []
    minus_by_t = {}  # bias + dark * t, once per flat exposure time
    for (frame, reader), scale in zip(readers, scales, strict=True):
        t = float(frame.exptime)
        if t not in minus_by_t:
            minus = None
            if bias is not None:
                minus = _native(bias.data).copy()
            if dark is not None:
                scaled = dark.data * np.float32(t)
                minus = scaled if minus is None else minus + scaled
            minus_by_t[t] = None if minus is None else _native(minus)
        sources.append(electrons_source(reader, noise.gain, minus_by_t[t], scale=float(scale)))
        used.append(frame.name)
    shape = readers[0][1].shape
    s1, s2 = float(scales.mean()), float((scales ** 2).mean())
    r2 = noise.read_noise ** 2
    combined, n_used = combine_frames(sources, shape, method, sigma=sigma, noise=(s1, s2 * r2),
                                      progress=progress, message="master flat")
    minus_by_t.clear()
    variance = np.maximum(combined, 0)
    variance *= np.float32(s1)
    variance += np.float32(s2 * r2)
    variance *= _factor(n_used, method)
    del n_used
    if bias is not None:
        add_square(variance, bias.uncertainty.array, s1 * s1)
    if dark is not None:
        t_f = float(np.mean([f.exptime for f, _ in readers]))
        add_square(variance, dark.uncertainty.array, s1 * s1 * t_f * t_f)
    median = _robust_stats(combined)[0]
    flat = combined
    flat /= np.float32(median)
    variance /= np.float32(median * median)
    with np.errstate(invalid="ignore"):
        nonpositive = int(np.sum(flat <= 0))
    if nonpositive:
        warnings.warn(f"master flat ({', '.join(used[:3])}{'...' if len(used) > 3 else ''}): "
                      f"{nonpositive} pixels are zero or negative; they are masked",
                      CalibrationWarning, stacklevel=2)
    mask = find_low_response(flat, low)
    filt = frames[0].filter
    meta = _meta("flat", [f for f, _ in readers], method,
                 [("FILTER", ascii_text(filt) if filt is not None else ""),
                  ("FLATLVL", (mean_level, "mean level of the flats (e-)"))])
    meta.add_history(f"master flat: {method} of {len(used)} flats minus bias and dark, each "
                     f"scaled to {mean_level:.1f} e-, {sigma:g}-sigma clip, divided by its "
                     f"median {median:.1f} e-")
    meta.add_history(f"mask: {int(mask.sum())} pixels with response < {low:g}, <= 0 or "
                     "not finite")
    return _ccd(flat, variance, mask, "", meta), {
        "levels": levels, "used": used, "skipped": skipped, "n_nonpositive": nonpositive,
        "median": float(median)}
