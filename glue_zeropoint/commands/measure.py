"""``glue-zeropoint measure IMAGE --catalog SPEC --band B [...]``: the zero point of one image.

Measures the stars of IMAGE (a calibrated product ``<stem>_cal.fits`` with its ``UNCERT`` and
``MASK`` extensions, or a plain FITS image: then the uncertainty is modelled from the gain,
read noise and sky), matches them to the reference catalog, fits the zero point (with a colour
term when ``--color`` is given) and the sky surface brightness. Writes to ``--out``,
atomically: ``zeropoint.json`` (docs/architecture.md section 4 keys plus the WCS source and quality),
``stars.ecsv`` (every measured star with its catalog match and fit residual),
``zeropoint.png`` (unless ``--no-plot``) and, when the WCS was solved here, ``<stem>.wcs`` (the
solution as a header-only FITS file, usable with ``--wcs`` next time).

Catalog (``--catalog SPEC``): ``vizier:<catalog id>`` (e.g. ``vizier:II/336/apass9``),
``simbad`` (SIMBAD's B/V/R/I fluxes), ``default`` (chosen by ``--band``) or a local table file
(ECSV/CSV/VOTable/FITS, magnitude columns found by band). Queries go through
:func:`glue_zeropoint.catalogs.get_catalog`: one cone per field, cached on disk, the cache used
when the service fails; ``--offline`` uses only the cache and local files.

WCS: the image header's WCS is used as is; ``--wcs FILE`` takes it from another FITS header
(e.g. a plate solver's ``.wcs`` solution; its image size must match), read by
:func:`glue_zeropoint.astrometry.wcs_from_header`. Either way its quality is measured against
the catalog (rms of the matched stars in arcsec and pixels, ``wcs_rms_arcsec``/``wcs_rms_pix``/
``wcs_n_matched`` in ``zeropoint.json`` and on stdout); an rms over 2 pixels is reported as a
WCS that looks off (the zero point may then rest on chance matches: use ``--solve always``). An
image without a WCS is plate-solved first (:func:`glue_zeropoint.astrometry.solve`) from a
rough centre and pixel scale: ``--center RA DEC`` / ``--scale ARCSEC_PER_PIX``, else the
header's RA/DEC or OBJCTRA/OBJCTDEC and PIXSCALE/SECPIX or FOCALLEN with XPIXSZ/PIXSIZE1; the
catalog is queried around that centre. ``--solve always`` solves even an image with a WCS (a
mount's rough WCS then gives the centre); ``--solve never`` refuses to solve. ``wcs_source``
in ``zeropoint.json`` says ``header``, ``file`` or ``solved``; a solved WCS also gives
``wcs_solution`` (centre, scale, rotation, mirrored, false-alarm probability, where the hints
came from).

A colour camera's frame (a Bayer pattern in its header) is measured in one colour channel
(``--cfa G`` by default: each 2x2 cell one pixel, :mod:`glue_zeropoint.calibration.cfa`); that
channel image is written to ``--out`` as ``<stem>_<channel>.fits``, and ``stars.ecsv`` and
``stars.reg`` are in its pixels. ``--cfa none`` measures the mosaic as one grey image.

Exit code 0 on success; 2 with a one-line reason for input that cannot give a zero point: no
WCS and no pointing to solve from (pass ``--center``/``--scale`` or ``--wcs``), no
astrometric solution, no stars, a catalog without the band, no match, a service that failed
with nothing cached...
"""

import logging
import math
import re
import warnings
from pathlib import Path

import numpy as np

from ..exceptions import InputError, InputWarning, ZeropointError
from ..io import fits_stem

__all__ = ["add_parser", "run", "read_image"]

log = logging.getLogger(__name__)


