"""Benchmark of ``glue-zeropoint archive`` (issue 14): throughput on 1 and 2 LocalCluster
workers, peak memory per worker against the number of nights, and a paper projection.

Not in the default test run. A script (sizes are arguments)::

    python tests/benchmarks/bench_archive.py --nights 20 --frames 40 --shape 2048 --out /tmp/b
    python tests/benchmarks/bench_archive.py --memory-only --nights 10 --frames 40 --shape 2048

The issue's full size (20 nights x 40 frames of 2048^2) is ~800 frames; on a shared 2-core
machine a reduced size is run (say which in the report). What it does:

1. writes ``2 N`` simulated nights (``N`` with ``--skip-memory``; ``write_extinction_night``,
   one band, one catalog);
2. throughput: the first ``N`` nights on a fresh LocalCluster of 1 worker, then of 2
   workers (one thread each), timed from the cluster being up to the last night fitted;
3. memory: the peak RSS of every worker (``ru_maxrss`` in the worker process) after ``N``
   nights and, on a fresh cluster, after ``2 N`` nights (2 workers): flat means the pixels
   of a frame live only in its task;
4. a projection from the measured per-frame cost and data sizes: 10 years x 365 nights x
   4 cameras x FRAMES frames of 2048^2 on 16 nodes, naming the bottleneck.

Other processes on the machine make the measured 1 -> 2 worker ratio pessimistic.
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np


def _cpu_s():
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def make_nights(base, n, frames, shape):
    from astropy.table import vstack

    from glue_zeropoint.simulate import reference_catalog
    from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night

    nights = base / "nights"
    cat_path = base / "catalog.ecsv"
    if cat_path.exists() and len(list(nights.iterdir())) == n:
        return nights, cat_path
    shutil.rmtree(nights, ignore_errors=True)
    cats = []
    t0 = time.perf_counter()
    for i in range(n):
        truth, _ = write_extinction_night(
            nights / f"night{i:03d}", seed=100 + i, n_per_band=frames, shape=(shape, shape),
            cloud=None, bands={"V": DEFAULT_BANDS["V"]},
            date=f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}T10:30:00",
            n_stars=max(120, int(120 * (shape / 256) ** 2 / 8)))
        cats.append(reference_catalog(truth.field, style="normalised"))
        print(f"  wrote night {i + 1}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)
    vstack(cats).write(cat_path, overwrite=True)
    return nights, cat_path


def _warm(job_frames):
    """Measure a small night's frames in this worker: imports done, numba compiled."""
    from glue_zeropoint.archive.tasks import measure_frame_task

    for fj in job_frames:
        measure_frame_task(fj)


def warm_job(base, cat):
    """A 256^2 night planned into its own store (for :func:`_warm`)."""
    from glue_zeropoint.archive.keys import Settings
    from glue_zeropoint.archive.store import Store
    from glue_zeropoint.archive.tasks import prepare_night
    from glue_zeropoint.simulate import reference_catalog
    from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night

    raw = base / "warm" / "night"
    if not raw.exists():
        truth, _ = write_extinction_night(raw, seed=7, n_per_band=2, shape=(256, 256),
                                          cloud=None, bands={"V": DEFAULT_BANDS["V"]})
        reference_catalog(truth.field, style="normalised").write(base / "warm" / "cat.ecsv")
    store = Store(base / "warm" / "store").create()
    job = prepare_night("warm", raw, store.root, Settings.make(
        catalog=str(base / "warm" / "cat.ecsv"), offline=True))
    return job.frames


