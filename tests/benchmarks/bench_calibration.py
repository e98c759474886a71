"""Benchmark: calibrating a whole night with glue-zeropoint against the same steps with ccdproc.

Writes a simulated night (``--frames`` each of bias, dark, flat and light; MaxIm headers, 16-bit
frames of ``--size`` x ``--size``), then, each in a fresh subprocess so that its peak memory
(``ru_maxrss``) is its own, times:

1. ``read``: reading every raw file's bytes (warm page cache), and decoding them with astropy;
2. ``ours``: ``calibration.calibrate_night(raw, out)`` (masters, calibrated lights with
   uncertainty and mask, products written);
3. ``ccdproc``: the same steps with ccdproc: ``combine(method='median', sigma_clip=True)`` for
   the master bias, the bias-subtracted darks and the scaled bias/dark-subtracted flats, then
   ``ccd_process`` (error=True, gain, read noise, bias, dark scaled by exposure) and
   ``flat_correct`` (normalised by the flat's median, as ours) for each light, products written.

It then compares the calibrated lights (median |ours - ccdproc| / our sigma over unmasked
pixels) and prints the ratios. Run:

    python tests/benchmarks/bench_calibration.py --size 2048 --frames 10
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb():
    """Peak resident memory of this process (MB).

    ``VmHWM`` from /proc: ``ru_maxrss`` survives ``exec`` on Linux, so in a subprocess it
    would report the parent's peak when that was larger; ``resource`` elsewhere.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- workers (run in a subprocess each) ----------------------------------------------------------
def work_read(raw, out):
    from astropy.io import fits

    files = sorted(p for p in Path(raw).rglob("*.fit*"))
    t0 = time.perf_counter()
    nbytes = sum(len(p.read_bytes()) for p in files)
    t_bytes = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in files:
        data = fits.getdata(p)
        del data
    t_decode = time.perf_counter() - t0
    return {"seconds": t_bytes, "decode_seconds": t_decode, "bytes": nbytes,
            "files": len(files)}


def work_ours(raw, out):
    from glue_zeropoint.calibration import calibrate_night
    from glue_zeropoint.simulate import simulate_night

    # load the compiled kernels (cached on disk by numba) outside the timing
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        simulate_night(Path(tmp) / "raw", shape=(32, 32), n_bias=2, n_dark=2, n_flat=2,
                       lights=(("V", 20.0, 1),), field_kwargs={"n_stars": 3})
        calibrate_night(Path(tmp) / "raw", Path(tmp) / "out")
    warmup = time.perf_counter() - t0
    baseline = _rss_mb()
    t0 = time.perf_counter()
    night = calibrate_night(raw, out)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "warmup_seconds": warmup, "baseline_rss_mb": baseline,
            "gain": night.report["gain"], "read_noise": night.report["read_noise"],
            "lights": [e["product"] for e in night.report["lights"]],
            "sources": [e["file"] for e in night.report["lights"]]}


def work_ccdproc(raw, out, gain, read_noise):
    import ccdproc
    from astropy import units as u
    from astropy.io import fits
    from astropy.nddata import CCDData

    from glue_zeropoint.calibration import scan_frames

    frames = scan_frames(raw)
    kinds = {k: [f.path for f in frames if f.kind == k] for k in ("bias", "dark", "flat", "light")}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    baseline = _rss_mb()
    t0 = time.perf_counter()

    def read(p):
        return CCDData.read(p, unit="adu")

    clip = dict(method="median", sigma_clip=True, sigma_clip_low_thresh=3,
                sigma_clip_high_thresh=3)
    master_bias = ccdproc.combine([str(p) for p in kinds["bias"]], unit="adu", **clip)
    master_bias.write(out / "master_bias.fits", overwrite=True)
    darks = [ccdproc.subtract_bias(read(p), master_bias) for p in kinds["dark"]]
    master_dark = ccdproc.combine(darks, **clip)
    master_dark.meta["EXPTIME"] = darks[0].meta["EXPTIME"]
    del darks
    master_dark.write(out / "master_dark.fits", overwrite=True)
    flats = [ccdproc.ccd_process(read(p), master_bias=master_bias, dark_frame=master_dark,
                                 exposure_key="EXPTIME", exposure_unit=u.s, dark_scale=True)
             for p in kinds["flat"]]
    master_flat = ccdproc.combine(flats, scale=lambda a: 1.0 / np.ma.median(a), **clip)
    del flats
    master_flat.write(out / "master_flat.fits", overwrite=True)
    norm = float(np.median(master_flat.data))
    products = []
    for p in kinds["light"]:
        ccd = ccdproc.ccd_process(read(p), error=True, gain=gain * u.electron / u.adu,
                                  readnoise=read_noise * u.electron, master_bias=master_bias,
                                  dark_frame=master_dark, exposure_key="EXPTIME",
                                  exposure_unit=u.s, dark_scale=True, gain_corrected=False)
        ccd = ccdproc.flat_correct(ccd, master_flat, norm_value=norm)
        path = out / (p.name.rsplit(".", 1)[0] + "_cal.fits")
        ccd.write(path, hdu_uncertainty="UNCERT", hdu_mask="MASK", overwrite=True)
        products.append(path.name)
    seconds = time.perf_counter() - t0
    del fits
    return {"seconds": seconds, "baseline_rss_mb": baseline, "lights": products}


