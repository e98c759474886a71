"""One view of an input image for the photometry: electrons, variance, bad pixels, header facts.

:func:`prepare_image` accepts a calibrated product (a `~astropy.nddata.CCDData` in electrons
with a ``StdDevUncertainty`` and a mask), a plain `~astropy.nddata.CCDData` in ADU (or without
a unit) or a bare 2-D array, and returns a :class:`PreparedImage` in electrons. Every guess made
on the way (gain, read noise, unit) is logged, never silent.
"""

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.nddata import NDData, StdDevUncertainty, VarianceUncertainty

from ..exceptions import InputError
from ..headers import EXPTIME_KEYS, GAIN_KEYS, READ_NOISE_KEYS, SATURATION_KEYS, header_value

__all__ = ["PreparedImage", "prepare_image", "header_value", "EXPTIME_KEYS", "GAIN_KEYS",
           "READ_NOISE_KEYS", "SATURATION_KEYS"]

log = logging.getLogger(__name__)

_ELECTRON = u.electron


def quantum_step(data, bad):
    """The step of data on a grid of steps (None when there is none).

    Read from differences of horizontally adjacent pixels, so that an offset per row or per
    frame (an overscan or bias level subtracted from integer counts) cancels: the step is the
    smallest non-zero difference, accepted when (nearly) every difference is a multiple of it.
    A frame is read on every k-th row (at least ~100,000 differences, of which the test
    uses 100,000: the fraction of multiples is then known to +-0.0003 against the 0.99
    asked).
    """
    data, bad = np.asarray(data), np.asarray(bad)
    k = max(1, data.size // 100_000) if data.ndim == 2 else 1
    d = np.diff(np.asarray(data[::k], dtype=np.float64), axis=1)
    ok = ~(bad[::k, 1:] | bad[::k, :-1]) & np.isfinite(d)
    d = np.abs(d[ok])
    d = d[:: max(1, d.size // 100_000)]
    scale = float(np.max(d)) if d.size else 0.0
    nz = d[d > 1e-9 * max(scale, 1e-300)]
    if nz.size < 10:
        return None
    step = float(np.percentile(nz, 0.1))
    if not step > 0:
        return None
    ratio = nz / step
    if np.mean(np.abs(ratio - np.round(ratio)) < 1e-3) < 0.99:
        return None
    return float(np.median(nz[np.round(ratio) == 1]))


@dataclass
class PreparedImage:
    """An image ready for photometry (all in electrons).

    Attributes
    ----------
    data : ndarray (float64)
        Pixel values in electrons.
    variance : ndarray or None
        Per-pixel variance (e-^2) from the uncertainty, or None (then the CCD equation is used).
    bad : ndarray of bool
        True for masked or non-finite pixels.
    wcs : `~astropy.wcs.WCS` or None
    meta : dict-like
    exptime : float or None
    gain : float
        e-/ADU applied to the input (1 for an image already in electrons).
    read_noise : float or None
        e- rms, when known.
    saturation : float or None
        Saturation level in electrons, when known.
    name : str
        For messages (file name or 'image').
    notes : list of str
        Guesses made (also logged).
    calibrated : bool or None
        True for an image in electrons or whose header records a bias/zero correction; False
        for integer raw data in ADU with no such record (its sky level still holds the bias
        pedestal); None when it cannot be told.
    """

    data: np.ndarray
    variance: np.ndarray | None
    bad: np.ndarray
    wcs: object = None
    meta: dict = field(default_factory=dict)
    exptime: float | None = None
    gain: float = 1.0
    read_noise: float | None = None
    saturation: float | None = None
    name: str = "image"
    notes: list = field(default_factory=list)
    calibrated: bool | None = None

    @property
    def shape(self):
        return self.data.shape

    @property
    def quantisation_noise(self):
        """The rms of rounding to the data's step (``step / sqrt(12)``; 0 when the data are
        not on a grid of steps): a floor for any noise measured on a flat, quantised sky."""
        if "_qnoise" not in self.__dict__:
            step = quantum_step(self.data, self.bad)
            self.__dict__["_qnoise"] = 0.0 if step is None else step / math.sqrt(12.0)
        return self.__dict__["_qnoise"]

    def require_exptime(self):
        """The exposure time, or an :class:`InputError` that says how to give it."""
        if self.exptime is None or not self.exptime > 0:
            raise InputError(f"{self.name}: no usable EXPTIME or EXPOSURE keyword "
                             f"(got {self.exptime!r}); pass exptime=... (--exptime on the "
                             "command line)")
        return self.exptime


def _is_electrons(unit):
    if unit is None:
        return False
    try:
        return u.Unit(unit).is_equivalent(_ELECTRON) and u.Unit(unit).to(_ELECTRON) == 1.0
    except (ValueError, u.UnitsError, TypeError):
        return False


def prepare_image(ccd, *, gain=None, read_noise=None, saturation=None, exptime=None, mask=None,
                  name=None):
    """Turn an image into a :class:`PreparedImage` in electrons.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`, `~astropy.nddata.NDData` or 2-D array
        In electrons (unit ``electron``) or ADU (any other unit, or none: multiplied by ``gain``).
    gain : float, optional
        e-/ADU for an image not in electrons; default from the header (``GAIN``, ``EGAIN``),
        else 1 (logged as a guess). Ignored (with a log message) for an image in electrons.
    read_noise : float, optional
        e- rms; default from the header (``RDNOISE``, ``READNOIS``...).
    saturation : float, optional
        Saturation level in the *input's* units; default from ``SATURATE``/``SATLEVEL``/
        ``DATAMAX``.
    exptime : float, optional
        Seconds; default from ``EXPTIME``/``EXPOSURE``.
    mask : ndarray of bool, optional
        Extra bad pixels (True = bad), OR-ed with the image's own mask.
    name : str, optional
        Used in messages; default from the header's ``FILENAME`` or ``'image'``.

    Raises
    ------
    InputError
        Not 2-D, a mask of the wrong shape, a non-positive gain, or no finite pixel at all.

    Examples
    --------
    >>> import numpy as np
    >>> im = prepare_image(np.ones((4, 4)), gain=2.0, exptime=10.0)
    >>> float(im.data[0, 0]), im.exptime
    (2.0, 10.0)
    """
    if isinstance(ccd, NDData):
        data = np.asarray(ccd.data, dtype=np.float64)
        meta = ccd.meta if ccd.meta is not None else {}
        unit = ccd.unit
        wcs = ccd.wcs
        own_mask = None if ccd.mask is None else np.asarray(ccd.mask, dtype=bool)
        unc = ccd.uncertainty
    else:
        data = np.asarray(ccd, dtype=np.float64)
        meta, unit, wcs, own_mask, unc = {}, None, None, None, None
    name = name or str(meta.get("FILENAME", "") or "image")
    if data.ndim != 2:
        raise InputError(f"{name}: the image must be 2-D, got shape {data.shape}")
    notes = []
    g = _gain_of(meta, unit, gain, name, notes)
    if read_noise is None:
        rn, key = header_value(meta, READ_NOISE_KEYS)
        if rn is not None:
            notes.append(f"{name}: read noise {rn:g} e- from {key}")
    else:
        rn = float(read_noise)
    if saturation is None:
        sat, key = header_value(meta, SATURATION_KEYS)
    else:
        sat = float(saturation)
    if sat is None and not _is_electrons(unit):
        sat = _data_ceiling(data, name, notes)
    if exptime is None:
        t, key = header_value(meta, EXPTIME_KEYS)
    else:
        t = float(exptime)
    bad = _bad_pixels(data, own_mask, mask, name)
    variance = _variance_of(unc, data.shape, name)
    if variance is not None:
        variance *= g * g
        bad |= ~np.isfinite(variance)
    if g != 1.0:
        data = data * g
        if sat is not None:
            sat = sat * g
    calibrated = _calibration_state(meta, unit, ccd)
    if calibrated is False:
        notes.append(f"{name}: raw data (integer ADU, no bias/zero correction in the header): "
                     "the local sky removes the bias pedestal from the stars, but the sky level "
                     "itself still holds it")
    for note in notes:
        log.info(note)
    return PreparedImage(data=data, variance=variance, bad=bad, wcs=wcs, meta=meta,
                         exptime=t, gain=g, read_noise=rn, saturation=sat, name=name,
                         notes=notes, calibrated=calibrated)


def _gain_of(meta, unit, gain, name, notes):
    """The gain (e-/ADU) that turns the image into electrons: 1 for an image in electrons,
    else ``gain``, else the header's ``GAIN``/``EGAIN``, else 1 with a note saying so."""
    if _is_electrons(unit):
        if gain is not None and float(gain) != 1.0:
            log.info("%s: image is already in electrons; gain=%s not applied", name, gain)
        return 1.0
    if gain is None:
        g, key = header_value(meta, GAIN_KEYS)
        if g is None:
            g = 1.0
            notes.append(f"{name}: no gain given and no GAIN/EGAIN keyword; assuming 1 e-/ADU")
        else:
            notes.append(f"{name}: gain {g:g} e-/ADU from {key}")
    else:
        g = float(gain)
    if not g > 0:
        raise InputError(f"{name}: gain must be > 0 e-/ADU, got {g!r}; pass --gain")
    return g


def _bad_pixels(data, own_mask, mask, name):
    """Non-finite pixels, the image's own mask and the given one (True = bad)."""
    bad = ~np.isfinite(data)
    if own_mask is not None:
        if own_mask.shape != data.shape:
            raise InputError(f"{name}: mask shape {own_mask.shape} differs from the image "
                             f"shape {data.shape}")
        bad |= own_mask
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise InputError(f"mask: shape {mask.shape} differs from the image shape "
                             f"{data.shape}")
        bad |= mask
    if bad.all():
        raise InputError(f"{name}: no finite, unmasked pixel in the image")
    return bad


def _variance_of(unc, shape, name):
    """The per-pixel variance (input units squared) of an NDData uncertainty (standard
    deviation, variance, or anything astropy converts), or None."""
    if unc is None:
        return None
    if isinstance(unc, StdDevUncertainty):
        # one new float64 plane, squared in place (a float32 memory-mapped plane was
        # converted and then squared into a second 8-byte copy)
        variance = np.array(unc.array, dtype=np.float64)
        np.multiply(variance, variance, out=variance)
    elif isinstance(unc, VarianceUncertainty):
        variance = np.array(unc.array, dtype=np.float64)
    else:  # inverse variance or unknown: convert through the uncertainty machinery
        try:
            variance = np.asarray(unc.represent_as(VarianceUncertainty).array, float)
        except Exception:  # noqa: BLE001
            log.warning("%s: uncertainty of type %s not understood; using the CCD "
                        "equation", name, type(unc).__name__)
            return None
    if variance.shape != shape:
        raise InputError(f"{name}: uncertainty shape {variance.shape} differs from "
                         f"the image shape {shape}")
    return variance


#: Header keywords that record a bias (zero) or overscan correction (IRAF ccdproc, MaxIm,
#: astropy ccdproc, our own products).
CALIBRATION_KEYS = ("ZEROCOR", "BIASCOR", "BIASFRM", "BIASSUB", "OVERSCAN", "CALSTAT",
                    "CCDPROC", "DARKCOR", "FLATCOR", "FLATFRM", "PEDESTAL",
                    "SUBBIAS")


def _calibration_state(meta, unit, ccd):
    if _is_electrons(unit):
        return True
    try:
        keys = {str(k).upper() for k in meta.keys()}
    except AttributeError:
        keys = set()
    if keys & set(CALIBRATION_KEYS):
        return True
    try:
        history = " ".join(str(h) for h in meta.get("HISTORY", [])).lower()
    except (AttributeError, TypeError):
        history = ""
    if "bias" in history or "zero" in history or "overscan" in history:
        return True
    raw = np.asarray(getattr(ccd, "data", ccd))
    try:
        bitpix = int(meta.get("BITPIX", 0) or 0)
    except (TypeError, ValueError):
        bitpix = 0
    sample = raw.ravel()[:: max(1, raw.size // 4096)]
    sample = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample
    integral = sample.size > 0 and bool(np.all(sample == np.round(sample)))
    if np.issubdtype(raw.dtype, np.integer) or bitpix > 0 or integral:
        return False
    return None


def _data_ceiling(data, name, notes):
    """The raw ceiling as saturation level when the header gives none: integer-valued data
    whose maximum is reached by several pixels (flat-topped stars at the converter's limit)."""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return None
    vmax = float(finite.max())
    if vmax < 255 or vmax != math.floor(vmax):
        return None
    n_at = int(np.count_nonzero(finite == vmax))
    if n_at < 4:
        return None
    notes.append(f"{name}: saturation level {vmax:g} (input units) from the data: {n_at} "
                 "pixels sit at the raw ceiling and no SATURATE/DATAMAX keyword gives one")
    return vmax
