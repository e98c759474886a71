"""Calibrate one light frame: electrons, CCD-equation uncertainty, bad-pixel mask, header.

``C = (S - B - d t) / f`` with (docs/architecture.md section 5)

    sigma_C^2 = [P + R^2 + sigma_B^2 + t^2 sigma_d^2 - 2 (t / t_d) sigma_B^2] / f^2
                + C^2 sigma_f^2 / f^2

everything in electrons (S = gain x overscan-corrected, trimmed raw ADU). Two refinements of
the textbook formula, both needed for pulls with unit standard deviation and zero mean:

- ``-2 (t / t_d) sigma_B^2``: the dark rate ``d = (D - B) / t_d`` was made with the same master
  bias, so its bias error cancels the light's (exactly, for a dark of the light's exposure);
  ``sigma_d`` as stored in the master dark includes ``sigma_B / t_d``.
- ``P``, the Poisson term, is ``max(x, 0)`` with ``x = S - B - d t`` replaced by the mean of
  its 8 neighbours wherever the pixel agrees with that mean within 3 sigma. A variance taken
  from the pixel's own noisy value correlates with its noise and biases the pulls by
  ``-1 / (2 sigma)`` (-0.04 on a 66 e- sky); star cores and cosmic rays, which stand out from
  their neighbours, keep their own value.

What the lights of one exposure and filter share (B + d t, the signal-independent variance,
the hot/low-response flags) is computed once (:func:`prepare_masters`); then per light one
compiled pass decodes the raw frame into ``x = S - B - d t`` and another computes C, sigma_C
and the mask. A missing master is simply left out (and reported by the caller).
"""

import logging

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.wcs import WCS, FITSFixedWarning
from numba import njit, prange

from ..headers import ascii_text
from .masters import add_square

__all__ = ["calibrate_light", "prepare_masters", "light_header", "light_wcs"]

log = logging.getLogger(__name__)

# mask bits used internally to count what was flagged (the product mask is a plain bool)
SATURATED, HOT, LOW_RESPONSE, NONFINITE = 1, 2, 4, 8

_EMPTY = np.zeros((1, 1), np.float32)


@njit(parallel=True, cache=True)
def _light_kernel(signal, saturated, base, flags_in, flat, flat_var, has_flat,
                  out, sigma, flags):
    """C = x / f and sigma_C from x = S - B - d t (e-) and the signal-independent variance.

    The Poisson term is the mean of the 8 neighbours of x where x agrees with it within
    3 sigma, else x itself (see the module docstring).
    """
    ny, nx = signal.shape
    for j in prange(ny):
        j0 = max(j - 1, 0)
        j1 = min(j + 2, ny)
        colsum = np.zeros(nx + 2, dtype=np.float64)  # 3-row column sums, padded by one
        colcnt = np.zeros(nx + 2, dtype=np.int32)
        for jj in range(j0, j1):
            for i in range(nx):
                v = signal[jj, i]
                if np.isfinite(v):
                    colsum[i + 1] += v
                    colcnt[i + 1] += 1
        for i in range(nx):
            x = signal[j, i]
            total = colsum[i] + colsum[i + 1] + colsum[i + 2]
            count = colcnt[i] + colcnt[i + 1] + colcnt[i + 2]
            if np.isfinite(x):
                total -= x
                count -= 1
            b = base[j, i]
            poisson = max(x, 0.0)
            if count > 0:
                local = max(total / count, 0.0)
                if abs(x - local) <= 3.0 * np.sqrt(local + b):
                    poisson = local
            var = b + poisson
            if has_flat:
                f = flat[j, i]
                c = x / f
                var = (var + c * c * flat_var[j, i]) / (f * f)
            else:
                c = x
            s = np.sqrt(var)
            flag = flags_in[j, i]
            if saturated[j, i]:
                flag |= 1
            if not (np.isfinite(c) and np.isfinite(s)):
                flag |= 8
            out[j, i] = c
            sigma[j, i] = s
            flags[j, i] = flag