def add_parser(sub):
    p = sub.add_parser(
        "measure", help="measure stars, match a catalog, fit the zero point",
        description="Measure the stars of IMAGE, match them to a reference catalog and fit the "
                    "photometric zero point (with a colour term when --color is given) and the "
                    "sky surface brightness. Writes zeropoint.json, stars.ecsv and "
                    "zeropoint.png to --out. The image's WCS (or --wcs FILE) is used as is and "
                    "its quality reported; an image without a WCS is plate-solved against the "
                    "catalog first, from --center/--scale or the header's RA/DEC (OBJCTRA/"
                    "OBJCTDEC) and PIXSCALE (or FOCALLEN and XPIXSZ), and the solution is also "
                    "written to --out as <image stem>.wcs. zeropoint.json adds wcs_source "
                    "(header, file or solved), wcs_rms_arcsec, wcs_rms_pix and wcs_n_matched "
                    "to the zero-point keys; a WCS whose stars match the catalog with an rms "
                    "over 2 pixels is reported as off. Exit code 2 with a one-line reason "
                    "when the input cannot give a zero point.")
    p.add_argument("image", help="calibrated product (<stem>_cal.fits) or a plain FITS image")
    p.add_argument("--catalog", required=True, metavar="SPEC",
                   help="vizier:<catalog id> (e.g. vizier:II/336/apass9), simbad, default (by "
                        "--band), or a local table file (ECSV/CSV/VOTable/FITS)")
    p.add_argument("--band", required=True, help="catalog band the image is tied to (e.g. V)")
    p.add_argument("--color", help="colour for the colour term, e.g. B-V")
    p.add_argument("--color-ref", type=float, default=None, metavar="VALUE",
                   help="colour at which the zero point is quoted (with --color; default: "
                        "the candidate stars' 1/error^2-weighted mean colour)")
    p.add_argument("--wcs", metavar="FILE",
                   help="FITS file whose header holds the WCS (e.g. a plate solver's .wcs "
                        "solution); it must be for this image's size")
    p.add_argument("--center", nargs=2, metavar=("RA", "DEC"), default=None,
                   help="rough image centre for solving an image without a WCS: degrees, or "
                        "sexagesimal (RA in hours), e.g. --center 16:41:41.6 +36:27:41 "
                        "(default: header RA/DEC or OBJCTRA/OBJCTDEC)")
    p.add_argument("--scale", type=float, default=None, metavar="ARCSEC_PER_PIX",
                   help="approximate pixel scale for solving (default: header PIXSCALE/SECPIX, "
                        "or FOCALLEN with XPIXSZ/PIXSIZE1; without any every scale is tried)")
    p.add_argument("--solve", choices=("auto", "always", "never"), default="auto",
                   help="plate-solve the image: auto = only when it has no WCS (default), "
                        "always = also when it has one (e.g. a rough WCS from the mount), "
                        "never = an image without a WCS is an error")
    p.add_argument("--positions", metavar="FILE",
                   help="measure these stars instead of detecting them: a ds9 region file "
                        "(circles/points, image or sky coordinates) or a table (ECSV/CSV) with "
                        "x, y (0-based pixels) or ra, dec (degrees) columns; positions are "
                        "recentred")
    p.add_argument("--gain", type=float, help="e-/ADU for a plain image (default: header)")
    p.add_argument("--read-noise", type=float, help="read noise in e- (default: header)")
    p.add_argument("--exptime", type=float, help="exposure time in s (default: EXPTIME)")
    p.add_argument("--saturation", type=float, help="saturation level in image units")
    p.add_argument("--fwhm", type=float, help="stellar FWHM in pixels (default: measured)")
    p.add_argument("--threshold", type=float, default=5.0,
                   help="detection signal-to-noise (default 5)")
    p.add_argument("--radius", type=float, help="match radius in arcsec (default: measured)")
    p.add_argument("--offline", action="store_true",
                   help="catalogs: use only the cache (from an earlier query of the same "
                        "field) and local files, never the network")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for a catalog service before giving up (default "
                        "%(default)s); a service that fails gives exit code 1")
    p.add_argument("--cfa", choices=("G", "R", "B", "none"), default="G",
                   help="colour camera (a Bayer pattern in the header, e.g. BAYERPAT=RGGB): "
                        "the colour channel measured, each 2x2 cell one pixel (G: the sum of "
                        "its two greens, close to V; default %(default)s), written to --out "
                        "as <image stem>_<channel>.fits, the image stars.ecsv and stars.reg "
                        "refer to (--scale, --fwhm, --saturation and --positions stay in the "
                        "mosaic's pixels); none measures the mosaic as one grey image")
    p.add_argument("--out", default=".", help="output folder (default: current folder)")
    p.add_argument("--no-plot", action="store_true", help="do not write zeropoint.png")
    # a southern declination in sexagesimal ('-12:30:00') is a value, not an option
    p._negative_number_matcher = re.compile(r"^-\d[\d:.hdms]*$")
    p.set_defaults(func=run)
    return p


def _image_hdu(hdul, path):
    for hdu in hdul:
        if hdu.data is not None and getattr(hdu.data, "ndim", 0) == 2 and hdu.is_image:
            return hdu
    from ..calibration.sections import no_image_reason

    raise InputError(f"{path}: {no_image_reason(hdul)}")


