"""Per-star scatter against the truth: ours beside a plain photutils reduction, on the same
simulated frames (issue 10: "a per-star scatter no worse than a plain photutils
reduction's").

    python tests/benchmarks/bench_star_scatter.py [--seeds 10] [--families a,b] [--jobs 2]
                                                  [--markdown FILE]

Every family of ``bench_injection_families.py`` (its simulator: pixel-integrated PSF families,
exact total fluxes, raw ADU frames with a pedestal, hot pixels and cosmic rays) and seed is
reduced twice, on the same pixels:

- **ours**: :func:`glue_zeropoint.photometry.find_stars` then
  :func:`glue_zeropoint.photometry.measure_stars` (the public API, its defaults), ``mag_inst``
  and its ``flags``;
- **photutils**: ``bench_real_frames.photutils_reduction`` (``Background2D``, ``fit_fwhm`` on
  bright isolated stars, ``DAOStarFinder`` at 5 sigma, a 1.75 FWHM aperture, a 3-sigma-clipped
  median annulus sky), after ccdproc's L.A.Cosmic on the raw frames as the field does.

Both are matched to the true positions of the field's stars within 1 px (nearest); the truth
is ``mag_V + dmag`` of the stars that are not variable, not blended and not saturated; for
each chain ``d = m_true - m_inst``, and per frame the robust scatter (MAD-std) of ``d -
median(d)`` over the stars of the brightest 4 magnitudes of the common ones:

- ``common``: the stars both chains measured (the same stars: the measurement's own noise);
- ``ours clean``: our unflagged stars of that range; ``phot all``: all of photutils' there
  (each chain's own selection).

Printed per family: medians over the seeds, and the fraction of seeds where ours is no worse
than photutils on the common stars (within 5%).
"""

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np
from astropy.stats import mad_std
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).parent))
from bench_injection_families import (  # noqa: E402
    family_arguments,
    family_names,
    run_families,
    simulate,
    with_failures,
)
from bench_real_frames import photutils_reduction  # noqa: E402

RANGE_MAG = 4.0


def _truth(truth):
    s = truth["field"].stars
    m = np.asarray(s["mag_V"], float) + np.nan_to_num(np.asarray(s["dmag"], float))
    ok = ~np.asarray(s["variable"], bool) & (np.asarray(s["blend_of"]) < 0)
    if "saturated" in truth:
        ok &= ~np.asarray(truth["saturated"], bool)
    return np.asarray(s["x"], float)[ok], np.asarray(s["y"], float)[ok], m[ok]


def _match(tx, ty, x, y, tol=1.0):
    """Index into (x, y) of each true star's nearest detection within ``tol``, else -1."""
    if not len(x):
        return np.full(tx.size, -1)
    d, j = cKDTree(np.c_[x, y]).query(np.c_[tx, ty])
    return np.where(d < tol, j, -1)


def _scatter(d):
    d = d[np.isfinite(d)]
    return float(mad_std(d - np.median(d))) if d.size >= 5 else math.nan


def run_one(name, seed):
    """(common ours, common phot, ours clean, phot all, n common) for one frame."""
    from glue_zeropoint.photometry import find_stars, measure_stars

    ccd, truth, _cat = simulate(name, seed)
    raw = str(ccd.unit) == "adu"
    tx, ty, tm = _truth(truth)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stars = measure_stars(ccd, find_stars(ccd))
            gain = float(stars.meta.get("gain") or 1.0)
            phot = photutils_reduction(ccd, gain, 30.0, clean_cosmics=raw)
    except Exception as err:  # noqa: BLE001 - a benchmark counts failures
        return (math.nan,) * 4 + (0, f"{type(err).__name__}: {err}")
    jo = _match(tx, ty, np.asarray(stars["x"], float), np.asarray(stars["y"], float))
    jp = _match(tx, ty, phot["x"], phot["y"])
    mo = np.where(jo >= 0, np.asarray(stars["mag_inst"], float)[np.maximum(jo, 0)], np.nan)
    mp = np.where(jp >= 0, np.asarray(phot["mag"], float)[np.maximum(jp, 0)] if len(jp) and
                  len(phot["mag"]) else np.nan, np.nan)
    clean = np.where(jo >= 0, np.asarray(stars["flags"])[np.maximum(jo, 0)] == 0, False)
    both = np.isfinite(mo) & np.isfinite(mp)
    if both.sum() < 5:
        return (math.nan,) * 4 + (int(both.sum()), "fewer than 5 common stars")
    bright = tm <= np.min(tm[both]) + RANGE_MAG
    common = both & bright
    return (_scatter((tm - mo)[common]), _scatter((tm - mp)[common]),
            _scatter((tm - mo)[clean & bright & np.isfinite(mo)]),
            _scatter((tm - mp)[bright & np.isfinite(mp)]), int(common.sum()), "")


def summarise(name, rows):
    a = np.array([r[:5] for r in rows], float)
    ok = np.isfinite(a[:, 0]) & np.isfinite(a[:, 1])
    return {"family": name, "seeds": len(rows), "fail": int((~ok).sum()),
            "common_ours": np.nanmedian(a[ok, 0]) if ok.any() else math.nan,
            "common_phot": np.nanmedian(a[ok, 1]) if ok.any() else math.nan,
            "clean_ours": np.nanmedian(a[:, 2]), "all_phot": np.nanmedian(a[:, 3]),
            "n_common": np.nanmedian(a[:, 4]),
            "no_worse": float(np.mean(a[ok, 0] <= 1.05 * a[ok, 1])) if ok.any() else math.nan,
            "errors": sorted({r[5][:90] for r in rows if r[5]})}


def table(results):
    lines = ["| family | seeds | fail | common stars | scatter ours (common) | scatter "
             "photutils (common) | ours no worse (seeds) | ours, unflagged | photutils, all |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in results:
        lines.append(f"| {s['family']} | {s['seeds']} | {s['fail']} | {s['n_common']:.0f} | "
                     f"{s['common_ours']:.4f} | {s['common_phot']:.4f} | {s['no_worse']:.2f} | "
                     f"{s['clean_ours']:.4f} | {s['all_phot']:.4f} |")
    return with_failures(lines, results)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    family_arguments(p, 10)
    args = p.parse_args(argv)
    names, seeds = family_names(p, args)
    return run_families(
        names, seeds, run_one, summarise, table, jobs=args.jobs, markdown=args.markdown,
        line=lambda s: f"ours {s['common_ours']:.4f} photutils {s['common_phot']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