def prepare_masters(noise, exptime, *, bias=None, dark=None, flat=None):
    """What every light of one exposure time and filter shares, computed once.

    Parameters
    ----------
    noise : `~.camera.CameraNoise`
    exptime : float
        The lights' exposure time (s).
    bias, dark, flat : `~astropy.nddata.CCDData`, optional
        Master bias (e-), dark-current rate (e-/s), normalised flat.

    Returns
    -------
    dict
        ``offset`` = B + d t (e-, or None), ``base`` = R^2 + sigma_B^2 + t^2 sigma_d^2
        - 2 (t / t_d) sigma_B^2 (e-^2), ``flags`` (hot = 2, low response = 4), ``flat``,
        ``flat_var`` and ``key`` (identifies the inputs).
    """
    shape = next((m.shape for m in (bias, dark, flat) if m is not None), None)
    t = float(exptime)
    key = (id(bias), id(dark), id(flat), t, noise.gain, noise.read_noise)
    if shape is None:
        return {"offset": None, "base": None, "flags": None, "flat": None, "flat_var": None,
                "key": key, "scalar_base": noise.read_noise ** 2}
    offset = np.zeros(shape, np.float32)
    base = np.full(shape, noise.read_noise ** 2, np.float32)
    flags = np.zeros(shape, np.uint8)
    if bias is not None:
        offset += bias.data
        add_square(base, bias.uncertainty.array)
    if dark is not None:
        for y0 in range(0, shape[0], 256):
            offset[y0:y0 + 256] += dark.data[y0:y0 + 256] * np.float32(t)
        add_square(base, dark.uncertainty.array, t * t)
        if bias is not None:  # the dark's bias error cancels the light's
            t_dark = float(dark.meta.get("EXPTIME", t))
            add_square(base, bias.uncertainty.array, -2 * t / t_dark)
        if dark.mask is not None:
            flags[dark.mask] |= HOT
    flat_data = flat_var = None
    if flat is not None:
        flat_data = np.ascontiguousarray(flat.data, np.float32)
        flat_var = np.zeros(shape, np.float32)
        add_square(flat_var, flat.uncertainty.array)
        with np.errstate(invalid="ignore"):
            bad = ~(flat_data > 0)
        if flat.mask is not None:
            bad |= flat.mask
        flags[bad] |= LOW_RESPONSE
    np.maximum(base, 0, out=base)
    return {"offset": None if (bias is None and dark is None) else offset, "base": base,
            "flags": flags, "flat": flat_data, "flat_var": flat_var, "key": key}


def calibrate_light(frame, noise, *, bias=None, dark=None, flat=None, reader=None,
                    prepared=None):
    """Calibrate one light frame into electrons with uncertainty and mask.

    Parameters
    ----------
    frame : `~.frames.RawFrame`
        The light.
    noise : `~.camera.CameraNoise`
        Gain (e-/ADU) and read noise (e-).
    bias : `~astropy.nddata.CCDData`, optional
        Master bias (e-).
    dark : `~astropy.nddata.CCDData`, optional
        Master dark-current rate (e-/s); scaled by the light's exposure time.
    flat : `~astropy.nddata.CCDData`, optional
        Normalised master flat of the light's filter.
    reader : `~.sections.PixelReader`, optional
        Reader of the frame (default ``frame.reader()``).
    prepared : dict, optional
        :func:`prepare_masters` of the same masters and exposure time (reused across lights).

    Returns
    -------
    ccd : `~astropy.nddata.CCDData`
        float32 data (electron), `~astropy.nddata.StdDevUncertainty` (e-), bool mask (True =
        saturated, hot, dead/low-response or non-finite), ``meta`` = the light's header without
        the raw-layout keywords (see :func:`light_header`), ``wcs`` from it when present.
    counts : dict
        Pixels flagged: ``saturated``, ``hot``, ``low_response``, ``nonfinite``, ``masked``.
    """
    reader = frame.reader() if reader is None else reader
    key = (id(bias), id(dark), id(flat), float(frame.exptime), noise.gain, noise.read_noise)
    if prepared is None or prepared["key"] != key:
        prepared = prepare_masters(noise, frame.exptime, bias=bias, dark=dark, flat=flat)
    shape = reader.shape
    signal = np.empty(shape, np.float32)
    saturated = reader.read_into(0, shape[0], signal, gain=noise.gain,
                                 minus=prepared["offset"])
    base = prepared["base"]
    if base is None:
        base = np.full(shape, prepared["scalar_base"], np.float32)
    flags_in = prepared["flags"] if prepared["flags"] is not None else \
        np.zeros(shape, np.uint8)
    has_flat = prepared["flat"] is not None
    out = np.empty(shape, np.float32)
    sigma = np.empty(shape, np.float32)
    flags = np.empty(shape, np.uint8)
    _light_kernel(signal, saturated, base, flags_in,
                  prepared["flat"] if has_flat else _EMPTY,
                  prepared["flat_var"] if has_flat else _EMPTY, has_flat, out, sigma, flags)
    del signal, saturated
    mask = flags != 0
    counts = {"saturated": int(np.count_nonzero(flags & SATURATED)),
              "hot": int(np.count_nonzero(flags & HOT)),
              "low_response": int(np.count_nonzero(flags & LOW_RESPONSE)),
              "nonfinite": int(np.count_nonzero(flags & NONFINITE)),
              "masked": int(np.count_nonzero(mask))}
    header = light_header(frame, reader)
    return CCDData(out, unit="electron", uncertainty=StdDevUncertainty(sigma, copy=False),
                   mask=mask, meta=header, wcs=light_wcs(header, frame.name)), counts


