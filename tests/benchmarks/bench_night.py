"""Benchmark: a whole night from raw frames to the extinction verdict, ours against the same
steps per frame with photutils + astropy (issue 13).

Writes a simulated extinction night (:func:`glue_zeropoint.simulate.extinction.
write_extinction_night`: B and V, ``--per-band`` lights each, ``--size`` pixels, a cloud),
then, each in a fresh subprocess so that its peak memory is its own:

1. ``ours``: ``glue_zeropoint.night.run.measure_night`` + ``write_night`` (calibration,
   per-frame zero points, ensemble, extinction, standard magnitudes, files);
2. ``photutils``: the textbook chain per frame: master bias/dark/flat as numpy medians,
   each light calibrated, ``Background2D``, ``DAOStarFinder`` (FWHM 3.5), circular aperture
   photometry with an annulus sky (``ApertureStats`` median), ``match_to_catalog_sky``
   against the catalog, the frame's zero point as the median of ``m_cat - m_inst``, then an
   ordinary least-squares line of ZP against the header AIRMASS per band (no clouds named).

``--after-calibration`` (the issue's "40-frame 4096^2 night after calibration"): the night is
calibrated once by ours, untimed, and both chains then start from the same calibrated lights
(ours: ``night OUT/calibrated --no-calibrate``, the products with their uncertainty and mask;
the photutils chain: the same pixels, in electrons, no master frames). ``--workers N`` also
runs ours on N worker processes (``night --workers N``; its peak memory is the main
process's).

Printed: wall time, peak RSS (MB), k per band of each, the truth, and the ratios. Run:

    python tests/benchmarks/bench_night.py --size 512 --per-band 8
    python tests/benchmarks/bench_night.py --size 4096 --per-band 20 --after-calibration --workers 2
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def run_ours(raw, cat, out, calibrated=False, workers=None):
    # libraries are imported before the clock, as the photutils chain's are (ours imports
    # photutils' finder lazily, at the first frame)
    import photutils.detection  # noqa: F401

    from glue_zeropoint.night.outputs import write_night
    from glue_zeropoint.night.run import measure_night

    t = time.perf_counter()
    r = measure_night(raw, str(cat), out=out, calibrate=not calibrated, workers=workers)
    write_night(r, out)
    dt = time.perf_counter() - t
    return {"seconds": dt, "k": {b: f.k for b, f in r.fits.items()},
            "k_err": {b: f.k_err for b, f in r.fits.items()}, "verdict": r.verdict,
            "cloudy": int(np.sum(r.frames["cloudy"]))}


def run_photutils(raw, cat, calibrated=False):
    import warnings

    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.stats import SigmaClip
    from astropy.table import Table
    from astropy.wcs import WCS
    from photutils.aperture import (
        ApertureStats,
        CircularAnnulus,
        CircularAperture,
        aperture_photometry,
    )
    from photutils.background import Background2D, MedianBackground
    from photutils.detection import DAOStarFinder

    warnings.simplefilter("ignore")
    t = time.perf_counter()
    files = sorted(Path(raw).glob("*_cal.fits" if calibrated else "*.fit"))
    heads = {f: fits.getheader(f) for f in files}
    if calibrated:  # calibrated lights in electrons: no master frames
        kind = {f: "light" for f in files}
        bias = dark = 0.0
        flats = {heads[f]["FILTER"]: 1.0 for f in files}

    def trimmed(f):
        d = fits.getdata(f).astype(np.float32)
        ts = heads[f].get("TRIMSEC")
        if ts:
            x0, x1 = (int(v) for v in ts.strip("[]").split(",")[0].split(":"))
            d = d[:, x0 - 1:x1]
        return d

    if not calibrated:
        kind = {f: str(heads[f].get("IMAGETYP", "")).lower() for f in files}
        bias = np.median([trimmed(f) for f in files if "bias" in kind[f]], axis=0)
        darks = [f for f in files if "dark" in kind[f]]
        dark = np.median([trimmed(f) - bias for f in darks], axis=0) / heads[darks[0]]["EXPTIME"]
        flats = {}
        for f in files:
            if "flat" in kind[f]:
                flats.setdefault(heads[f]["FILTER"], []).append(trimmed(f) - bias
                                                                - dark * heads[f]["EXPTIME"])
        flats = {b: np.median([x / np.median(x) for x in v], axis=0) for b, v in flats.items()}
    c = Table.read(cat)
    cat_sky = SkyCoord(c["ra"] * u.deg, c["dec"] * u.deg)
    rows = []
    for f in files:
        if "light" not in kind[f]:
            continue
        h = heads[f]
        b = h["FILTER"]
        gain = 1.0 if calibrated else h.get("EGAIN", 1.0)
        img = (trimmed(f) - bias - dark * h["EXPTIME"]) / flats[b] * gain
        bkg = Background2D(img, 64, sigma_clip=SigmaClip(3.0), bkg_estimator=MedianBackground())
        src = DAOStarFinder(fwhm=3.5, threshold=5 * bkg.background_rms_median)(
            img - bkg.background)
        if src is None or len(src) < 3:
            continue
        pos = np.column_stack([src["xcentroid"], src["ycentroid"]])
        ap = CircularAperture(pos, r=6.0)
        ann = CircularAnnulus(pos, r_in=10.0, r_out=15.0)
        sky = ApertureStats(img, ann, sigma_clip=SigmaClip(3.0)).median
        phot = aperture_photometry(img, ap)
        flux = np.asarray(phot["aperture_sum"]) - sky * ap.area
        good = flux > 0
        m_inst = -2.5 * np.log10(flux[good] / h["EXPTIME"])
        w = WCS(h)
        sky_pos = w.pixel_to_world(pos[good, 0], pos[good, 1])
        idx, sep, _ = sky_pos.match_to_catalog_sky(cat_sky)
        ok = sep.arcsec < 2.0
        if ok.sum() < 3:
            continue
        zp = np.median(np.asarray(c[f"mag_{b}"])[idx[ok]] - m_inst[ok])
        rows.append((b, float(h["AIRMASS"]), float(zp)))
    k = {}
    for b in sorted({r[0] for r in rows}):
        x = np.array([r[1] for r in rows if r[0] == b])
        y = np.array([r[2] for r in rows if r[0] == b])
        k[b] = float(-np.polyfit(x, y, 1)[0])
    return {"seconds": time.perf_counter() - t, "k": k, "n_frames": len(rows)}


def _child(which, raw, cat, out, calibrated=False, workers=None):
    res = run_ours(raw, cat, out, calibrated, workers if which == "ours_workers" else None) \
        if which.startswith("ours") else run_photutils(raw, cat, calibrated)
    res["peak_mb"] = _rss_mb()
    print(json.dumps(res))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--per-band", type=int, default=8)
    p.add_argument("--after-calibration", action="store_true",
                   help="both chains from the same calibrated lights (calibration untimed)")
    p.add_argument("--workers", type=int, default=None,
                   help="also ours on this many worker processes (night --workers)")
    p.add_argument("--child", nargs=4, metavar=("WHICH", "RAW", "CAT", "OUT"))
    args = p.parse_args(argv)
    if args.child:
        _child(*args.child, args.after_calibration, args.workers)
        return 0
    from glue_zeropoint.simulate import reference_catalog
    from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        truth, _ = write_extinction_night(tmp / "raw", seed=3, n_per_band=args.per_band,
                                          shape=(args.size, args.size), cloud=(2, 0.3))
        reference_catalog(truth.field, style="normalised").write(tmp / "cat.ecsv")
        env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
        src = tmp / "raw"
        extra = []
        if args.after_calibration:  # calibrated once, untimed; both start from its lights
            from glue_zeropoint.calibration import calibrate_night

            calibrate_night(tmp / "raw", tmp / "cal", memmap=True)
            src, extra = tmp / "cal", ["--after-calibration"]
        if args.workers:
            extra += ["--workers", str(args.workers)]
        res = {}
        runs = ("ours", "photutils") + (("ours_workers",) if args.workers else ())
        for which in runs:
            out = subprocess.run([sys.executable, __file__, "--child", which, str(src),
                                  str(tmp / "cat.ecsv"), str(tmp / f"out_{which}"), *extra],
                                 capture_output=True, text=True, env=env, check=True)
            res[which] = json.loads(out.stdout.strip().splitlines()[-1])
        frame_mb = args.size * args.size * 4 / 2 ** 20
        print(f"night: 2 bands x {args.per_band} lights of {args.size}^2 (one float32 frame "
              f"= {frame_mb:.1f} MB); truth k = "
              + ", ".join(f"{b} {bt.k}" for b, bt in DEFAULT_BANDS.items()))
        for which, r in res.items():
            ks = ", ".join(f"{b} {v:.3f}" for b, v in r["k"].items())
            print(f"  {which:10s} {r['seconds']:7.1f} s  peak {r['peak_mb']:7.0f} MB  k: {ks}"
                  + (f"  verdict {r['verdict']}, {r['cloudy']} cloudy" if "verdict" in r
                     else ""))
        print("  (after calibration: both from the same calibrated lights)"
              if args.after_calibration else "  (raw to verdict)")
        q = res["photutils"]["seconds"]
        print(f"  time ratio ours/photutils: {res['ours']['seconds'] / q:.2f}"
              + (f"; ours on {args.workers} workers / photutils: "
                 f"{res['ours_workers']['seconds'] / q:.2f}" if args.workers else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
