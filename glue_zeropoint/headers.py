"""FITS header keywords that observers' software writes, and one way to read a number from them.

Calibration, photometry, astrometry's detection and the glue loader read exposure time, gain,
read noise, saturation and filter through these chains, so a keyword one of them understands
all do.
"""

import math
import unicodedata

__all__ = ["ascii_text", "EXPTIME_KEYS", "GAIN_KEYS", "READ_NOISE_KEYS", "SATURATION_KEYS",
           "RAW_SATURATION_KEYS", "FILTER_KEYS",
           "header_value", "positive_header_value", "header_text", "unusable_values"]

EXPTIME_KEYS = ("EXPTIME", "EXPOSURE")
GAIN_KEYS = ("GAIN", "EGAIN")
READ_NOISE_KEYS = ("RDNOISE", "READNOIS", "RON", "READNOISE")
#: Saturation of a (reduced) image; DATAMAX is IRAF/DAOPHOT's "maximum good value".
SATURATION_KEYS = ("SATURATE", "SATLEVEL", "DATAMAX")
#: Saturation of a raw frame: not DATAMAX, which a camera may write as the frame's maximum.
RAW_SATURATION_KEYS = ("SATURATE", "SATLEVEL")
FILTER_KEYS = ("FILTER", "FILTNAME", "FILT")


def header_value(meta, keys):
    """First finite numeric value of ``keys`` in a header/dict, with the key found.

    Booleans and text that is not a number are passed over (``EXPTIME = 'abc'`` is no
    exposure time).

    Returns
    -------
    (value, key) : (float, str) or (None, None)

    Examples
    --------
    >>> header_value({'EXPOSURE': '30'}, ('EXPTIME', 'EXPOSURE'))
    (30.0, 'EXPOSURE')
    >>> header_value({'EXPTIME': 'abc'}, ('EXPTIME',))
    (None, None)
    """
    if meta is None:
        return None, None
    for key in keys:
        try:
            value = meta.get(key)
        except Exception:  # noqa: BLE001 - odd header objects
            value = None
        if value is None or isinstance(value, bool):
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            return value, key
    return None, None


def positive_header_value(meta, keys):
    """Like :func:`header_value`, passing over values that are not > 0 (``SATURATE = 0`` is
    "unknown", not a saturation level, and must not hide a ``SATLEVEL``)."""
    for key in keys:
        value, found = header_value(meta, (key,))
        if value is not None and value > 0:
            return value, found
    return None, None


def header_text(meta, keys):
    """First non-empty text value of ``keys`` (stripped), or None."""
    if meta is None:
        return None
    for key in keys:
        try:
            value = meta.get(key)
        except Exception:  # noqa: BLE001
            value = None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def unusable_values(meta, keys):
    """``{key: value}`` of the ``keys`` present but not a finite number (for error messages)."""
    if meta is None:
        return {}
    bad = {}
    for key in keys:
        try:
            value = meta.get(key)
        except Exception:  # noqa: BLE001
            continue
        if value is not None and header_value({key: value}, (key,))[0] is None:
            bad[key] = value
    return bad


def ascii_text(text):
    """An ASCII form of ``text`` for a FITS header (which holds printable ASCII only).

    Accents are dropped (``Dark-ü.fit`` -> ``Dark-u.fit``), other letters written as
    ``\\u`` escapes (``Flat-Hα.fit`` -> ``Flat-H\\u03b1.fit``); control characters become
    ``?``. The real name is kept where non-ASCII text is allowed (``calibration.json``).

    Examples
    --------
    >>> ascii_text('Dark-ü.fit')
    'Dark-u.fit'
    >>> print(ascii_text('Flat-Hα.fit'))
    Flat-H\\u03b1.fit
    """
    text = str(text)
    if text.isascii() and text.isprintable():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    out = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        if ch.isascii():
            out.append(ch if ch.isprintable() else "?")
        else:
            out.append(ch.encode("ascii", "backslashreplace").decode("ascii"))
    return "".join(out)
