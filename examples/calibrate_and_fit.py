"""Calibrate a raw night and fit the zero point of each light frame, from Python.

Usage::

    python examples/calibrate_and_fit.py RAW_DIR CATALOG_FILE [--band V] [--color B-V]
    python examples/calibrate_and_fit.py            # makes a small simulated night first

The same steps as ``glue-zeropoint calibrate`` and ``glue-zeropoint measure``, as plain
function calls: :func:`glue_zeropoint.calibration.calibrate_night`,
:func:`glue_zeropoint.catalogs.read_catalog` and :func:`glue_zeropoint.zeropoint.measure_image`.
"""

import argparse
import tempfile
from pathlib import Path

from glue_zeropoint.calibration import calibrate_night, read_product
from glue_zeropoint.catalogs import read_catalog
from glue_zeropoint.exceptions import ZeropointError
from glue_zeropoint.zeropoint import measure_image


def simulated_night(folder):
    """A small MaxIm-style night (V and B lights) and its APASS-like catalog file."""
    from glue_zeropoint.simulate import reference_catalog, simulate_night

    truth = simulate_night(folder / "raw", shape=(512, 512), seed=3,
                           lights=(("V", 30.0, 1), ("B", 60.0, 1)))
    catalog = folder / "catalog.ecsv"
    reference_catalog(truth.field, seed=3).write(catalog, format="ascii.ecsv")
    print(f"simulated night in {folder} (true V zero point {truth.filters['V'].zp:.3f})")
    return folder / "raw", catalog


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw_dir", nargs="?", type=Path)
    parser.add_argument("catalog", nargs="?", type=Path)
    parser.add_argument("--band", default="V")
    parser.add_argument("--color", default="B-V")
    parser.add_argument("--out", type=Path, default=None, help="where products go")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zp-example-"))
    raw, catalog_path = ((args.raw_dir, args.catalog) if args.raw_dir and args.catalog
                         else simulated_night(work))
    out = args.out or work / "calibrated"
    night = calibrate_night(raw, out)
    gain = night.report["gain"]
    print(f"calibrated {len(night.lights)} light(s) into {out}; gain {gain['value']:.3f} e-/ADU "
          f"({gain['source']})")
    catalog = read_catalog(catalog_path)
    for path in sorted(Path(out).glob("*_cal.fits")):
        ccd = read_product(path)
        filt = str(ccd.meta.get("FILTER", ""))
        band = filt if f"mag_{filt}" in catalog.colnames else args.band  # B light -> B band
        try:
            result = measure_image(ccd, catalog, band, color=args.color)
        except ZeropointError as err:
            print(f"{path.name}: {err}")
            continue
        zp = result.zeropoint
        print(f"{path.name}: ZP({zp.band}) = {zp.zp:.3f} +/- {zp.zp_err:.3f} "
              f"(total {zp.zp_err_total:.3f}), scatter {zp.scatter:.3f}, "
              f"{zp.n_used}/{zp.n_matched} stars, sky {zp.sky_sb:.2f} mag/arcsec^2")


if __name__ == "__main__":
    main()
