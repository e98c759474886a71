"""kill -9 at the issue's frame size (issue 14): a worker and then the client killed mid-run,
a rerun, and the archive compared with an uninterrupted run's.

    python tests/benchmarks/bench_archive_kill.py NIGHTS_DIR CATALOG [--nights 2] [--out DIR]

``NIGHTS_DIR`` holds night folders (e.g. the 2048^2 nights ``bench_archive.py`` writes under
``OUT/nights``, with its ``OUT/catalog.ecsv``); the first ``--nights`` are used. What it does,
on an external ``dask scheduler`` with two ``dask worker`` processes on 127.0.0.1 (as
tests/archive/test_archive_kill.py does with 192^2 frames):

1. starts ``glue-zeropoint archive --scheduler ADDRESS`` as a process;
2. once a quarter of the frames are stored, kill -9 of one worker (a new one joins);
3. once half are stored, kill -9 of the client;
4. reruns the command to the end, then runs it once more (nothing may be redone);
5. an uninterrupted run into a fresh store;

and checks: every frame once in the archive, no temporary file left, what the killed run
stored trusted by the rerun (not measured again), the archive equal column by column to the
uninterrupted run's. Prints the counts and times.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "archive"))

from archive_helpers import (  # noqa: E402
    ExternalCluster,
    assert_same_archive,
    env,
    frame_results,
    tmp_files,
    wait_for,
)


def _args(nights, catalog, store, address):
    return ["archive", str(nights), "--out", str(store), "--catalog", str(catalog),
            "--offline", "--no-dashboard", "--progress", "never", "--scheduler", address]


def _run(args):
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "glue_zeropoint.cli", *args], env=env(),
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout, time.perf_counter() - t


def _counts(out):
    """(measured now, already stored) from the archive command's summary line."""
    now = int(out.split(" measured now, ")[0].split()[-1])
    stored = int(out.split(" measured now, ")[1].split(" already stored")[0])
    return now, stored


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("nights_dir", type=Path)
    p.add_argument("catalog", type=Path)
    p.add_argument("--nights", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_archive_kill"))
    a = p.parse_args(argv)
    from glue_zeropoint.archive import read_archive

    shutil.rmtree(a.out, ignore_errors=True)
    sub = a.out / "in"
    sub.mkdir(parents=True)
    names = sorted(q.name for q in a.nights_dir.iterdir() if q.is_dir())[:a.nights]
    for n in names:
        os.symlink(a.nights_dir.resolve() / n, sub / n)
    n_frames = sum(1 for n in names for q in (sub / n).iterdir()
                   if q.name.startswith("SIMFIELD-"))
    store, clean = a.out / "store", a.out / "store-clean"
    cluster = ExternalCluster(a.out)
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "glue_zeropoint.cli",
                                 *_args(sub, a.catalog, store, cluster.address)],
                                env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        victim = cluster.workers[0]
        wait_for(lambda: len(frame_results(store)) >= n_frames // 4 or proc.poll() is not None,
                 3600, "a quarter of the frames")
        assert proc.poll() is None, proc.communicate()[0]
        at_worker_kill = len(frame_results(store))
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
        cluster.workers.remove(victim)
        cluster.add_worker(9)
        print(f"kill -9 of worker pid {victim.pid} at {at_worker_kill}/{n_frames} frames "
              f"({time.perf_counter() - t0:.0f} s); a new worker joins", flush=True)
        wait_for(lambda: len(frame_results(store)) >= n_frames // 2 or proc.poll() is not None,
                 3600, "half of the frames")
        assert proc.poll() is None, proc.communicate()[0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        at_client_kill = len(frame_results(store))
        print(f"kill -9 of the client at {at_client_kill}/{n_frames} frames stored "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        out, dt = _run(_args(sub, a.catalog, store, cluster.address))
        now, stored = _counts(out)
        print(f"rerun: {now} measured now, {stored} already stored, {dt:.0f} s", flush=True)
        out2, dt2 = _run(_args(sub, a.catalog, store, cluster.address))
        now2, stored2 = _counts(out2)
        print(f"rerun again: {now2} measured now, {stored2} already stored, {dt2:.0f} s")
        out3, dt3 = _run(_args(sub, a.catalog, clean, cluster.address))
        print(f"uninterrupted run: {_counts(out3)[0]} measured, {dt3:.0f} s")
    finally:
        cluster.close()
    t = read_archive(store)
    checks = {
        "every frame in the archive": len(t) == n_frames,
        "no frame twice": not t.duplicated(["night", "file"]).any(),
        "one result file per frame": len(frame_results(store)) == n_frames,
        "no temporary file left": not tmp_files(store),
        "the killed run's results trusted": stored >= at_client_kill,
        "the rerun measured only the rest": now + stored == n_frames,
        "a second rerun redoes nothing (every frame already stored)":
            now2 == 0 and stored2 == n_frames,
    }
    try:
        assert_same_archive(clean, store)
        checks["equal to the uninterrupted run, column by column"] = True
    except AssertionError as err:
        print(f"differs from the uninterrupted run: {err}")
        checks["equal to the uninterrupted run, column by column"] = False
    for what, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
