"""Open calibrated products and a catalog in Glue with the zero-point viewer.

Usage::

    python examples/open_in_glue.py PRODUCTS_DIR CATALOG_FILE [--band V] [--color B-V]

``PRODUCTS_DIR`` holds ``*_cal.fits`` files written by ``glue-zeropoint calibrate``. Glue opens
with the images, the stars measured on the first image in the band, the catalog linked by
RA/Dec, a scatter of catalog minus instrumental magnitude, the stars table and the zero-point
viewer. Brush stars in any view to leave them out of the fit; File > Save Session keeps it all.
"""

import argparse
from pathlib import Path

from glue_zeropoint.catalogs import read_catalog
from glue_zeropoint.qt.app import build_app


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("products", type=Path)
    parser.add_argument("catalog", type=Path)
    parser.add_argument("--band", default="V")
    parser.add_argument("--color", default="B-V")
    args = parser.parse_args()
    images = sorted(args.products.glob("*_cal.fits"))
    if not images:
        parser.error(f"{args.products}: no *_cal.fits products; run glue-zeropoint calibrate first")
    app = build_app(images, read_catalog(args.catalog), args.band, color=args.color)
    app.start(maximized=False)


if __name__ == "__main__":
    main()