def read_image(path):
    """A FITS image as CCDData: our calibrated product (with UNCERT and MASK), or a plain image
    (unit from BUNIT, else ADU; no uncertainty). The WCS is the header's, read by
    :func:`glue_zeropoint.astrometry.wcs_from_header` (None when absent or unusable)."""
    from astropy import units as u
    from astropy.io import fits
    from astropy.nddata import CCDData, StdDevUncertainty

    from ..astrometry import wcs_from_header

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        hdul = fits.open(path, memmap=False)
    except OSError as err:
        raise InputError(f"{path}: cannot be read as FITS ({err})") from err
    with hdul:
        from ..calibration.manifest import check_product

        check_product(path, hdul[0].header)  # a product of ours only through its manifest
        hdu = _image_hdu(hdul, path)
        from ..calibration.sections import count_image_hdus

        n_images = count_image_hdus(hdul)
        if n_images > 1:  # a mosaic camera's CCDs, one extension each
            warnings.warn(f"{path.name}: {n_images} image extensions; only the first "
                          f"({hdu.name or 'PRIMARY'}) is measured: split the file into one "
                          "file per CCD to measure the others", InputWarning, stacklevel=2)
        header = hdu.header.copy()
        if hdu is not hdul[0]:  # EXPTIME, FILTER, DATE-OBS... of a multi-extension file
            from ..calibration.frames import _inherit_primary

            _inherit_primary(header, hdul[0].header)
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
    try:
        wcs = wcs_from_header(header, data.shape)
    except InputError as err:  # a broken header WCS is the same as none: solve or --wcs
        warnings.warn(f"{path.name}: the header WCS is unusable ({err}); it is ignored",
                      InputWarning, stacklevel=2)
        wcs = None
    from ..headers import ascii_text

    header["FILENAME"] = ascii_text(path.name)
    if unc is not None and unc.array.shape != data.shape:
        raise InputError(f"{path}: the UNCERT extension has shape {unc.array.shape}, the image "
                         f"{data.shape}")
    return CCDData(data, unit=unit, wcs=wcs, meta=header, uncertainty=unc, mask=mask)


def _fmt(value, spec):
    return format(value, spec) if value is not None and math.isfinite(value) else "?"


def _wcs_line(m, wcs_file):
    """One line on the WCS used: where from, and its rms against the catalog."""
    a = m.astrometry
    quality = (f"rms {_fmt(a.get('wcs_rms_arcsec'), '.3f')} arcsec = "
               f"{_fmt(a.get('wcs_rms_pix'), '.3f')} pixel over {a.get('wcs_n_used', 0)} "
               f"stars ({a.get('wcs_n_matched', 0)} matched to the catalog)")
    sol = m.solution
    if sol is not None:
        how = "; ".join(f"{k} from {v}" for k, v in sol.hints.items())
        return (f"WCS: solved ({how}): centre {sol.center.to_string('hmsdms', precision=1)}, "
                f"{sol.pixel_scale:.4f} arcsec/pixel, rotation {sol.rotation:.2f} deg"
                f"{' (mirrored)' if sol.flipped else ''}, false-alarm probability "
                f"10^{sol.log10_false_alarm:.0f}; {quality}")
    source = a.get("wcs_source", "header")
    where = f" {wcs_file}" if source == "file" and wcs_file else ""
    return f"WCS: {source}{where}; {quality}"



def _settings(args, *, center, wcs_source):
    """The :class:`~glue_zeropoint.zeropoint.MeasureSettings` of the command-line options."""
    from ..zeropoint.settings import (
        FitSettings,
        ImageSettings,
        MeasureSettings,
        PhotometrySettings,
        WCSSettings,
    )

    return MeasureSettings(
        image=ImageSettings(gain=args.gain, read_noise=args.read_noise,
                            saturation=args.saturation, exptime=args.exptime),
        photometry=PhotometrySettings(fwhm=args.fwhm, threshold=args.threshold),
        wcs=WCSSettings(solve_wcs=args.solve, center=center, scale=args.scale,
                        wcs_source=wcs_source),
        fit=FitSettings(color_ref=args.color_ref), radius=args.radius, offline=args.offline)

