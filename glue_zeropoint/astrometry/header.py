"""WCS and pointing from FITS headers and plate-solver solution files; writing a WCS."""

import logging
import re
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from ..exceptions import InputError
from ..io import atomic_path

__all__ = ["wcs_from_header", "rough_pointing", "write_wcs", "read_header", "read_image",
           "wcs_shape", "strip_wcs_keywords", "update_fits_wcs", "as_sky_center", "as_pixel_scale"]

_WCS_KEY = re.compile(r"^(WCSAXES|CTYPE\d|CRVAL\d|CRPIX\d|CDELT\d|CUNIT\d|CROTA\d|CD\d_\d|"
                      r"PC\d_\d|PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|RADESYS|EQUINOX|EPOCH|"
                      r"WCSNAME|MJDREF|DATEREF|[AB]P?_ORDER|[AB]P?_\d+_\d+|[AB]_DMAX|"
                      r"IMAGEW|IMAGEH)$")

log = logging.getLogger(__name__)

_ARCSEC_PER_RAD = 206264.80624709636


def read_header(path):
    """Header of the first HDU of ``path`` that holds an image or a celestial WCS.

    A plate solver's header-only solution file (astrometry.net ``.wcs``) has an empty primary
    HDU: its header is returned. Raises InputError if the file cannot be read as FITS.
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.header.get("NAXIS", 0) >= 2 or "CTYPE1" in hdu.header:
                    return hdu.header.copy()
            return hdul[0].header.copy()
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such file") from err
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable FITS file ({err}); give a FITS image or a "
                         "plate solver's .wcs/.new file") from err


def read_image(path):
    """``(data, header)`` of the first 2-D image HDU of a FITS file (data as float32)."""
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.data is not None and getattr(hdu.data, "ndim", 0) == 2:
                    return np.asarray(hdu.data, dtype=np.float32), hdu.header.copy()
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such file") from err
    except OSError as err:
        raise InputError(f"{path}: not a readable FITS image ({err})") from err
    raise InputError(f"{path}: no 2-D image in any HDU; give a FITS image")


def wcs_shape(header):
    """Image size ``(ny, nx)`` a header's WCS is for: NAXIS1/2, else IMAGEW/IMAGEH, else None."""
    if header.get("NAXIS", 0) >= 2 and header.get("NAXIS1") and header.get("NAXIS2"):
        return int(header["NAXIS2"]), int(header["NAXIS1"])
    if header.get("IMAGEW") and header.get("IMAGEH"):
        return int(header["IMAGEH"]), int(header["IMAGEW"])
    return None


