"""``glue-zeropoint catalog IMAGE --catalog SPEC --out FILE``: save a field's reference catalog.

The cone covers the image (from its WCS, plus a margin) unless ``--radius`` is given. The file
(ECSV recommended; CSV, VOTable and FITS by suffix) is the normalised table, ready for
``measure --catalog FILE`` offline. Every answer is also kept in the query cache.
"""

import logging
import sys
import warnings
from pathlib import Path

from ..exceptions import CatalogError, CatalogServiceError, InputError, OutputError
from ..io import human_age

log = logging.getLogger(__name__)


def add_parser(sub):
    parser = sub.add_parser(
        "catalog", help="save the reference catalog of an image's field",
        description="Query a reference catalog (VizieR, SIMBAD, or the default for a band) for "
                    "the field of IMAGE and save it to FILE for offline use.")
    parser.add_argument("image", metavar="IMAGE", help="FITS image with a celestial WCS")
    parser.add_argument("--catalog", required=True, metavar="SPEC",
                        help="vizier:<catalog id> (e.g. vizier:II/336/apass9), simbad, default "
                             "(needs --band) or a local table file")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output table (.ecsv recommended, .csv, .vot, .fits)")
    parser.add_argument("--band", default=None, help="band the catalog must have (e.g. V, r)")
    parser.add_argument("--radius", type=float, default=None, metavar="ARCMIN",
                        help="cone radius in arcmin (default: the image plus a margin)")
    parser.add_argument("--wcs", default=None, metavar="FILE",
                        help="take the WCS from another FITS header (e.g. a plate solution)")
    parser.add_argument("--offline", action="store_true",
                        help="use only the cache and local files, never the network")
    parser.add_argument("--refresh", action="store_true",
                        help="query even if a fresh cached answer exists")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds per request before giving up (default 30)")
    parser.set_defaults(func=run)
    return parser


def _image_wcs_and_shape(image, wcs_file=None):
    """(WCS, shape) of the first image HDU; the WCS from ``wcs_file`` when given."""
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    path = Path(image)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) >= 2), None)
            if hdu is None:
                raise InputError(f"{path}: no 2-D image in the file")
            header = hdu.header.copy()
            shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"{path}: cannot be read as a FITS image ({err})") from err
    source = path
    if wcs_file is not None:
        source = Path(wcs_file)
        try:
            header = fits.getheader(source)
        except (OSError, ValueError) as err:
            raise InputError(f"{source}: cannot read the WCS header ({err})") from err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception as err:
            raise InputError(f"{source}: the WCS cannot be read ({err}); pass --wcs FILE "
                             f"with a plate solution") from err
    if not wcs.has_celestial:
        raise InputError(f"{source}: no celestial WCS (RA/Dec) in the header; pass --wcs FILE "
                         f"with a plate solution (e.g. from astrometry.net)")
    return wcs, shape


def run(args):
    from astropy import units as u

    from ..catalogs import field_of, get_catalog, parse_spec, write_catalog
    from ..catalogs.files import _format_of

    out = Path(args.out)
    try:
        _format_of(out)
    except CatalogError as err:
        raise InputError(str(err)) from err
    if not out.parent.exists():
        raise InputError(f"{out.parent}: the output folder does not exist")
    if args.radius is not None and not args.radius > 0:
        raise InputError(f"--radius must be a positive number of arcmin, got {args.radius}")
    try:
        kind, _ = parse_spec(args.catalog)
    except CatalogError as err:
        raise InputError(str(err)) from err
    if kind == "default" and not args.band:
        raise InputError("--catalog default chooses the catalog by band: add --band (e.g. V)")
    wcs, shape = _image_wcs_and_shape(args.image, args.wcs)
    try:
        center, radius = field_of(wcs, shape)
    except CatalogError as err:
        raise InputError(f"{args.image}: {err}") from err
    if args.radius is not None:
        radius = args.radius * u.arcmin
    from ..progress import TerminalProgress

    with TerminalProgress("catalog") as progress:
        try:
            table = get_catalog(args.catalog, center, radius, band=args.band,
                                offline=args.offline, timeout=args.timeout,
                                progress=progress, refresh=args.refresh)
        except CatalogServiceError:
            raise
        except CatalogError as err:
            if kind == "file" or "has no band" in str(err):
                raise InputError(str(err)) from err
            raise
    try:
        write_catalog(table, out)
    except OutputError:  # a full disk...: named, exit 1
        raise
    except OSError as err:
        raise InputError(f"{out}: cannot be written ({err.strerror or err}); choose another "
                         f"--out") from err
    meta = table.meta
    origin = "cache, " + human_age(meta.get("cache_age_s", 0)) + " old" if meta.get("from_cache") \
        else meta.get("service", "")
    flags = " (TRUNCATED at the row limit)" if meta.get("truncated") else ""
    print(f"{out}: {len(table)} stars from {meta.get('catalog')} "
          f"[{', '.join(meta.get('bands', [])) or 'no bands'}] ({origin}){flags}",
          file=sys.stdout)
    return 0
