"""``glue-zeropoint measure IMAGE --catalog SPEC --band B [...]``: the zero point of one image.

Writes ``zeropoint.json`` (DESIGN.md section 4 keys), ``stars.ecsv`` (every measured star with
its catalog match and fit residual) and ``zeropoint.png`` to ``--out``, atomically. Exit code 2
with a one-line reason for input that cannot give a zero point.
"""

import logging
import math
import warnings
from pathlib import Path

import numpy as np

from ..exceptions import CatalogError, FitError, InputError, PhotometryError

__all__ = ["add_parser", "run", "read_image", "wcs_from_file"]

log = logging.getLogger(__name__)


def add_parser(sub):
    p = sub.add_parser(
        "measure", help="measure stars, match a catalog, fit the zero point",
        description="Measure the stars of IMAGE, match them to a reference catalog and fit the "
                    "photometric zero point (with a colour term when --color is given) and the "
                    "sky surface brightness. Writes zeropoint.json, stars.ecsv and "
                    "zeropoint.png to --out.")
    p.add_argument("image", help="calibrated product (<stem>_cal.fits) or a plain FITS image")
    p.add_argument("--catalog", required=True,
                   help="vizier:<catalog id>, simbad, default, or a local table file "
                        "(ECSV/CSV/VOTable/FITS)")
    p.add_argument("--band", required=True, help="catalog band the image is tied to (e.g. V)")
    p.add_argument("--color", help="colour for the colour term, e.g. B-V")
    p.add_argument("--wcs", help="FITS file whose header holds the WCS (e.g. a plate solution)")
    p.add_argument("--gain", type=float, help="e-/ADU for a plain image (default: header)")
    p.add_argument("--read-noise", type=float, help="read noise in e- (default: header)")
    p.add_argument("--exptime", type=float, help="exposure time in s (default: EXPTIME)")
    p.add_argument("--saturation", type=float, help="saturation level in image units")
    p.add_argument("--fwhm", type=float, help="stellar FWHM in pixels (default: measured)")
    p.add_argument("--threshold", type=float, default=5.0,
                   help="detection signal-to-noise (default 5)")
    p.add_argument("--radius", type=float, help="match radius in arcsec (default: measured)")
    p.add_argument("--offline", action="store_true", help="catalogs: cache and files only")
    p.add_argument("--out", default=".", help="output folder (default: current folder)")
    p.add_argument("--no-plot", action="store_true", help="do not write zeropoint.png")
    p.set_defaults(func=run)
    return p


def _image_hdu(hdul, path):
    for hdu in hdul:
        if hdu.data is not None and getattr(hdu.data, "ndim", 0) == 2 and hdu.is_image:
            return hdu
    raise InputError(f"{path}: no 2-D image in the file")


def read_image(path):
    """A FITS image as CCDData: our calibrated product (with UNCERT and MASK), or a plain image
    (unit from BUNIT, else ADU; no uncertainty)."""
    from astropy import units as u
    from astropy.io import fits
    from astropy.nddata import CCDData, StdDevUncertainty
    from astropy.wcs import WCS, FITSFixedWarning

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        hdul = fits.open(path, memmap=False)
    except OSError as err:
        raise InputError(f"{path}: cannot be read as FITS ({err})") from err
    with hdul:
        hdu = _image_hdu(hdul, path)
        header = hdu.header.copy()
        data = np.asarray(hdu.data, dtype=np.float64)
        names = [h.name.upper() for h in hdul]
        unc = mask = None
        if "UNCERT" in names:
            unc = StdDevUncertainty(np.asarray(hdul["UNCERT"].data, dtype=np.float64))
        if "MASK" in names:
            mask = np.asarray(hdul["MASK"].data).astype(bool)
    bunit = str(header.get("BUNIT", "")).strip()
    unit = u.adu
    if bunit:
        try:
            unit = u.Unit(bunit, parse_strict="silent")
            if isinstance(unit, u.UnrecognizedUnit):
                unit = u.adu
        except ValueError:
            unit = u.adu
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
            if not wcs.has_celestial:
                wcs = None
        except Exception:  # noqa: BLE001 - a broken WCS is the same as none here
            wcs = None
    header["FILENAME"] = path.name
    if unc is not None and unc.array.shape != data.shape:
        raise InputError(f"{path}: the UNCERT extension has shape {unc.array.shape}, the image "
                         f"{data.shape}")
    return CCDData(data, unit=unit, wcs=wcs, meta=header, uncertainty=unc, mask=mask)


