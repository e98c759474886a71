"""``glue-zeropoint solve IMAGE --catalog SPEC --out FILE``: plate-solve an image.

Detects the stars, matches them to the reference catalog by their patterns (rotation, mirror
and scale within a range unknown), fits a TAN WCS with SIP terms when the residuals call for
them, writes the WCS as a header-only FITS file (like astrometry.net's ``.wcs``, usable with
``measure --wcs FILE``) and prints its quality. The rough centre and pixel scale come from the
image header (WCS, RA/DEC, OBJCTRA/OBJCTDEC, PIXSCALE, FOCALLEN + XPIXSZ) unless given.

Exit code 2 with a one-line reason when the input is unusable or no solution is found.
"""

import logging
import math
import re
import sys
from pathlib import Path

from ..exceptions import InputError

log = logging.getLogger(__name__)


def add_parser(sub):
    parser = sub.add_parser(
        "solve", help="plate-solve an image against a reference catalog",
        description="Find the WCS of IMAGE by matching its stars to a reference catalog, and "
                    "write it (FITS header, SIP included) to FILE.")
    parser.add_argument("image", metavar="IMAGE", help="FITS image")
    parser.add_argument("--catalog", required=True, metavar="SPEC",
                        help="vizier:<catalog id>, simbad, default (needs --band) or a local "
                             "table file (ECSV, CSV, VOTable, FITS)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output FITS header file with the WCS (e.g. image.wcs)")
    parser.add_argument("--center", nargs=2, metavar=("RA", "DEC"), default=None,
                        help="rough image centre: degrees, or sexagesimal (RA in hours), "
                             "e.g. --center 16:41:41.6 +36:27:41")
    parser.add_argument("--scale", type=float, default=None, metavar="ARCSEC_PER_PIX",
                        help="approximate pixel scale (default: from the header)")
    parser.add_argument("--scale-tolerance", type=float, default=25.0, metavar="PERCENT",
                        help="the true scale is within this percentage of --scale (default 25)")
    parser.add_argument("--flip", choices=("auto", "yes", "no"), default="auto",
                        help="is the image mirrored? (default: try both)")
    parser.add_argument("--sip-degree", type=int, default=None, metavar="N",
                        help="distortion polynomial degree (0: plain TAN; default: chosen "
                             "from the residuals)")
    parser.add_argument("--band", default=None,
                        help="catalog band used to rank stars by brightness (e.g. V)")
    parser.add_argument("--radius", type=float, default=None, metavar="ARCMIN",
                        help="catalog cone radius (default: twice the field's half-diagonal, "
                             "at least 20 arcmin)")
    parser.add_argument("--offline", action="store_true",
                        help="use only the catalog cache and local files, never the network")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds to wait for a catalog service before giving up (default "
                             "%(default)s); a service that fails gives exit code 1")
    # a southern declination in sexagesimal ('-12:30:00') is a value, not an option
    parser._negative_number_matcher = re.compile(r"^-\d[\d:.hdms]*$")
    parser.set_defaults(func=run)
    return parser


_NUMBER = re.compile(r"^[+-]?\d+(\.\d*)?$")


def parse_center(ra_text, dec_text):
    """SkyCoord from two strings: degrees if both are numbers, else sexagesimal (RA hours)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    try:
        if _NUMBER.match(ra_text.strip()) and _NUMBER.match(dec_text.strip()):
            c = SkyCoord(float(ra_text) * u.deg, float(dec_text) * u.deg, frame="icrs")
        else:
            c = SkyCoord(ra_text, dec_text, unit=(u.hourangle, u.deg), frame="icrs")
    except ValueError as err:
        raise InputError(f"--center {ra_text} {dec_text}: not a sky position ({err}); give "
                         "degrees (250.42 36.46) or sexagesimal (16:41:41.6 +36:27:41)") from err
    return c


def _load_catalog(spec, center, radius_deg, band, offline, timeout=None):
    from astropy import units as u

    from .. import catalogs

    if Path(spec).is_file():
        return catalogs.read_catalog(spec)
    if center is None:
        raise InputError(f"--catalog {spec}: a catalog query needs the field centre; the "
                         "header has no WCS, RA/DEC or OBJCTRA/OBJCTDEC: give --center RA DEC")
    return catalogs.get_catalog(spec, center, radius_deg * u.deg, band=band, offline=offline,
                                timeout=timeout)


def run(args):
    from .. import astrometry
    from ..astrometry.header import read_image, rough_pointing
    from ..progress import TerminalProgress

    image = Path(args.image)
    if not image.is_file():
        raise InputError(f"{image}: no such image file")
    out = Path(args.out)
    if not out.parent.exists():
        raise InputError(f"{out}: the folder {out.parent} does not exist")
    data, header = read_image(image)
    center = parse_center(*args.center) if args.center else None
    h_center, h_scale, how = rough_pointing(header)
    scale = args.scale if args.scale is not None else h_scale
    if args.scale is not None and not args.scale > 0:
        raise InputError(f"--scale {args.scale}: must be a positive number of arcsec per pixel")
    tol = args.scale_tolerance / 100.0
    if not 0 <= tol < 0.9:
        raise InputError(f"--scale-tolerance {args.scale_tolerance}: give a percentage "
                         "between 0 and 90")
    query_center = center or h_center
    ny, nx = data.shape
    if args.radius is not None:
        radius = args.radius / 60.0
    elif scale is not None:
        radius = max(2 * 0.5 * math.hypot(nx, ny) * scale * (1 + tol) / 3600.0, 20 / 60.0)
    else:
        radius = 1.0
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise InputError(f"--timeout {args.timeout}: give the seconds to wait for a catalog "
                         "service as a positive number")
    catalog = _load_catalog(args.catalog, query_center, radius, args.band, args.offline,
                            args.timeout)
    from astropy.nddata import CCDData

    ccd = CCDData(data, unit="adu", meta=header)
    flip = {"auto": None, "yes": True, "no": False}[args.flip]
    with TerminalProgress("solve") as bar:  # no solution: AstrometryError -> exit 2
        sol = astrometry.solve(ccd, catalog, center=center, scale=scale,
                               scale_range=(1.0 / (1.0 + tol), 1.0 + tol), flip=flip,
                               sip_degree=args.sip_degree, band=args.band, progress=bar,
                               name=image.name)
    astrometry.write_wcs(out, sol.wcs, header=sol.header())
    q = sol.quality
    print(f"{image.name}: {sol}")
    print(f"wcs: {out}")
    print(f"rms: {q.rms_arcsec:.3f} arcsec = {q.rms_pix:.3f} pixel over {q.n_used} stars "
          f"(matched {q.n_matched}, detected {q.n_sources}); log10 false alarm "
          f"{sol.log10_false_alarm:.0f}; {sol.elapsed:.1f} s")
    if how and center is None:
        log.info("rough pointing from the header: %s", how)
    sys.stdout.flush()
    return 0
