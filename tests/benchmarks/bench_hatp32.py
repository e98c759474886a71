"""Benchmark: a real time series, the MicroObservatory HAT-P-32 night (issue 13), ours against
the same steps per frame with photutils.

    python tests/benchmarks/bench_hatp32.py DIR [--max-frames N] [--aperture PIXELS] [--workers N]

DIR holds the night's 142 raw 60 s frames (650x500, no WCS, no calibration frames, DATE-OBS
in local time): ``HatP32Dec202017/`` of the EXOTIC project's public sample data
(github rzellem/EXOTIC_sampledata; it has no licence file, so none of its frames is committed
here: fetch it yourself). Each reduction runs in a fresh subprocess (its own peak memory):

1. ``ours``: ``glue-zeropoint night DIR --no-calibrate`` as a function call
   (``measure_night`` + ``write_night``): time/airmass from the headers, detection, PSF,
   apertures, the night's ensemble transparency, extinction fit, verdict, files; with
   ``--workers N`` also ``night DIR --no-calibrate --workers N`` (the frames on N worker
   processes; its peak memory is the main process's only);
2. ``photutils``: per frame ``Background2D`` (64 px mesh, 3-sigma-clipped median),
   ``DAOStarFinder`` (FWHM 2 px, 5 sigma), a 4 px ``CircularAperture`` and an 8-12 px
   ``CircularAnnulus`` median sky (``ApertureStats``); then each frame matched to the first
   frame's 200 brightest stars by position (the drift accumulated frame to frame, each step
   the mode of the offsets between the 30 brightest stars of consecutive frames, then
   nearest neighbours within 1.5 px) and its transparency
   taken as the median magnitude difference of the common stars.

Both clocks start after the libraries are imported (astropy, photutils, scipy; numba's
compiled kernels load from their cache inside ours, at the first frame).

Printed: wall time and peak RSS of each, the ratio, and how the two transparency series
agree (robust scatter of their difference, each normalised to its best frame).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.stats import mad_std

sys.path.insert(0, str(Path(__file__).parent))
from bench_night import _rss_mb  # noqa: E402  (peak RSS of this process, one definition)


def _frames(raw, max_frames):
    files = sorted(p for p in Path(raw).iterdir() if p.suffix.lower() in (".fits", ".fit"))
    return files[:max_frames] if max_frames else files


def run_ours(raw, out, max_frames, aperture=None, workers=None):
    # libraries are imported before the clock, as the photutils chain's are (ours imports
    # photutils' finder lazily, at the first frame)
    import photutils.detection  # noqa: F401
    from astropy.nddata import CCDData

    from glue_zeropoint.night.outputs import write_night
    from glue_zeropoint.night.run import measure_night

    t = time.perf_counter()
    if max_frames:
        files = _frames(raw, max_frames)
        lights = [CCDData.read(f, unit="adu") for f in files]
        r = measure_night(raw, None, out=out, calibrate=False, lights=lights,
                          names=[f.name for f in files], aperture_radius=aperture,
                          workers=workers)
    else:
        r = measure_night(raw, None, out=out, calibrate=False, aperture_radius=aperture,
                          workers=workers)
    write_night(r, out)
    dt = time.perf_counter() - t
    fr = r.frames
    return {"seconds": dt, "files": [str(f) for f in fr["file"]],
            "transparency": [float(v) for v in fr["rel_transparency"]],
            "verdict": r.verdict, "n_measured": int(np.sum(fr["status"] != "failed"))}


def run_photutils(raw, max_frames):
    import warnings

    from astropy.io import fits
    from astropy.stats import SigmaClip
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture
    from photutils.background import Background2D, MedianBackground
    from photutils.detection import DAOStarFinder
    from scipy.spatial import cKDTree

    warnings.simplefilter("ignore")
    t = time.perf_counter()
    per = []
    for f in _frames(raw, max_frames):
        img = fits.getdata(f).astype(float)
        bkg = Background2D(img, 64, sigma_clip=SigmaClip(3.0), bkg_estimator=MedianBackground())
        src = DAOStarFinder(fwhm=2.0, threshold=5 * bkg.background_rms_median)(
            img - bkg.background)
        if src is None or len(src) < 5:
            per.append((f.name, None, None))
            continue
        pos = np.column_stack([src["xcentroid"], src["ycentroid"]])
        ap = CircularAperture(pos, r=4.0)
        ann = CircularAnnulus(pos, r_in=8.0, r_out=12.0)
        sky = np.asarray(ApertureStats(img, ann, sigma_clip=SigmaClip(3.0)).median, float)
        flux = np.asarray(ApertureStats(img, ap).sum, float) - sky * ap.area
        with np.errstate(invalid="ignore", divide="ignore"):
            mag = -2.5 * np.log10(flux)
        per.append((f.name, pos, mag))
    # the first frame with stars is the reference; its 200 brightest stars are compared
    ref = next(p for p in per if p[1] is not None)
    keep = np.argsort(ref[2])[:200]
    ref_pos, ref_mag = ref[1][keep], ref[2][keep]
    tree = cKDTree(ref_pos)
    out = []
    total = np.zeros(2)  # the drift since the reference, accumulated frame to frame
    prev = ref[1][np.argsort(ref[2])[:30]]
    for name, pos, mag in per:
        if pos is None:
            out.append((name, float("nan")))
            continue
        # the pointing drifts: the step from the previous frame is the mode of the offsets
        # between the 30 brightest stars of each (1 px bins), refined against the reference
        b = pos[np.argsort(mag)[:30]]
        off = (prev[:, None, :] - b[None, :, :]).reshape(-1, 2)
        h, ex, ey = np.histogram2d(off[:, 0], off[:, 1], bins=(np.arange(-40, 41), ) * 2)
        i, j = np.unravel_index(np.argmax(h), h.shape)
        shift = total + np.array([ex[i] + 0.5, ey[j] + 0.5])
        d, k = tree.query(pos + shift)
        near = d < 2.5
        if near.sum() >= 5:
            shift = shift + np.median(ref_pos[k[near]] - (pos[near] + shift), axis=0)
            d, k = tree.query(pos + shift)
        ok = (d < 1.5) & np.isfinite(mag)
        if ok.sum() >= 5:
            out.append((name, float(np.median(ref_mag[k[ok]] - mag[ok]))))
            total, prev = shift, b  # this frame -> reference, and its stars for the next step
        else:
            out.append((name, float("nan")))
    dt = time.perf_counter() - t
    return {"seconds": dt, "files": [o[0] for o in out], "offset": [o[1] for o in out]}


def _child(which, raw, out, max_frames, aperture, workers):
    res = run_ours(raw, out, max_frames, aperture, workers if which == "ours_workers" else None) \
        if which.startswith("ours") else run_photutils(raw, max_frames)
    res["peak_mb"] = _rss_mb()
    print(json.dumps(res))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("raw", help="folder of the HAT-P-32 frames")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--aperture", type=float, default=None,
                   help="ours with one aperture radius for the night (glue-zeropoint night "
                        "--aperture)")
    p.add_argument("--workers", type=int, default=None,
                   help="also ours on this many worker processes (night --workers)")
    p.add_argument("--child", choices=["ours", "photutils", "ours_workers"],
                   help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child, args.raw, args.out, args.max_frames, args.aperture, args.workers)
        return 0
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for which in ("ours", "photutils") + (("ours_workers",) if args.workers else ()):
            cmd = [sys.executable, __file__, args.raw, "--child", which,
                   "--out", str(Path(tmp) / "out")]
            if args.max_frames:
                cmd += ["--max-frames", str(args.max_frames)]
            if args.aperture:
                cmd += ["--aperture", str(args.aperture)]
            if args.workers:
                cmd += ["--workers", str(args.workers)]
            run = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res[which] = json.loads(run.stdout.strip().splitlines()[-1])
    o, q = res["ours"], res["photutils"]
    n = len(q["files"])
    print(f"HAT-P-32 night: {n} raw frames")
    print(f"  ours       {o['seconds']:7.1f} s  peak {o['peak_mb']:7.0f} MB  "
          f"{o['n_measured']} measured, verdict {o['verdict']}")
    print(f"  photutils  {q['seconds']:7.1f} s  peak {q['peak_mb']:7.0f} MB")
    print(f"  time ratio ours/photutils: {o['seconds'] / q['seconds']:.2f}")
    if "ours_workers" in res:
        w = res["ours_workers"]
        same = w["transparency"] == o["transparency"] and w["files"] == o["files"]
        print(f"  ours, {args.workers} workers {w['seconds']:7.1f} s  peak {w['peak_mb']:7.0f} MB "
              f"(main process)  ratio to photutils {w['seconds'] / q['seconds']:.2f}; "
              f"transparency {'identical to' if same else 'DIFFERENT from'} one process's")
    # transparency series side by side (magnitudes, each relative to its best frame)
    ours = dict(zip([Path(f).name for f in o["files"]], o["transparency"], strict=True))
    names = [f for f in q["files"] if f in ours]
    a = -2.5 * np.log10(np.array([ours[f] for f in names], float))
    b = -np.array([dict(zip(q["files"], q["offset"], strict=True))[f] for f in names], float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok] - np.min(a[ok]), b[ok] - np.min(b[ok])
    diff = a - b
    mad = mad_std(diff)
    print(f"  extinction+clouds (mag below the best frame): ours {np.min(a):.3f}-{np.max(a):.3f},"
          f" photutils {np.min(b):.3f}-{np.max(b):.3f}; ours-photutils median "
          f"{np.median(diff):+.3f}, robust scatter {mad:.3f} over {ok.sum()} frames, "
          f"correlation {np.corrcoef(a, b)[0, 1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