def run(args):
    from ..astrometry import wcs_from_header
    from ..io import ensure_output_dir
    from ..zeropoint import measure_image
    from .solve import parse_center

    image = Path(args.image)
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise InputError(f"--timeout {args.timeout}: give the seconds to wait for a catalog "
                         "service as a positive number")
    out = ensure_output_dir(args.out)
    ccd = read_image(image)
    source = "header"
    if args.wcs:
        try:
            ccd.wcs = wcs_from_header(args.wcs, ccd.shape, require=True)
        except InputError as err:
            raise InputError(f"--wcs {err}") from err
        source = "file"
    if not np.isfinite(ccd.data).any():
        raise InputError(f"{args.image}: every pixel is NaN or infinite")
    center = parse_center(*args.center) if args.center else None
    if args.scale is not None and not (math.isfinite(args.scale) and args.scale > 0):
        raise InputError(f"--scale {args.scale}: give the pixel scale as a positive number of "
                         "arcsec per pixel")
    if args.color_ref is not None and not args.color:
        raise InputError("--color-ref needs --color (the colour it is a value of)")
    # our errors reach cli.main: the input cannot give a zero point -> exit 2 with the reason;
    # a catalog service that failed (network, HTTP) -> exit 1
    positions = _read_positions(args.positions, ccd.wcs) if args.positions else None
    if positions is not None:
        _check_on_image(positions, ccd, args.positions)
    ccd, positions, channel_note, channel_name = _colour_channel(ccd, args, positions, image)
    from ..catalogs.config import timeout_override

    with timeout_override(args.timeout):
        m = measure_image(ccd, args.catalog, args.band, color=args.color,
                          positions=positions,
                          settings=_settings(args, center=center, wcs_source=source))
    extra = {"image": str(image)}
    if args.wcs:
        extra["wcs_file"] = str(Path(args.wcs))
    stem = Path(channel_name).stem if channel_name else fits_stem(image.name)
    solved_name = f"{stem}.wcs" if m.solution is not None else None
    if solved_name:
        extra["wcs_file"] = str(out / solved_name)
    if channel_name:
        extra["measured_image"] = str(out / channel_name)
        if m.solution is not None:
            ccd.wcs = m.solution.wcs  # the channel image carries the solution
    written, solved = _write_results(m, out, solved_name, plot=not args.no_plot, extra=extra,
                                     title=f"{image.name}: {args.band}",
                                     images={channel_name: ccd} if channel_name else None)
    z = m.zeropoint
    sky = (f", sky {z.sky_sb:.2f} ± {z.sky_sb_err:.3f} mag/arcsec^2"
           if z.sky_sb is not None and math.isfinite(z.sky_sb) else "")
    ct = (f", colour term {z.color_term:+.3f} ± {z.color_term_err:.3f} ({z.color})"
          if z.color_term is not None else "")
    print(f"{image.name}: ZP({z.band}) = {z.zp:.3f} ± {z.zp_err:.3f} "
          f"(total {z.zp_err_total:.3f}) mag, scatter {z.scatter:.3f}, "
          f"{z.n_used}/{z.n_matched} stars{ct}{sky}")
    print(_wcs_line(m, args.wcs))
    if channel_note:
        print(f"note: {channel_note}")
    for note in m.notes:
        print(f"note: {note}")
    print("wrote " + ", ".join(str(p) for p in written + solved))
    return 0


def _write_results(m, out, solved_name, *, plot, extra, title, images=None):
    """Write the results so that a failure leaves no complete-looking result behind.

    Under the folder's lock, an earlier ``zeropoint.json`` is removed first; every file is
    written into a hidden staging folder in ``out`` and moved into place, ``zeropoint.json``
    last. Whatever fails (a full disk, the plot), ``out`` then holds no ``zeropoint.json``.
    """
    import os
    import shutil
    import tempfile

    from ..astrometry import write_wcs
    from ..io import OutputLock, clean_tmp_files, write_error

    with OutputLock(out, "measure"):
        clean_tmp_files(out)
        for left in out.glob(".measure-*"):  # the staging folder of a killed run
            if left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
        final = out / "zeropoint.json"
        try:
            final.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            raise write_error(final, err) from err
        try:
            staging = Path(tempfile.mkdtemp(prefix=".measure-", dir=out))
        except OSError as err:
            raise write_error(out / ".measure-staging", err) from err
        try:
            solved = []
            if solved_name:
                solved = [write_wcs(staging / solved_name, m.solution.wcs,
                                    header=m.solution.header())]
            written = m.write(staging, plot=plot, extra=extra, title=title)
            if images:  # the images the results' pixel positions refer to
                from ..calibration.products import write_product

                written = written + [write_product(ccd, staging / name)
                                     for name, ccd in images.items()]
            items = [Path(p) for p in solved + written]
            items.sort(key=lambda p: p.name == "zeropoint.json")  # the result file last
            moved = {}
            for path in items:
                try:
                    os.replace(path, out / path.name)
                except OSError as err:
                    raise write_error(out / path.name, err) from err
                moved[path] = out / path.name
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [moved[Path(p)] for p in written], [moved[Path(p)] for p in solved]


