"""Reading raw pixels: FITS sections, overscan level, trimming, saturation, row chunks.

A :class:`PixelReader` gives the overscan-corrected, trimmed pixels of one raw frame in ADU
(float32), a block of rows at a time, without reading the rest of the file: uncompressed FITS
data are memory-mapped read-only, so memory stays bounded whatever the number of frames and the
raw file is never modified. Compressed or gzipped files fall back to reading the whole image.
"""

import logging
import re

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from numba import njit, prange

from ..exceptions import InputError
from ..headers import RAW_SATURATION_KEYS, positive_header_value

__all__ = ["parse_section", "PixelReader", "find_image_hdu"]

log = logging.getLogger(__name__)

_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


def parse_section(text, shape, *, name="section"):
    """Convert a FITS section string ``[x1:x2,y1:y2]`` (1-based, inclusive) to numpy slices.

    Parameters
    ----------
    text : str
        The section, e.g. ``'[  17: 528,   1: 520]'`` (spaces allowed).
    shape : tuple
        Shape (ny, nx) of the image it refers to.
    name : str
        What the section is (for the error message), e.g. ``'a.fits: TRIMSEC'``.

    Returns
    -------
    (slice, slice)
        Row and column slices, ``image[rows, cols]``.

    Raises
    ------
    ValueError
        If the text is not a section or does not fit inside ``shape``.
    """
    match = _SECTION.match(str(text))
    if not match:
        raise ValueError(f"{name}: {text!r} is not a FITS section like '[x1:x2,y1:y2]'")
    x1, x2, y1, y2 = (int(v) for v in match.groups())
    ny, nx = shape
    if x1 > x2 or y1 > y2 or x1 < 1 or y1 < 1 or x2 > nx or y2 > ny:
        raise ValueError(f"{name}: {text!r} does not fit an image of {nx} x {ny} pixels "
                         "(or is reversed)")
    return slice(y1 - 1, y2), slice(x1 - 1, x2)


def find_image_hdu(hdul):
    """Index of the first HDU holding a 2-D image (primary or extension), or None."""
    for i, hdu in enumerate(hdul):
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            if hdu.header.get("NAXIS", 0) == 2 or (
                    isinstance(hdu, fits.CompImageHDU) and hdu.header.get("ZNAXIS", 0) == 2):
                return i
    return None


#: extensions that go with an image rather than being images of their own
_AUXILIARY = ("UNCERT", "MASK", "ERR", "ERROR", "SIGMA", "VAR", "VARIANCE", "IVAR", "WEIGHT",
              "WHT", "DQ", "BPM", "FLAGS", "EXPMAP")


def count_image_hdus(hdul):
    """How many HDUs hold a 2-D image of their own (a mosaic camera's CCDs are one extension
    each); an image's uncertainty, mask, weight... extensions (by EXTNAME) do not count."""
    n = 0
    for hdu in hdul:
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            h = hdu.header
            if int(h.get("ZNAXIS", h.get("NAXIS", 0)) or 0) != 2:
                continue
            if str(h.get("EXTNAME", "")).strip().upper() in _AUXILIARY:
                continue
            n += 1
    return n


def no_image_reason(hdul):
    """Why a FITS file holds no frame to measure (for messages): a cube of planes (a colour
    image saved as R, G, B planes, a stack) gets its own reason and what to do."""
    for hdu in hdul:
        if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            continue
        h = hdu.header
        naxis = int(h.get("ZNAXIS", h.get("NAXIS", 0)) or 0)
        if naxis >= 3:
            key = "ZNAXIS" if "ZNAXIS" in h else "NAXIS"
            dims = " x ".join(str(h.get(f"{key}{i}", "?")) for i in range(naxis, 0, -1))
            planes = h.get(f"{key}3")
            what = ("the R, G, B planes of a colour image?" if planes == 3 else
                    "a cube of planes")
            return (f"a {naxis}-D image ({dims}: {what}), not a 2-D frame; give the raw "
                    "frames (a colour camera's raw Bayer mosaic is measured in its G channel, "
                    "--cfa), or save one plane as a 2-D FITS image")
    return "no 2-D image in the file"


_INT_MAX = {8: 255, 16: 32767, 32: 2147483647, 64: 2 ** 63 - 1}


@njit(parallel=True, cache=True)
def _decode_be16(raw, bscale, bzero, level, satlevel, gain, minus, has_minus, scale,
                 nan_saturated, out, saturated, want_saturated):
    """Big-endian int16 (viewed as native uint16) -> ((value - level) gain - minus) scale."""
    ny, nx = raw.shape
    offset = bzero - level
    for j in prange(ny):
        for i in range(nx):
            u = raw[j, i]
            v = np.int16((u >> np.uint16(8)) | (u << np.uint16(8)))
            adu = np.float32(v) * bscale
            sat = adu + bzero >= satlevel
            x = (adu + offset) * gain
            if has_minus:
                x -= minus[j, i]
            x *= scale
            if sat and nan_saturated:
                x = np.float32(np.nan)
            out[j, i] = x
            if want_saturated:
                saturated[j, i] = sat