def wcs_from_file(path, shape):
    """The celestial WCS in the header of ``path``, checked against the image ``shape``.

    The size is taken from ``NAXIS1``/``NAXIS2`` (when the file holds an image) or
    ``IMAGEW``/``IMAGEH`` (astrometry.net solution files).
    """
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    path = Path(path)
    if not path.is_file():
        raise InputError(f"--wcs {path}: no such file")
    try:
        header = fits.getheader(path)
    except OSError as err:
        raise InputError(f"--wcs {path}: cannot be read as FITS ({err})") from err
    ny, nx = shape
    size = None
    if header.get("NAXIS", 0) >= 2 and header.get("NAXIS1") and header.get("NAXIS2"):
        size = (int(header["NAXIS1"]), int(header["NAXIS2"]))
    elif header.get("IMAGEW") and header.get("IMAGEH"):
        size = (int(header["IMAGEW"]), int(header["IMAGEH"]))
    if size is not None and size != (nx, ny):
        raise InputError(f"--wcs {path}: the WCS is for a {size[0]}x{size[1]} image but the "
                         f"image is {nx}x{ny}; use the solution of this image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as err:  # noqa: BLE001
            raise InputError(f"--wcs {path}: the header has no usable WCS ({err})") from err
    if not wcs.has_celestial:
        raise InputError(f"--wcs {path}: the header has no celestial WCS (CTYPE RA---/DEC--)")
    if size is None:
        log.info("--wcs %s: no image size in the header; assuming it fits", path)
    return wcs.celestial if wcs.naxis > 2 else wcs


def run(args):
    from ..io import ensure_output_dir
    from ..zeropoint import measure_image

    out = ensure_output_dir(args.out)
    ccd = read_image(args.image)
    if args.wcs:
        ccd.wcs = wcs_from_file(args.wcs, ccd.shape)
    if not np.isfinite(ccd.data).any():
        raise InputError(f"{args.image}: every pixel is NaN or infinite")
    try:
        m = measure_image(ccd, args.catalog, args.band, color=args.color, gain=args.gain,
                          read_noise=args.read_noise, exptime=args.exptime,
                          saturation=args.saturation, fwhm=args.fwhm,
                          threshold=args.threshold, radius=args.radius, offline=args.offline)
    except (PhotometryError, CatalogError, FitError) as err:
        # the user's input cannot give a zero point: exit 2 with the one-line reason
        raise InputError(str(err)) from err
    written = m.write(out, plot=not args.no_plot, extra={"image": str(Path(args.image))},
                      title=f"{Path(args.image).name}: {args.band}")
    z = m.zeropoint
    sky = (f", sky {z.sky_sb:.2f} ± {z.sky_sb_err:.2f} mag/arcsec^2"
           if z.sky_sb is not None and math.isfinite(z.sky_sb) else "")
    ct = (f", colour term {z.color_term:+.3f} ± {z.color_term_err:.3f} ({z.color})"
          if z.color_term is not None else "")
    print(f"{Path(args.image).name}: ZP({z.band}) = {z.zp:.3f} ± {z.zp_err:.3f} "
          f"(total {z.zp_err_total:.3f}) mag, scatter {z.scatter:.3f}, "
          f"{z.n_used}/{z.n_matched} stars{ct}{sky}")
    for note in m.notes:
        print(f"note: {note}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