_RAW_LAYOUT = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "BZERO",
               "BSCALE", "BLANK", "PCOUNT", "GCOUNT", "TRIMSEC", "BIASSEC", "DATASEC",
               "CHECKSUM", "DATASUM", "BUNIT")


def light_header(frame, reader=None):
    """The light's header for the calibrated product.

    Raw-layout keywords (BITPIX, BZERO, TRIMSEC, BIASSEC, ...) are dropped, the WCS reference
    pixel is shifted by the trim, and guessed EXPTIME / FILTER are written in.
    """
    header = frame.header.copy()  # its own cards: the raw frame's header is never changed
    for key in {k for k in header.keys() if k in _RAW_LAYOUT or k.startswith("NAXIS")}:
        header.remove(key, remove_all=True)
    if reader is not None:
        y0, x0 = reader.trim[0].start, reader.trim[1].start
        # trimming x0 columns moves every pixel x0 down: CRPIX and IRAF's LTV (logical =
        # physical + LTV) both lose x0
        for key, offset in (("CRPIX1", x0), ("CRPIX2", y0), ("LTV1", x0), ("LTV2", y0)):
            if offset and key in header:
                header[key] = header[key] - offset
        # a colour mosaic's pattern starts where the trim starts: an odd trim shifts it
        from .cfa import cfa_pattern

        if cfa_pattern(header)[0] is not None:
            for key, offset in (("XBAYROFF", x0), ("YBAYROFF", y0)):
                if offset % 2:
                    try:
                        old = int(round(float(header.get(key, 0) or 0)))
                    except (TypeError, ValueError):
                        old = 0
                    header[key] = (old + offset) % 2
        if reader.biassec is not None:
            header.add_history(f"overscan: subtracted {reader.overscan_level:.2f} ADU "
                               f"(clipped median of BIASSEC {frame.header['BIASSEC']})")
        if "TRIMSEC" in frame.header:
            header.add_history(f"trimmed to TRIMSEC {frame.header['TRIMSEC']}")
    if "EXPTIME" not in header:
        header["EXPTIME"] = (frame.exptime, "exposure time (s)")
    if frame.filter is not None and "FILTER" not in header:
        header["FILTER"] = (ascii_text(frame.filter), "filter (from the file name)")
    header["BUNIT"] = "electron"
    return header


def light_wcs(header, name=""):
    """The celestial WCS of a header, or None when it has none (or it cannot be read)."""
    if "CTYPE1" not in header and "CD1_1" not in header:
        return None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header)
    except Exception as err:  # noqa: BLE001 - a broken WCS must not stop calibration
        log.warning("%s: WCS in the header could not be read (%s); calibrated without WCS",
                    name, err)
        return None
    return wcs if wcs.has_celestial else None