def work_simulate(raw, size, n):
    from glue_zeropoint.simulate import simulate_night

    t0 = time.perf_counter()
    simulate_night(raw, style="maxim", shape=(size, size), seed=1, n_bias=n, n_dark=n,
                   n_flat=n, lights=(("V", 20.0, n),), field_kwargs={"n_stars": 2000})
    return {"seconds": time.perf_counter() - t0}


def _worker(args):
    if args.worker == "simulate":
        result = work_simulate(args.raw, args.size, args.frames)
    elif args.worker == "read":
        result = work_read(args.raw, args.out)
    elif args.worker == "ours":
        result = work_ours(args.raw, args.out)
    else:
        result = work_ccdproc(args.raw, args.out, args.gain, args.read_noise)
    result["peak_rss_mb"] = _rss_mb()
    print("RESULT " + json.dumps(result))
    return 0


def _run(worker, raw, out, **extra):
    cmd = [sys.executable, __file__, "--worker", worker, "--raw", str(raw), "--out", str(out)]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{worker} failed:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[7:])


def _compare(ours_dir, ccd_dir, ours, theirs):
    from glue_zeropoint.calibration import read_product

    stats = []
    for a, b in zip(ours["lights"], theirs["lights"], strict=True):
        mine = read_product(Path(ours_dir) / a)
        other = read_product(Path(ccd_dir) / b)
        good = ~mine.mask & np.isfinite(other.data)
        sigma = mine.uncertainty.array[good]
        rel = np.abs(mine.data[good] - other.data[good]) / sigma
        ratio = other.uncertainty.array[good] / sigma
        stats.append((float(np.median(rel)), float(np.percentile(rel, 99)),
                      float(np.median(ratio))))
    arr = np.array(stats)
    return {"median_abs_diff_over_sigma": float(arr[:, 0].mean()),
            "p99_abs_diff_over_sigma": float(arr[:, 1].mean()),
            "ccdproc_sigma_over_ours_median": float(arr[:, 2].mean())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--frames", type=int, default=10, help="frames of each kind")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to write the night (default: a temporary folder)")
    parser.add_argument("--skip-ccdproc", action="store_true")
    parser.add_argument("--worker", choices=("simulate", "read", "ours", "ccdproc"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--raw", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--gain", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--read-noise", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    work = Path(tempfile.mkdtemp(prefix="bench_cal_")) if args.workdir is None else args.workdir
    raw = work / "raw"
    n = args.frames
    try:
        sim = _run("simulate", raw, work / "none", size=args.size, frames=n)
        print(f"simulated {4 * n} frames of {args.size}x{args.size} in "
              f"{sim['seconds']:.1f} s ({raw})", flush=True)
        _run("read", raw, work / "none")  # warm the page cache
        read = _run("read", raw, work / "none")
        print(f"read:    {read['seconds']:.2f} s for {read['bytes'] / 2**20:.0f} MB raw bytes "
              f"(astropy decode {read['decode_seconds']:.2f} s), peak {read['peak_rss_mb']:.0f} MB",
              flush=True)
        ours = _run("ours", raw, work / "ours")
        print(f"ours:    {ours['seconds']:.2f} s, peak {ours['peak_rss_mb']:.0f} MB (after "
              f"imports {ours['baseline_rss_mb']:.0f} MB; compiled-kernel load "
              f"{ours['warmup_seconds']:.1f} s not timed); gain {ours['gain']['value']} "
              f"({ours['gain']['source']}), read noise {ours['read_noise']['value']:.3f} "
              f"({ours['read_noise']['source']})", flush=True)
        result = {"size": args.size, "frames": 4 * n, "read": read, "ours": ours}
        if not args.skip_ccdproc:
            theirs = _run("ccdproc", raw, work / "ccdproc", gain=ours["gain"]["value"],
                          read_noise=ours["read_noise"]["value"])
            print(f"ccdproc: {theirs['seconds']:.2f} s, peak {theirs['peak_rss_mb']:.0f} MB "
                  f"(after imports {theirs['baseline_rss_mb']:.0f} MB)", flush=True)
            same = _compare(work / "ours", work / "ccdproc", ours, theirs)
            result.update(ccdproc=theirs, agreement=same)
            print(f"values:  median |ours - ccdproc| / sigma = "
                  f"{same['median_abs_diff_over_sigma']:.3f} (99th percentile "
                  f"{same['p99_abs_diff_over_sigma']:.2f}); ccdproc sigma / ours = "
                  f"{same['ccdproc_sigma_over_ours_median']:.2f} (median)")
            print(f"ratios:  ours / read = {ours['seconds'] / read['seconds']:.1f}, "
                  f"ccdproc / read = {theirs['seconds'] / read['seconds']:.1f}, "
                  f"ccdproc / ours = {theirs['seconds'] / ours['seconds']:.1f}; "
                  f"peak memory ccdproc / ours = "
                  f"{theirs['peak_rss_mb'] / ours['peak_rss_mb']:.1f}")
        else:
            print(f"ratios:  ours / read = {ours['seconds'] / read['seconds']:.1f}")
        print("RESULT " + json.dumps(result))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
