"""The observation time of a frame, from the header forms observers actually have.

One reader for every layer (proper motions in the crossmatch and the plate solve, the Glue
viewer): ``DATE-OBS`` in ISO form (``2024-07-01T22:00:00`` or a date with ``TIME-OBS``/``UT``/
``UTSTART``), the pre-2000 FITS form ``dd/mm/yy`` (with the time keyword too), ``MJD-OBS`` or
``JD``. An unreadable date is not fatal: it only means proper motions cannot be applied, so it
gives a warning naming the file and keyword and ``None``.
"""

import re
import warnings

from .exceptions import InputWarning

__all__ = ["observation_time", "parse_date"]

_OLD_FITS_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s*$")
_TIME_KEYS = ("TIME-OBS", "UT", "UTSTART", "UT-START")


def _iso(value, header):
    text = str(value).strip()
    m = _OLD_FITS_DATE.match(text)
    if m:  # 'dd/mm/yy' (FITS before 2000): 19yy
        day, month, year = (int(g) for g in m.groups())
        year += 1900 if year < 100 else 0
        text = f"{year:04d}-{month:02d}-{day:02d}"
    if "T" not in text:
        for key in _TIME_KEYS:
            if key in header and str(header[key]).strip():
                text = f"{text}T{str(header[key]).strip()}"
                break
    return text


def parse_date(text, scale=None):
    """`~astropy.time.Time` of a date string: ISO (``2024-07-01T22:00:00``, with a space,
    or a date alone), then the FITS form (which may name its scale: ``...(TAI)``), each tried
    by name, then astropy's own guess. ``scale``: the time scale, default astropy's (UTC for
    ISO strings).

    Named formats because astropy's guessing keeps the error of each format it tried in a
    reference cycle that holds every calling frame, and the images in their variables, until
    the next full garbage collection: a 4096^2 night peaked ~400 MB higher.

    Raises
    ------
    ValueError
        If no format reads it.
    """
    from astropy.time import Time

    text = str(text).strip()
    for fmt in ("isot", "iso", "fits"):
        try:
            return Time(text, format=fmt, scale=scale)
        except ValueError:
            continue
    return Time(text, scale=scale)  # the rare other forms (e.g. '2024:183:22:00:00')


def observation_time(header, name=None):
    """`~astropy.time.Time` of the observation, or ``None`` (with a warning if unreadable).

    Parameters
    ----------
    header : mapping (e.g. `~astropy.io.fits.Header`) or None
    name : str, optional
        The file's name, for the warning.

    Examples
    --------
    >>> observation_time({"DATE-OBS": "13/07/98", "UT": "21:05:00"}).isot
    '1998-07-13T21:05:00.000'
    >>> observation_time({"MJD-OBS": 60492.5}).isot
    '2024-07-01T12:00:00.000'
    """
    if not header:
        return None
    from astropy.time import Time

    for key in ("DATE-OBS", "DATE_OBS"):
        if key in header and str(header[key]).strip():
            try:
                return parse_date(_iso(header[key], header), scale="utc")
            except ValueError:
                bad = (key, header[key])
                break
    else:
        bad = None
    for key, fmt in (("MJD-OBS", "mjd"), ("JD", "jd")):
        if key in header:
            try:
                return Time(float(header[key]), format=fmt, scale="utc")
            except (TypeError, ValueError):
                bad = bad or (key, header[key])
    if bad is not None:
        where = f"{name}: " if name else ""
        warnings.warn(f"{where}{bad[0]} {bad[1]!r} is not a date this reader knows (ISO "
                      "yyyy-mm-ddThh:mm:ss, dd/mm/yy, MJD-OBS); proper motions are not applied",
                      InputWarning, stacklevel=2)
    return None
