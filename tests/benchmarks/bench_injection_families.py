"""Injection-recovery of the zero point across PSF families (issue 10, "Done when").

    python tests/benchmarks/bench_injection_families.py [--seeds 40] [--families a,b] [--jobs 1]
                                                        [--cli] [--markdown FILE]

For every family below, ``--seeds`` images are simulated (384 x 384, 120 stars V 10-18 plus
what the family adds, 30 s, ZP 21.5, sky 20 mag/arcsec^2) with the simulator's PSF families
(:mod:`glue_zeropoint.simulate.psf`: pixel-integrated, exact total flux, nothing shared with
the measurement), and the public pipeline measures them against a simulated catalog: the
calibrated-like families through :func:`glue_zeropoint.zeropoint.measure_image`, the ``raw*``
families (a raw ADU frame with a pedestal, hot pixels and cosmic rays, no GAIN keyword) as a
user would, through the command line ``glue-zeropoint measure FILE.fits --catalog
catalog.ecsv --band V`` (in-process ``cli.main``). ``--cli`` sends every family through the
command line.

Printed per family (a markdown table):

- ``cover``: fraction of seeds with ``|ZP - truth| < 3 zp_err_total`` (a failed run counts as
  not covered; ``fail`` says how many raised or exited non-zero);
- ``bias``: mean ``ZP - truth`` (mmag) and its standard error;
- ``pull``: mean and std of ``(ZP - truth) / zp_err_total``;
- ``err``: mean stated ``zp_err_total`` (mmag); ``scatter``: median per-star scatter (mag, the
  rms of the fit residuals as the pipeline reports it);
- ``fwhm``: median FWHM the pipeline measured over the true one (the family's FWHM: the
  geometric mean of the axes' for elliptical and trailed stars);
- ``sky``: median sky surface brightness minus the truth (mag/arcsec^2; flat skies only).

Raw frames in ADU: with no gain known the pipeline's zero point is in the units it assumed;
the truth is shifted by ``-2.5 log10(true gain / gain used)`` (see :func:`run_one`).

Target (issue 10): cover >= 0.95 and pull std 0.8-1.25 in every family.
"""

import argparse
import contextlib
import io
import json
import math
import re
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from glue_zeropoint.simulate import (
    FilterTruth,
    SkyModel,
    make_field,
    reference_catalog,
    simulate_image,
    simulate_raw_image,
)

SHAPE = (384, 384)
N_STARS = 120
FILTER = FilterTruth(band="V", zp=21.5, color_term=0.0, sky_sb=20.0)

#: name -> (field options, image options, catalog options, mode)
FAMILIES = {
    "gaussian_fwhm3": ({"psf": "gaussian", "fwhm": 3.0}, {}, {}, "image"),
    "gaussian_fwhm0.5": ({"psf": "gaussian", "fwhm": 0.5}, {}, {}, "image"),
    "gaussian_fwhm1": ({"psf": "gaussian", "fwhm": 1.0}, {}, {}, "image"),
    "moffat_b2_fwhm3": ({"psf": "moffat:beta=2", "fwhm": 3.0}, {}, {}, "image"),
    "moffat_b2_fwhm0.5": ({"psf": "moffat:beta=2", "fwhm": 0.5}, {}, {}, "image"),
    "moffat_b3_fwhm2.5": ({"psf": "moffat:beta=3", "fwhm": 2.5}, {}, {}, "image"),
    "moffat_b5_fwhm4": ({"psf": "moffat:beta=5", "fwhm": 4.0}, {}, {}, "image"),
    "moffat_b3_fwhm6": ({"psf": "moffat:beta=3", "fwhm": 6.0, "n_stars": 80}, {}, {}, "image"),
    "elliptical_e0.35": ({"psf": "moffat:beta=3,ellipticity=0.35,angle=35", "fwhm": 3.0},
                         {}, {}, "image"),
    "trailed_L6": ({"psf": "trailed:length=6,angle=20,core=gaussian", "fwhm": 2.5}, {}, {},
                   "image"),
    "aureole_4pct": ({"psf": "aureole:halo_fraction=0.04,halo_scale=8,halo_beta=2.5,"
                             "core=moffat(beta=3)", "fwhm": 3.0}, {}, {}, "image"),
    "messy_sky_blends_cat": ({"psf": "moffat:beta=2.5", "fwhm": 2.5, "blend_fraction": 0.1,
                              "variable_fraction": 0.05, "variable_amplitude": 0.3},
                             {"sky": SkyModel(gradient=0.3, patches=3, patch_amplitude=0.6)},
                             {"drop_fraction": 0.1, "spurious": 5, "flag_variables": 0.5},
                             "image"),
    "crowded_cluster": ({"psf": "moffat:beta=3", "fwhm": 3.0, "cluster_stars": 5000,
                         "cluster_radius": 20.0}, {}, {"faint_limit": 18.0}, "image"),
    "deep_field_fwhm1": ({"psf": "gaussian", "fwhm": 1.0, "n_stars": 956,
                          "mag_range": (10.0, 21.0)}, {}, {"faint_limit": 18.0}, "image"),
    "raw_adu_fwhm1": ({"psf": "moffat:beta=3", "fwhm": 1.0, "n_saturated": 3},
                      {"raw": True}, {}, "cli"),
    "raw_adu_fwhm0.6": ({"psf": "gaussian", "fwhm": 0.6, "n_saturated": 3},
                        {"raw": True}, {}, "cli"),
}
DEFAULT = list(FAMILIES)