def wcs_from_header(header_or_path, shape=None, *, require=False):
    """The celestial WCS of an image header or of a plate-solver solution file.

    Parameters
    ----------
    header_or_path : `~astropy.io.fits.Header`, str or path
        A header, a FITS image, or a solution file (astrometry.net ``.wcs``, header only, with
        ``IMAGEW``/``IMAGEH``, or ``.new``; any FITS file whose header has a WCS).
    shape : tuple, optional
        ``(ny, nx)`` of the image the WCS will be used with. If the header states the size it
        was made for (NAXIS1/2 of an image, IMAGEW/IMAGEH of a solution file) and that
        differs, an InputError is raised.
    require : bool
        Raise InputError (saying why) instead of returning None when there is no usable
        celestial WCS.

    Returns
    -------
    `~astropy.wcs.WCS` or None
        Two-dimensional celestial WCS (with SIP/TPV distortion if present, ``pixel_shape``
        set), or None if the header has none.

    Raises
    ------
    InputError
        Unreadable file; a WCS for another image size; a degenerate WCS (singular matrix).
    """
    name = "header"
    if isinstance(header_or_path, (str, Path)):
        name = str(header_or_path)
        header = read_header(header_or_path)
    elif isinstance(header_or_path, fits.Header):
        header = header_or_path
    elif isinstance(header_or_path, dict):
        header = fits.Header(header_or_path)
    else:
        raise InputError(f"wcs_from_header needs a FITS header or a path, not "
                         f"{type(header_or_path).__name__}")

    def none(reason):
        if require:
            raise InputError(f"{name}: {reason}")
        log.debug("%s: %s", name, reason)
        return None

    if not any(k in header for k in ("CTYPE1", "CTYPE2")):
        return none("no WCS (no CTYPE1/CTYPE2 keywords); plate-solve the image or give "
                    "--wcs with a solution file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            hdr = header.copy()
            for key in ("NAXIS3", "NAXIS4"):
                hdr.remove(key, ignore_missing=True)
            w = WCS(hdr, naxis=2, relax=True)
        except Exception as err:  # astropy raises many kinds on malformed WCS keywords
            raise InputError(f"{name}: the WCS keywords cannot be read ({err}); fix or "
                             "remove them") from err
    if not w.has_celestial:
        return none(f"the WCS is not celestial (CTYPE {list(w.wcs.ctype)}); give a "
                    "plate-solved WCS with RA---TAN/DEC--TAN axes")
    w = w.celestial if w.naxis != 2 else w
    try:
        m = w.pixel_scale_matrix
    except Exception as err:
        raise InputError(f"{name}: the WCS matrix cannot be evaluated ({err})") from err
    det = np.linalg.det(m)
    if not np.isfinite(det) or abs(det) < 1e-20:
        raise InputError(f"{name}: the WCS matrix (CD/PC x CDELT) is singular or not finite; "
                         "the header WCS is unusable: solve the image with "
                         "'glue-zeropoint solve'")
    made_for = wcs_shape(header)
    if shape is not None:
        shape = (int(shape[0]), int(shape[1]))
        if made_for is not None and tuple(made_for) != shape:
            raise InputError(
                f"{name}: the WCS is for a {made_for[1]}x{made_for[0]} image but the image is "
                f"{shape[1]}x{shape[0]} pixels; use the solution file of this image (same "
                "binning and crop)")
    final = shape or made_for
    if final is not None:
        w.pixel_shape = (final[1], final[0])
    return w


_NUM = re.compile(r"^[+-]?\d+(\.\d*)?([eE][+-]?\d+)?$")


def as_sky_center(center):
    """``None``, a scalar ``SkyCoord`` or ``(ra, dec)`` in degrees -> ICRS ``SkyCoord``."""
    if center is None:
        return None
    if isinstance(center, SkyCoord):
        if not center.isscalar:
            raise InputError(f"center must be one sky position, got {len(center)}")
        return center.icrs
    try:
        ra, dec = center
    except (TypeError, ValueError) as err:
        raise InputError(f"center must be a SkyCoord or (ra, dec) in degrees; got "
                         f"{center!r}") from err
    try:
        return SkyCoord(u.Quantity(ra, u.deg), u.Quantity(dec, u.deg), frame="icrs")
    except (TypeError, ValueError, u.UnitsError) as err:
        raise InputError(f"center {center!r}: {err}") from err


def as_pixel_scale(scale):
    """``None``, a number (arcsec/pixel) or an angle(/pixel) ``Quantity`` -> arcsec/pixel."""
    if scale is None:
        return None
    if isinstance(scale, u.Quantity):
        scale = scale.to_value(u.arcsec / u.pix) if scale.unit.physical_type != "angle" \
            else scale.to_value(u.arcsec)
    scale = float(scale)
    if not 1e-3 < scale < 3600:
        raise InputError(f"scale={scale!r} is not a plausible pixel scale; give it in arcsec "
                         "per pixel (--scale)")
    return scale


def _angle(value, hours):
    """A header angle: a number in degrees, or a sexagesimal string (hours if ``hours``)."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    if _NUM.match(text):
        return float(text)
    text = re.sub(r"[hdms:'\"°]", " ", text).strip()
    ang = Angle(text, unit=u.hourangle if hours else u.deg)
    return float(ang.deg)


def _scale_from(header):
    """(arcsec per pixel, description) from the header, or (None, None)."""
    for key in ("PIXSCALE", "SECPIX", "SECPIX1", "PIXSCAL1", "SCALE"):
        if key in header:
            try:
                val = float(header[key])
            except (TypeError, ValueError):
                continue
            if 0.01 < val < 3600:
                return val, key
    focal = None
    for key in ("FOCALLEN", "FOCAL"):
        if key in header:
            try:
                focal = float(header[key])
            except (TypeError, ValueError):
                continue
            break
    if not focal or focal <= 0:
        return None, None
    binning = 1
    try:
        binning = max(1, int(header.get("XBINNING", 1)))
    except (TypeError, ValueError):
        pass
    # XPIXSZ follows the MaxIm DL / N.I.N.A. convention: the pixel size *after* binning.
    # PIXSIZE1/PIXSIZE are the physical (unbinned) pixel (INDI/Ekos): multiply by the binning.
    if "XPIXSZ" in header:
        size, desc = float(header["XPIXSZ"]), "FOCALLEN + XPIXSZ (binned pixel)"
    elif "PIXSIZE1" in header or "PIXSIZE" in header:
        raw = float(header.get("PIXSIZE1", header.get("PIXSIZE")))
        size, desc = raw * binning, f"FOCALLEN + PIXSIZE1 x {binning} (binning)"
    else:
        return None, None
    if size <= 0:
        return None, None
    return _ARCSEC_PER_RAD * size * 1e-3 / focal, desc


def rough_pointing(header):
    """Approximate image centre and pixel scale from a header, for the solver.

    The centre comes from a celestial WCS in the header (at the image centre) if there is one,
    else from ``RA``/``DEC`` (degrees when numbers; sexagesimal hours/degrees when strings),
    else ``OBJCTRA``/``OBJCTDEC`` (sexagesimal hours/degrees, MaxIm DL style). The scale (arcsec
    per pixel) comes from the WCS, else ``PIXSCALE``/``SECPIX``/``SECPIX1``/``PIXSCAL1``/
    ``SCALE``, else ``FOCALLEN`` (mm) with ``XPIXSZ`` (microns, already binned, MaxIm DL and
    N.I.N.A. convention) or ``PIXSIZE1`` (unbinned, multiplied by ``XBINNING``). A mount's
    coordinates may be of the epoch of date: treat the centre as good to ~30 arcmin.

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict

    Returns
    -------
    center : `~astropy.coordinates.SkyCoord` or None
    scale : float or None
        Arcsec per pixel.
    source : str
        Which keywords were used (``''`` when nothing was found).
    """
    if isinstance(header, dict):
        header = fits.Header(header)
    center = scale = None
    used = []
    try:
        w = wcs_from_header(header)
    except InputError:
        w = None
    if w is not None:
        shape = wcs_shape(header)
        if shape is not None:
            ny, nx = shape
            center = w.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0).icrs
        else:
            center = SkyCoord(*w.wcs.crval, unit="deg", frame="icrs")
        scale = float(np.sqrt(abs(np.linalg.det(w.pixel_scale_matrix))) * 3600.0)
        used.append("WCS")
    if center is None:
        for ra_key, dec_key, hours in (("RA", "DEC", None), ("OBJCTRA", "OBJCTDEC", True),
                                       ("RA_OBJ", "DEC_OBJ", None), ("TELRA", "TELDEC", None)):
            if ra_key in header and dec_key in header:
                raw = header[ra_key]
                h = hours if hours is not None else isinstance(raw, str) and not _NUM.match(
                    raw.strip())
                try:
                    ra = _angle(raw, hours=h)
                    dec = _angle(header[dec_key], hours=False)
                except (ValueError, TypeError) as err:
                    log.warning("cannot read %s/%s = %r/%r: %s", ra_key, dec_key, raw,
                                header[dec_key], err)
                    continue
                if ra is None or dec is None or not (-90 <= dec <= 90):
                    continue
                center = SkyCoord(ra % 360.0, dec, unit="deg", frame="icrs")
                used.append(f"{ra_key}/{dec_key}")
                break
    if scale is None:
        scale, desc = _scale_from(header)
        if scale is not None:
            used.append(desc)
    return center, scale, ", ".join(used)


def strip_wcs_keywords(header):
    """A copy of ``header`` without WCS keywords (TAN, SIP, TPV/PV, CROTA, IMAGEW/IMAGEH)."""
    h = header.copy()
    for key in list(h.keys()):
        if _WCS_KEY.match(key):
            h.remove(key, remove_all=True)
    return h


def update_fits_wcs(path, wcs, *, history="WCS updated by glue-zeropoint"):
    """Replace the WCS in the primary header of an existing FITS file, atomically.

    Used to store a WCS found later (plate solution, match to sky) in a calibrated product: old
    WCS keywords (SIP and TPV included) are removed first, the data and extensions are kept.

    Raises
    ------
    InputError
        If the file cannot be read or written, or its image does not have the WCS's size.
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such file") from err
    except OSError as err:
        raise InputError(f"{path}: not a readable FITS file ({err})") from err
    primary = hdul[0]
    if primary.data is not None and wcs.pixel_shape is not None and \
            tuple(primary.data.shape[::-1]) != tuple(wcs.pixel_shape):
        raise InputError(f"{path}: the image is {primary.data.shape[1]}x{primary.data.shape[0]}"
                         f" but the WCS is for {wcs.pixel_shape[0]}x{wcs.pixel_shape[1]}")
    header = strip_wcs_keywords(primary.header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header.update(wcs.to_header(relax=True))
    if history:
        header["HISTORY"] = history
    primary.header = header
    try:
        with atomic_path(path) as tmp:
            hdul.writeto(tmp, overwrite=True)
    except OSError as err:
        raise InputError(f"{path}: cannot write the new WCS ({err.strerror or err})") from err
    return path


def write_wcs(path, wcs, *, header=None):
    """Write a WCS as a header-only FITS file (like an astrometry.net ``.wcs``), atomically.

    ``IMAGEW``/``IMAGEH`` record the image size (from ``wcs.pixel_shape``), SIP terms are
    written when present. Extra cards (e.g. the solution's quality) may be given in ``header``.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if not path.parent.exists():
        raise InputError(f"{path}: the folder {path.parent} does not exist; create it or choose "
                         "another --out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdr = wcs.to_header(relax=True)
    if wcs.pixel_shape is not None:
        hdr["IMAGEW"] = (int(wcs.pixel_shape[0]), "image width (pixels)")
        hdr["IMAGEH"] = (int(wcs.pixel_shape[1]), "image height (pixels)")
    if header is not None:
        for key, value in (header.items() if hasattr(header, "items") else header):
            hdr[key] = value
    hdu = fits.PrimaryHDU(header=hdr)
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True)
    return path
