"""Fixtures of the archive tests: three small simulated nights with one catalog, a serial
reference run, helpers to compare stores and to run Dask schedulers and workers."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.table import vstack

from glue_zeropoint.archive.run import WORKER_ENV
from glue_zeropoint.cli import main
from glue_zeropoint.simulate import reference_catalog
from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night

ROOT = Path(__file__).resolve().parents[2]
N_NIGHTS, N_PER_BAND, SHAPE = 3, 4, (192, 192)
N_FRAMES = N_NIGHTS * N_PER_BAND  # one band (V): 4 frames make an extinction line


@pytest.fixture(scope="session")
def nights(tmp_path_factory):
    """``{"dir": folder of 3 night folders, "catalog": local catalog file}``."""
    base = tmp_path_factory.mktemp("archive-nights")
    cats = []
    for i in range(N_NIGHTS):
        truth, _ = write_extinction_night(base / "nights" / f"2024-07-{2 + i:02d}", seed=10 + i,
                                          n_per_band=N_PER_BAND, shape=SHAPE, cloud=None,
                                          bands={"V": DEFAULT_BANDS["V"]},
                                          date=f"2024-07-{2 + i:02d}T10:30:00")
        cats.append(reference_catalog(truth.field, style="normalised"))
    vstack(cats).write(base / "catalog.ecsv")
    return {"dir": base / "nights", "catalog": base / "catalog.ecsv", "base": base}


@pytest.fixture(scope="session")
def external(tmp_path_factory):
    """A scheduler and 2 worker processes on 127.0.0.1, stopped at the end."""
    cluster = ExternalCluster(tmp_path_factory.mktemp("dask-logs"))
    try:
        yield cluster
    finally:
        cluster.close()


def archive_args(nights, store, *extra):
    return ["archive", str(nights["dir"]), "--out", str(store), "--catalog",
            str(nights["catalog"]), "--offline", "--no-dashboard", "--progress", "never",
            *extra]


@pytest.fixture(scope="session")
def serial_store(nights):
    """The reference: every task in this process (``--serial``)."""
    store = nights["base"] / "store-serial"
    assert main(archive_args(nights, store, "--serial")) == 0
    return store


def assert_same_archive(a, b):
    """The archive tables of stores ``a`` and ``b`` are equal, column by column, exactly."""
    from glue_zeropoint.archive import read_archive, read_summaries

    for read in (read_archive, read_summaries):
        ta, tb = read(a), read(b)
        assert len(ta) and list(ta.columns) == list(tb.columns)
        assert len(ta) == len(tb)
        for c in ta.columns:
            x, y = ta[c].to_numpy(), tb[c].to_numpy()
            if x.dtype.kind == "f":
                np.testing.assert_array_equal(x, y, err_msg=c)
            else:
                assert x.tolist() == y.tolist(), c


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen",
                MPLBACKEND="Agg")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DASK = str(Path(sys.executable).with_name("dask"))


class ExternalCluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (no nanny: a worker's
    pid is the process that computes)."""

    def __init__(self, log_dir, n_workers=2):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log_dir = Path(log_dir)
        self.procs = []
        self.workers = []
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--no-dashboard"], "scheduler")
        for i in range(n_workers):
            self.add_worker(i)
        self.wait_for_workers(n_workers)

    def _start(self, args, name):
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed in close()
        # one core per worker process, as a LocalCluster's (archive.run.WORKER_ENV)
        p = subprocess.Popen([DASK, *args], env=dict(env(), **WORKER_ENV), stdout=log,
                             stderr=subprocess.STDOUT)
        self.procs.append((p, log))
        return p

    def add_worker(self, i):
        # 2 GB: these workers serve several tests and compile the numba kernels when the cache
        # is cold (a fresh clone): at 1 GB one sat at ~820 MB, over dask's 80% pause level,
        # and the test waited for its timeout. The memory limit itself is tested through the
        # LocalCluster (test_localcluster_equals_serial) and the benchmark.
        w = self._start(["worker", self.address, "--nthreads", "1", "--no-nanny",
                         "--no-dashboard", "--memory-limit", "2GB", "--name", f"w{i}"],
                        f"worker{i}")
        self.workers.append(w)
        return w

    def n_workers(self):
        from distributed import Client

        with Client(self.address, timeout="20s") as c:
            return len(c.scheduler_info()["workers"])

    def wait_for_workers(self, n, timeout=60):
        from distributed import Client

        with Client(self.address, timeout="30s") as c:
            c.wait_for_workers(n, timeout=timeout)

    def close(self):
        for p, _ in self.procs:
            if p.poll() is None:
                p.terminate()
        for p, log in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()


def wait_for(predicate, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def frame_results(store):
    return sorted(Path(store, "work", "frames").glob("*/*.pkl"))


def tmp_files(store):
    return [p for p in Path(store).rglob("*") if p.name.endswith(".tmp")]