def run(nights_dir, names, cat, store, workers, memory_limit, warm):
    """(seconds from cluster up to done, frames, peak RSS MB per worker, CPU s of the
    workers during the run)."""
    from distributed import Client, LocalCluster, get_task_stream

    from glue_zeropoint.archive import run_archive

    sub = store.parent / (store.name + "-in")
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir(parents=True)
    for n in names:
        os.symlink(nights_dir / n, sub / n)
    shutil.rmtree(store, ignore_errors=True)
    from glue_zeropoint.archive.run import WORKER_ENV

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=memory_limit, dashboard_address=None,
                      env=WORKER_ENV) as cluster, \
            Client(cluster) as client:
        client.run(_warm, warm)  # every worker imported and compiled before the clock
        cpu0 = client.run(_cpu_s)
        t0 = time.perf_counter()
        with get_task_stream(client) as ts:
            s = run_archive([sub], store, catalog=str(cat), offline=True,
                            scheduler=cluster.scheduler_address, dashboard=False)
        dt = time.perf_counter() - t0
        # the workers' time inside tasks / (wall x workers): ~1 means no worker waited for
        # the scheduler (a starved machine then shows as few cores busy, not as idle workers)
        in_tasks = sum(ss["stop"] - ss["start"] for t in ts.data for ss in t["startstops"]
                       if ss["action"] == "compute")
        print(f"  workers inside tasks {in_tasks / (dt * workers):.0%} of the wall time",
              flush=True)
        cpu = sum(v - cpu0[k] for k, v in client.run(_cpu_s).items())
        rss = sorted(client.run(_peak_rss_mb).values())
    assert s.n_failed == 0 and s.n_lost == 0 and not s.failed_nights, s
    return dt, s.n_measured, rss, cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nights", type=int, default=20, help="N (memory also at 2 N)")
    p.add_argument("--frames", type=int, default=40, help="frames per night")
    p.add_argument("--shape", type=int, default=2048, help="frame side (pixels)")
    p.add_argument("--memory-limit", default="2GB")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_archive"))
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--memory-only", action="store_true",
                   help="only the memory runs: N and 2 N nights on 2 workers (no 1-worker "
                        "timing, no projection)")
    a = p.parse_args(argv)
    if a.memory_only and a.skip_memory:
        p.error("--memory-only and --skip-memory exclude each other")
    a.out.mkdir(parents=True, exist_ok=True)
    n_write = a.nights if a.skip_memory else 2 * a.nights  # 2 N only for the memory run
    print(f"writing {n_write} nights of {a.frames} frames of {a.shape}^2", flush=True)
    nights_dir, cat = make_nights(a.out, n_write, a.frames, a.shape)
    names = sorted(p.name for p in nights_dir.iterdir())
    warm = warm_job(a.out, cat)
    res = {"nights": a.nights, "frames_per_night": a.frames, "shape": a.shape,
           "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg()}
    if a.memory_only:
        return memory_only(a, nights_dir, names, cat, warm, res)
    for w in (1, 2):
        dt, n, rss, cpu = run(nights_dir, names[:a.nights], cat, a.out / f"store-w{w}", w,
                              a.memory_limit, warm)
        res[f"w{w}"] = {"seconds": dt, "frames": n, "frames_per_s": n / dt, "rss_mb": rss,
                        "worker_cpu_s": cpu, "cpu_s_per_frame": cpu / n,
                        "cores_used": cpu / dt}
        print(f"{w} worker(s): {n} frames in {dt:.1f} s = {n / dt:.3f} frames/s; workers' CPU "
              f"{cpu / n:.2f} s per frame, {cpu / dt:.2f} cores busy on average; peak RSS "
              f"per worker {', '.join(f'{r:.0f}' for r in rss)} MB", flush=True)
    res["speedup"] = res["w2"]["frames_per_s"] / res["w1"]["frames_per_s"]
    print(f"speed-up 1 -> 2 workers: {res['speedup']:.2f}x (target >= 1.7); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes take cores)")
    if not a.skip_memory:
        dt, n, rss, _ = run(nights_dir, names, cat, a.out / "store-2n", 2, a.memory_limit,
                            warm)
        res["w2_2n"] = {"seconds": dt, "frames": n, "rss_mb": rss}
        print(f"2 workers, {2 * a.nights} nights: {n} frames in {dt:.1f} s; peak RSS per "
              f"worker {', '.join(f'{r:.0f}' for r in rss)} MB (vs "
              f"{', '.join(f'{r:.0f}' for r in res['w2']['rss_mb'])} MB at {a.nights})")
    res["loadavg_end"] = os.getloadavg()
    # sizes: raw bytes per light frame, result bytes per frame (work results + archive)
    lights = [q for q in nights_dir.glob("*/SIMFIELD-*") if q.is_file()]
    raw = float(np.mean([q.stat().st_size for q in lights]))
    store = a.out / "store-w2"
    res_bytes = sum(q.stat().st_size for q in (store / "work" / "frames").rglob("*.pkl")) + \
        sum(q.stat().st_size for q in (store / "archive").rglob("*.parquet"))
    per_frame_result = res_bytes / max(res["w2"]["frames"], 1)
    # CPU of the workers per frame (masters, headers, fits included): what a quiet core takes
    core_s = res["w1"]["cpu_s_per_frame"]
    res.update({"raw_bytes_per_frame": raw, "result_bytes_per_frame": per_frame_result,
                "core_seconds_per_frame": core_s})
    res["projection"] = projection(core_s, a.shape, raw)
    print(res["projection"]["text"])
    (a.out / "bench_archive.json").write_text(json.dumps(res, indent=1, default=float))
    return res


def memory_only(a, nights_dir, names, cat, warm, res):
    """Peak RSS per worker after N and after 2 N nights, each on a fresh 2-worker cluster."""
    for key, sel in (("w2", names[:a.nights]), ("w2_2n", names)):
        dt, n, rss, _ = run(nights_dir, sel, cat, a.out / f"store-{key}", 2, a.memory_limit,
                            warm)
        res[key] = {"nights": len(sel), "seconds": dt, "frames": n, "rss_mb": rss}
        print(f"2 workers, {len(sel)} nights: {n} frames in {dt:.1f} s; peak RSS per worker "
              f"{', '.join(f'{r:.0f}' for r in rss)} MB", flush=True)
    res["loadavg_end"] = os.getloadavg()
    (a.out / "bench_archive_memory.json").write_text(json.dumps(res, indent=1, default=float))
    return res


def projection(core_s, shape, raw_bytes, *, years=10, cameras=4, frames=40, nodes=16,
               cores=16, fs_gb_s=1.0, node_disk_mb_s=200.0):
    """10 years of a 4-camera network (``frames`` lights of 2048^2 per camera and night) on
    ``nodes`` nodes of ``cores`` cores: CPU, bytes read and where the time goes."""
    scale = (2048 / shape) ** 2  # per-frame work ~ pixels (calibration, detection, sky)
    n = years * 365 * cameras * frames
    cpu_s = n * core_s * scale
    raw = raw_bytes * scale
    # each night also reads its calibration frames once (~11 frames), and every light is read
    # once; masters are read from the store by each worker once per night (page cache)
    bytes_total = n * raw * (1 + 11 / frames)
    t_cpu = cpu_s / (nodes * cores)
    t_fs = bytes_total / (fs_gb_s * 1e9)
    t_disk = bytes_total / (nodes * node_disk_mb_s * 1e6)
    t_io = max(t_fs, t_disk)
    neck = "CPU (per-frame calibrate + detect + PSF + photometry)" if t_cpu > t_io else \
        "reading raw bytes from the shared file system"
    text = "\n".join([
        f"projection: {years} years x 365 nights x {cameras} cameras x {frames} frames = "
        f"{n:,} frames of 2048^2",
        f"  per frame: {core_s * scale:.1f} core-s (measured {core_s:.2f} core-s at "
        f"{shape}^2, scaled by pixels x{scale:.0f}), {raw / 1e6:.1f} MB raw",
        f"  CPU: {cpu_s / 3600:,.0f} core-hours -> {t_cpu / 3600:.1f} h on {nodes} nodes x "
        f"{cores} cores",
        f"  I/O: {bytes_total / 1e12:.1f} TB read -> {t_fs / 3600:.1f} h at {fs_gb_s:g} GB/s "
        f"shared FS ({t_disk / 3600:.1f} h at {node_disk_mb_s:g} MB/s per node)",
        f"  bottleneck: {neck}; the scheduler sees {n:,} frame tasks "
        f"(~{n * 1e-3 / 60:.0f} min of scheduler time at ~1 ms per task, overlapped)"])
    return {"frames": n, "cpu_hours": cpu_s / 3600, "hours_cpu_bound": t_cpu / 3600,
            "hours_io_bound": t_io / 3600, "bottleneck": neck, "text": text}


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
