"""The calibrated FITS product (docs/architecture.md section 3), written atomically.

Primary HDU: the image (float32, electrons) with the light's header; extension ``UNCERT``:
1-sigma uncertainty (float32, e-); extension ``MASK``: uint8, 1 = bad.
"""

import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.wcs import FITSFixedWarning

from ..exceptions import InputError
from ..io import atomic_path

__all__ = ["write_product", "read_product"]


def _read_only(array, dtype=None):
    view = np.asarray(array, dtype=dtype).view()
    view.flags.writeable = False
    return view


def write_product(ccd, path):
    """Write a calibrated image (or master) to ``path`` atomically.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        With a `~astropy.nddata.StdDevUncertainty` (or one that converts to it) and a bool mask
        (either may be None).
    path : path
        Destination; written to a temporary file next to it and renamed into place, so a
        failure never leaves a half-written file.

    Returns
    -------
    Path

    Notes
    -----
    The arrays of ``ccd`` are never modified, not even for a moment: astropy byte-swaps a
    writeable little-endian array in place while writing it, which another thread (a viewer,
    the next calibration step) would see; it is given read-only views instead, and swaps a copy.
    """
    path = Path(path)
    uncertainty = None
    if ccd.uncertainty is not None:
        sigma = ccd.uncertainty.represent_as(StdDevUncertainty).array
        uncertainty = StdDevUncertainty(_read_only(sigma, np.float32), copy=False)
    out = CCDData(_read_only(ccd.data, np.float32), unit=ccd.unit, meta=ccd.meta,
                  uncertainty=uncertainty, mask=ccd.mask, wcs=ccd.wcs, copy=False)
    with atomic_path(path) as tmp:
        out.write(tmp, hdu_uncertainty="UNCERT", hdu_mask="MASK", overwrite=True,
                  format="fits")
    return path


def read_product(path, *, memmap=False):
    """Read a product written by :func:`write_product`.

    Parameters
    ----------
    path : path
    memmap : bool
        Map the image and uncertainty read-only from the file instead of reading them (large
        nights; big-endian float32 arrays; the header then keeps its WCS keywords).

    Returns
    -------
    `~astropy.nddata.CCDData`
        Unit from BUNIT (electron; dimensionless when BUNIT is empty, as for a master flat),
        StdDevUncertainty, bool mask.

    Raises
    ------
    InputError
        If the file cannot be read as a product.
    """
    path = Path(path)
    return _read_mapped(path) if memmap else _read_whole(path)


def _read_whole(path):
    try:
        with fits.open(path, memmap=True) as hdul:  # shapes from the headers, nothing read
            _check_shapes(path, _HeaderShape(hdul[0].header),
                          _HeaderShape(hdul["UNCERT"].header) if "UNCERT" in hdul else None,
                          _HeaderShape(hdul["MASK"].header) if "MASK" in hdul else None)
        unit = None if str(fits.getheader(path).get("BUNIT", "")).strip() else \
            u.dimensionless_unscaled
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            ccd = CCDData.read(path, hdu_uncertainty="UNCERT", hdu_mask="MASK", format="fits",
                               unit=unit)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a calibrated product ({err}); give a file written by "
                         "'glue-zeropoint calibrate'") from err
    if ccd.uncertainty is not None and not isinstance(ccd.uncertainty, StdDevUncertainty):
        ccd.uncertainty = StdDevUncertainty(ccd.uncertainty.array)
    if ccd.mask is not None:
        ccd.mask = np.asarray(ccd.mask).astype(bool)
    return ccd


def _read_mapped(path):
    """A product whose image, uncertainty and mask stay memory-mapped (nothing copied).

    ``CCDData.read`` copies the uncertainty (``StdDevUncertainty(copy=True)``), which for a
    night of big lights is what the memory map is meant to avoid.
    """
    from .lights import light_wcs

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            # the arrays keep their memory maps after the file is closed (astropy), so the
            # file handle is not held for the life of the night
            with fits.open(path, memmap=True, mode="readonly") as hdul:
                header = hdul[0].header.copy()
                data = hdul[0].data
                sigma = hdul["UNCERT"].data if "UNCERT" in hdul else None
                mask = hdul["MASK"].data if "MASK" in hdul else None
                if mask is not None:  # 0/1 bytes: a bool view, nothing read until used
                    mask = mask.view(bool) if mask.dtype.itemsize == 1 and \
                        int(hdul["MASK"].header.get("BZERO", 0)) == 0 else mask.astype(bool)
        _check_shapes(path, data, sigma, mask)
        unit = str(header.get("BUNIT", "")).strip() or u.dimensionless_unscaled
        return CCDData(data, unit=unit, meta=header, mask=mask,
                       wcs=light_wcs(header, path.name),
                       uncertainty=None if sigma is None else StdDevUncertainty(sigma,
                                                                                copy=False))
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a calibrated product ({err}); give a file written by "
                         "'glue-zeropoint calibrate'") from err


class _HeaderShape:
    """The array shape a FITS header describes (NAXISn), for :func:`_check_shapes`."""

    def __init__(self, header):
        n = int(header.get("NAXIS", 0))
        self.shape = tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(n, 0, -1))
        self.ndim = n


def _check_shapes(path, data, sigma, mask):
    """An image with UNCERT and MASK of its own shape, else InputError naming the file."""
    if data is None or _shape(data) is None or len(_shape(data)) != 2:
        raise InputError(f"{path}: no 2-D image in the primary HDU; not a calibrated product "
                         "of 'glue-zeropoint calibrate'")
    for name, part in (("UNCERT", sigma), ("MASK", mask)):
        if part is not None and _shape(part) != _shape(data):
            raise InputError(f"{path}: the {name} extension is {_shape(part)[::-1]} pixels "
                             f"but the image is {_shape(data)[::-1]}; not a calibrated "
                             "product of 'glue-zeropoint calibrate'")


def _shape(obj):
    shape = getattr(obj, "shape", None)
    return None if shape is None else tuple(shape)