def simulate(name, seed):
    """One simulated image (CCDData), its truth and its catalog (normalised/apass style)."""
    fk, ik, ck, _ = FAMILIES[name]
    fk = {"n_stars": N_STARS, **fk}
    ik = dict(ik)
    field = make_field(SHAPE, seed=seed, **fk)
    if ik.pop("raw", False):
        ccd, truth = simulate_raw_image(field, FILTER, 30.0, seed=seed, gain=1.7,
                                        read_noise=7.0, pedestal=1000.0, **ik)
    else:
        ccd, truth = simulate_image(field, FILTER, 30.0, seed=seed, **ik)
    cat = reference_catalog(field, bands=("B", "V"), seed=seed, style="apass", **ck)
    return ccd, truth, cat


def _measure_cli(ccd, cat, tmp):
    from glue_zeropoint import cli

    tmp = Path(tmp)
    img = tmp / "frame.fits"
    ccd.write(img, overwrite=True)
    catfile = tmp / "catalog.ecsv"
    cat.write(catfile, format="ascii.ecsv", overwrite=True)
    out = tmp / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = cli.main(["measure", str(img), "--catalog", str(catfile), "--band", "V",
                       "--out", str(out), "--no-plot", "--offline"])
    if rc:
        raise RuntimeError(f"exit {rc}: {buf.getvalue().strip().splitlines()[-1:]}")
    z = json.loads((out / "zeropoint.json").read_text())
    return (z["zp"], z["zp_err_total"], z["scatter"], z["n_used"], z.get("fwhm", math.nan),
            z.get("sky_sb", math.nan), _gain_used(z))


def _gain_used(z):
    """The gain (e-/ADU) the pipeline measured or assumed for a frame in ADU: a ``gain`` key
    of zeropoint.json, else its note 'assuming G e-/ADU', else 1."""
    for key in ("gain", "gain_used", "gain_assumed"):
        if isinstance(z.get(key), int | float) and z[key] > 0:
            return float(z[key])
    for note in z.get("notes", []):
        m = re.search(r"assum\w* (?:a gain of )?([0-9.]+) e-/ADU", note)
        if m:
            return float(m.group(1))
    return 1.0


def run_one(name, seed, cli_all=False):
    """(zp - truth, zp_err_total, scatter, n_used, fwhm ratio, sky_sb - truth, error text).

    The truth is the zero point in the units the pipeline measured in: for a raw frame in
    ADU, ``ZP_e - 2.5 log10(true gain / gain used)`` where the gain used is what the
    pipeline measured or assumed (see :func:`_gain_used`; today it assumes 1 e-/ADU and says
    so, so the truth is the ADU zero point). The sky truth likewise; it is only meaningful
    for a flat sky (NaN for families with a SkyModel).
    """
    from glue_zeropoint.zeropoint import measure_image

    mode = "cli" if cli_all else FAMILIES[name][3]
    ccd, truth, cat = simulate(name, seed)
    true_fwhm = truth["field"].fwhm
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if mode == "cli":
                with tempfile.TemporaryDirectory() as tmp:
                    zp, err, scat, n, fwhm, sky_sb, gain = _measure_cli(ccd, cat, tmp)
            else:
                m = measure_image(ccd, cat, "V")
                z = m.zeropoint
                zp, err, scat, n = z.zp, z.zp_err_total, z.scatter, z.n_used
                fwhm = m.stars.meta.get("fwhm", math.nan)
                sky_sb = m.sky_sb if m.sky_sb is not None else math.nan
                gain = float(ccd.header.get("GAIN", 1.0)) if str(ccd.unit) == "adu" else None
    except Exception as err:  # noqa: BLE001 - a benchmark counts failures, it does not stop
        return (math.nan, math.nan, math.nan, 0, math.nan, math.nan,
                f"{type(err).__name__}: {err}")
    shift = 0.0
    if "gain" in truth and gain:
        shift = -2.5 * math.log10(truth["gain"] / gain)
    true_sky = math.nan if "sky" in FAMILIES[name][1] else FILTER.sky_sb + shift
    # a raw frame's sky is refused (null: its level holds the bias pedestal)
    sky_diff = math.nan if sky_sb is None else sky_sb - true_sky
    return (zp - (FILTER.zp + shift), err, scat, n, fwhm / true_fwhm, sky_diff, "")