def _colour_channel(ccd, args, positions, image):
    """A colour camera's image as its ``--cfa`` channel (each 2x2 cell one pixel,
    :mod:`glue_zeropoint.calibration.cfa`), with the options given in the mosaic's pixels
    and units (``--positions`` in pixels, ``--scale``, ``--fwhm``, ``--saturation``) moved
    onto it: ``(image, positions, note, channel file name)``; the note says what was done
    (``--cfa none`` included), and it and the name are None for a monochrome image."""
    from ..calibration.cfa import cfa_pattern
    from ..calibration.night import colour_channel

    if cfa_pattern(ccd.meta)[0] is None:
        return ccd, positions, None, None
    if args.saturation is not None and args.cfa != "none":
        ccd.meta["SATURATE"] = args.saturation  # the mosaic's level, masked cell by cell
    notes = []
    out = colour_channel(ccd, args.cfa, image.name, notes)
    if out is ccd:  # --cfa none
        return ccd, positions, notes[0] if notes else None, None
    ox, oy = float(out.meta["CFAOFFX"]), float(out.meta["CFAOFFY"])
    if positions is not None and hasattr(positions, "colnames"):
        positions = positions.copy()
        positions["x"] = (np.asarray(positions["x"], float) - ox) / 2.0
        positions["y"] = (np.asarray(positions["y"], float) - oy) / 2.0
    if args.scale is not None:
        args.scale = 2.0 * args.scale
    if args.fwhm is not None:
        args.fwhm = args.fwhm / 2.0
    if args.saturation is not None:
        args.saturation = out.meta.get("SATURATE")
    name = f"{fits_stem(image.name)}_{out.meta['CFACHAN']}.fits"
    note = (notes[0] if notes else "colour mosaic") + (
        f"; measured on {name} (written here): stars.ecsv and stars.reg are its pixels "
        f"(the mosaic's are 2 x + {ox:g}, 2 y + {oy:g})")
    return out, positions, note, name


def _check_on_image(positions, ccd, path):
    """Refuse ``--positions`` none of which falls on the image (say so, not a fit error)."""
    from astropy.coordinates import SkyCoord

    ny, nx = ccd.shape
    if isinstance(positions, SkyCoord):
        if ccd.wcs is None:
            return
        try:
            x, y = ccd.wcs.world_to_pixel(positions)
        except Exception:  # noqa: BLE001 - an unusable WCS is reported later
            return
        kind = "sky positions (through the image WCS)"
    else:
        x, y = np.asarray(positions["x"], float), np.asarray(positions["y"], float)
        kind = "pixel positions"
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    inside = np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x < nx - 0.5) & \
        (y >= -0.5) & (y < ny - 0.5)
    if not inside.any():
        raise InputError(f"--positions {path}: none of the {len(x)} {kind} falls on the image "
                         f"({nx} x {ny} pixels; x from {np.nanmin(x):.1f} to "
                         f"{np.nanmax(x):.1f}, y from {np.nanmin(y):.1f} to {np.nanmax(y):.1f}); "
                         "are they for another image, or 1-based/0-based mixed up?")
    if not inside.all():
        warnings.warn(f"--positions {path}: {int((~inside).sum())} of {len(x)} positions fall "
                      "off the image and are left out", InputWarning, stacklevel=2)


def _read_positions(path, wcs):
    """``--positions``: a ds9 region file, else a table with x/y or ra/dec columns."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from ..catalogs.files import read_table
    from ..photometry.regions_io import read_positions

    path = Path(path)
    if not path.is_file():
        raise InputError(f"--positions {path}: no such file")
    if path.suffix.lower() == ".reg":
        return read_positions(path, wcs=wcs)
    try:
        table = read_table(path)
    except ZeropointError as err:
        raise InputError(f"--positions {err}") from err
    names = {c.lower(): c for c in table.colnames}
    try:
        if "x" in names and "y" in names:
            t = table.__class__()
            t["x"] = np.asarray(table[names["x"]], float)
            t["y"] = np.asarray(table[names["y"]], float)
            return t
        if "ra" in names and "dec" in names:
            ra, dec = table[names["ra"]], table[names["dec"]]
            if ra.dtype.kind in "iuf":
                return SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg)
            return SkyCoord(np.asarray(ra).astype(str), np.asarray(dec).astype(str),
                            unit=(u.hourangle, u.deg))  # sexagesimal: RA in hours
    except (ValueError, TypeError) as err:
        raise InputError(f"--positions {path}: cannot read the positions ({err})") from err
    raise InputError(f"--positions {path}: needs x, y (pixels) or ra, dec (degrees) columns; "
                     f"has {', '.join(table.colnames)}")