_NO_MINUS = np.zeros((1, 1), np.float32)
_NO_SATURATED = np.zeros((1, 1), np.bool_)


class PixelReader:
    """Overscan-corrected, trimmed pixels of a raw frame, read a block of rows at a time.

    Parameters
    ----------
    path : path
        The raw FITS file (opened read-only).
    hdu : int
        Index of the image HDU.
    header : `~astropy.io.fits.Header`
        Its header (BIASSEC, TRIMSEC, BITPIX, BZERO, BSCALE, SATURATE are used).
    overscan : bool
        Subtract the overscan level when the header has BIASSEC.

    Notes
    -----
    The overscan level is one robust number per frame: the 3-sigma-clipped median of the whole
    BIASSEC region (row-to-row noise of a row-wise level would add correlated noise to every
    row). It is subtracted before trimming, for every frame type.
    """

    def __init__(self, path, hdu=0, header=None, *, overscan=True):
        self.path = path
        self.hdu = hdu
        if header is None:
            header = fits.getheader(path, hdu)
        self.header = header
        self.raw_shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        self.trim = (slice(0, self.raw_shape[0]), slice(0, self.raw_shape[1]))
        self.biassec = None
        name = getattr(path, "name", str(path))
        if header.get("TRIMSEC"):
            try:
                self.trim = parse_section(header["TRIMSEC"], self.raw_shape,
                                          name=f"{name}: TRIMSEC")
            except ValueError as err:
                raise InputError(f"{err}; fix or remove the keyword") from err
        if overscan and header.get("BIASSEC"):
            try:
                self.biassec = parse_section(header["BIASSEC"], self.raw_shape,
                                             name=f"{name}: BIASSEC")
            except ValueError as err:
                raise InputError(f"{err}; fix or remove the keyword") from err
        self.shape = (self.trim[0].stop - self.trim[0].start,
                      self.trim[1].stop - self.trim[1].start)
        self._raw = None
        self._level = None
        self.saturation = self._saturation_level()

    # -- raw access -------------------------------------------------------------------------
    def _open_raw(self):
        """How to read the stored values: (_RowFile or a loaded array, bscale, bzero)."""
        if self._raw is not None:
            return self._raw
        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
            hdu = hdul[self.hdu]
            info = hdul.fileinfo(self.hdu)
            bitpix = int(hdu.header["BITPIX"])
            compressed = isinstance(hdu, fits.CompImageHDU) or info is None or \
                getattr(hdul._file, "compression", None)
            if not compressed and "BLANK" not in hdu.header:
                dtype = np.dtype({8: "u1", 16: ">i2", 32: ">i4", 64: ">i8",
                                  -32: ">f4", -64: ">f8"}[bitpix])
                self._raw = (_RowFile(self.path, info["datLoc"], dtype, self.raw_shape),
                             float(hdu.header.get("BSCALE", 1.0)),
                             float(hdu.header.get("BZERO", 0.0)))
            else:  # compressed, gzipped or with BLANK: let astropy decode it (whole image)
                data = np.asarray(hdu.data, dtype=np.float32)
                self._raw = (data, 1.0, 0.0)
        return self._raw

    def raw_rows(self, y0, y1, cols=None):
        """Raw values (ADU, float32) of raw rows ``y0:y1`` (and columns ``cols``)."""
        mm, bscale, bzero = self._open_raw()
        block = mm[y0:y1] if cols is None else mm[y0:y1][:, cols]
        out = block.astype(np.float32)
        if bscale != 1.0:
            out *= np.float32(bscale)
        if bzero != 0.0:
            out += np.float32(bzero)
        return out

    def _saturation_level(self):
        """The raw value at which a pixel is saturated: SATURATE (or SATLEVEL), else the
        integer limit."""
        sat, _key = positive_header_value(self.header, RAW_SATURATION_KEYS)
        if sat is not None:
            return float(sat)
        bitpix = int(self.header.get("BITPIX", -32))
        if bitpix > 0:
            top = _INT_MAX[bitpix] * float(self.header.get("BSCALE", 1.0)) + \
                float(self.header.get("BZERO", 0.0))
            if bitpix == 8:
                top = 255.0
            return float(top)
        return None

    # -- corrected pixels -------------------------------------------------------------------
    @property
    def overscan_level(self):
        """Robust overscan level (ADU) of this frame, 0 when there is no BIASSEC."""
        if self._level is None:
            if self.biassec is None:
                self._level = 0.0
            else:
                region = self.raw_rows(self.biassec[0].start, self.biassec[0].stop,
                                       self.biassec[1])
                _, median, _ = sigma_clipped_stats(region, sigma=3.0, maxiters=5)
                self._level = float(median)
        return self._level

    def read_into(self, y0, y1, out, *, gain=1.0, minus=None, scale=1.0,
                  nan_saturated=False, want_saturated=True):
        """Fill ``out`` with ``((raw - overscan) * gain - minus) * scale`` for rows ``y0:y1``.

        One compiled pass for the usual 16-bit frames (no temporaries), numpy otherwise.

        Parameters
        ----------
        y0, y1 : int
            Trimmed rows.
        out : ndarray (float32)
            ``(y1 - y0, nx)``, written in place.
        gain : float
            Multiply by this (e-/ADU) after the overscan subtraction.
        minus : ndarray, optional
            ``(y1 - y0, nx)`` to subtract after the gain (e.g. rows of the master bias).
        scale : float
            Multiply by this at the end.
        nan_saturated : bool
            Write NaN where the raw value is saturated.

        want_saturated : bool
            Return the saturation mask (else None).

        Returns
        -------
        ndarray (bool) or None
            Raw value at or above the saturation level.
        """
        r0 = self.trim[0].start
        mm, bscale, bzero = self._open_raw()
        level = self.overscan_level
        satlevel = np.inf if self.saturation is None else self.saturation
        block = mm[r0 + y0:r0 + y1][:, self.trim[1]]
        if block.dtype == np.dtype(">i2"):
            saturated = np.empty(out.shape, dtype=bool) if want_saturated else _NO_SATURATED
            f32 = np.float32
            _decode_be16(block.view(np.uint16), f32(bscale), f32(bzero), f32(level),
                         f32(min(satlevel, 3e38)), f32(gain),
                         _NO_MINUS if minus is None else minus, minus is not None,
                         f32(scale), bool(nan_saturated), out, saturated, want_saturated)
            return saturated if want_saturated else None
        saturated = np.empty(out.shape, dtype=bool)
        raw = block.astype(np.float64)
        if bscale != 1.0 or bzero != 0.0:
            raw = raw * bscale + bzero
        np.greater_equal(raw, satlevel, out=saturated)
        value = (raw - level) * gain
        if minus is not None:
            value -= minus
        if scale != 1.0:
            value *= scale
        if nan_saturated:
            value[saturated] = np.nan
        out[...] = value
        return saturated if want_saturated else None

    def rows(self, y0=0, y1=None):
        """Overscan-subtracted, trimmed pixels (ADU, float32) of trimmed rows ``y0:y1``.

        Returns
        -------
        data : ndarray (float32)
        saturated : ndarray (bool)
            Raw value at or above the saturation level.
        """
        y1 = self.shape[0] if y1 is None else y1
        out = np.empty((y1 - y0, self.shape[1]), dtype=np.float32)
        saturated = self.read_into(y0, y1, out)
        return out, saturated

    def sample_rows(self, step):
        """Every ``step``-th trimmed row (cheap statistics over the frame)."""
        r0 = self.trim[0].start
        mm, bscale, bzero = self._open_raw()
        rows = np.arange(r0, r0 + self.shape[0], max(int(step), 1))
        out = np.concatenate([mm[r:r + 1] for r in rows])[:, self.trim[1]].astype(np.float32)
        if bscale != 1.0:
            out *= np.float32(bscale)
        if bzero != 0.0:
            out += np.float32(bzero)
        return out - np.float32(self.overscan_level), rows - r0

    def close(self):
        """Forget how to read the file (a loaded compressed image is freed)."""
        self._raw = None


class _RowFile:
    """Rows of an uncompressed FITS image read straight from the file with ``pread``.

    Not a memory map: the bytes go through the page cache into a buffer of the rows asked
    for, so reading many frames does not grow the process's resident memory, and the file is
    only ever opened read-only.
    """

    def __init__(self, path, offset, dtype, shape):
        self.path = path
        self.offset = int(offset)
        self.dtype = np.dtype(dtype)
        self.shape = tuple(shape)
        self.ndim = 2

    def __getitem__(self, rows):
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("_RowFile supports contiguous row slices only")
        y0, y1, _ = rows.indices(self.shape[0])
        y1 = max(y0, y1)
        nx = self.shape[1]
        count = (y1 - y0) * nx
        out = np.empty((y1 - y0, nx), dtype=self.dtype)
        if count:
            with open(self.path, "rb", buffering=0) as fh:
                fh.seek(self.offset + y0 * nx * self.dtype.itemsize)
                n = fh.readinto(memoryview(out.reshape(-1).view(np.uint8)))
            if n != count * self.dtype.itemsize:
                raise OSError(f"{self.path}: file ends early (truncated?)")
        return out