def summarise(name, rows):
    d = np.array([r[0] for r in rows])
    e = np.array([r[1] for r in rows])
    ok = np.isfinite(d) & np.isfinite(e) & (e > 0)
    n = len(rows)
    pulls = d[ok] / e[ok]
    cover = np.sum(np.abs(pulls) < 3) / n if n else math.nan
    errors = sorted({r[6][:90] for r in rows if r[6]})
    return {
        "family": name, "seeds": n, "fail": int(n - ok.sum()), "cover": cover,
        "bias": 1e3 * np.mean(d[ok]) if ok.any() else math.nan,
        "bias_se": 1e3 * np.std(d[ok]) / np.sqrt(max(ok.sum(), 1)) if ok.any() else math.nan,
        "pull_mean": np.mean(pulls) if ok.any() else math.nan,
        "pull_std": np.std(pulls) if ok.sum() > 1 else math.nan,
        "err": 1e3 * np.mean(e[ok]) if ok.any() else math.nan,
        "scatter": np.median([r[2] for r in rows if np.isfinite(r[2])]) if ok.any() else math.nan,
        "n_used": np.median([r[3] for r in rows]) if rows else 0,
        "fwhm_ratio": np.nanmedian([r[4] for r in rows]) if ok.any() else math.nan,
        "sky": np.nanmedian([r[5] for r in rows]) if np.isfinite([r[5] for r in rows]).any()
        else math.nan,
        "errors": errors,
    }


def table(results):
    lines = ["| family | seeds | fail | cover (<3σ) | bias (mmag) | pull mean | pull std | "
             "mean stated err (mmag) | per-star scatter (mag) | n used | FWHM meas/true | "
             "sky_sb - truth (mag) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in results:
        lines.append(
            f"| {s['family']} | {s['seeds']} | {s['fail']} | {s['cover']:.2f} | "
            f"{s['bias']:+.1f} ± {s['bias_se']:.1f} | {s['pull_mean']:+.2f} | "
            f"{s['pull_std']:.2f} | {s['err']:.1f} | {s['scatter']:.3f} | {s['n_used']:.0f} | "
            f"{s['fwhm_ratio']:.2f} | {s['sky']:+.3f} |")
    return with_failures(lines, results)


def with_failures(lines, results):
    """The table's ``lines`` and, below, every family's distinct errors."""
    notes = [f"- {s['family']}: {err}" for s in results for err in s["errors"]]
    return "\n".join(lines + ([""] + ["Failures:"] + notes if notes else []))


def family_arguments(p, seeds):
    """The options every family benchmark takes (``seeds`` per family by default)."""
    p.add_argument("--seeds", type=int, default=seeds)
    p.add_argument("--first-seed", type=int, default=5000)
    p.add_argument("--families", default=",".join(DEFAULT),
                   help="comma-separated, of: " + ", ".join(FAMILIES))
    p.add_argument("--jobs", type=int, default=1, help="worker processes (machine is shared)")
    p.add_argument("--markdown", help="also write the table to this file")


def family_names(p, args):
    """``(families, seeds)`` of parsed :func:`family_arguments` (an unknown family is an
    argparse error)."""
    names = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        p.error(f"unknown families {unknown}; choose from {list(FAMILIES)}")
    return names, list(range(args.first_seed, args.first_seed + args.seeds))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    family_arguments(p, 40)
    p.add_argument("--cli", action="store_true", help="measure every family via the CLI")
    args = p.parse_args(argv)
    names, seeds = family_names(p, args)
    return run_families(
        names, seeds, run_one, summarise, table, jobs=args.jobs, markdown=args.markdown,
        extra=(args.cli,),
        line=lambda s: (f"cover {s['cover']:.2f}, pull {s['pull_mean']:+.2f} ± "
                        f"{s['pull_std']:.2f}, bias {s['bias']:+.1f} mmag, fail {s['fail']}"))


def run_families(names, seeds, run, summarise, table, *, jobs=1, markdown=None, line,
                 extra=()):
    """``run(name, seed, *extra)`` for every family and seed (on ``jobs`` processes), one
    ``line(summary)`` per family on stderr, then the ``table`` of the summaries on stdout
    (and in ``markdown``). Returns 0."""
    results = []
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(jobs) if jobs > 1 else None
    for name in names:
        t = time.perf_counter()
        more = [[value] * len(seeds) for value in extra]
        rows = (list(pool.map(run, [name] * len(seeds), seeds, *more)) if pool
                else [run(name, s, *extra) for s in seeds])
        results.append(summarise(name, rows))
        print(f"{name}: {line(results[-1])} ({time.perf_counter() - t:.0f} s)",
              file=sys.stderr, flush=True)
    if pool:
        pool.shutdown()
    out = table(results)
    print(out)
    print(f"\n{len(seeds)} seeds per family ({seeds[0]}-{seeds[-1]}), "
          f"{time.perf_counter() - t0:.0f} s in all")
    if markdown:
        Path(markdown).write_text(out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
