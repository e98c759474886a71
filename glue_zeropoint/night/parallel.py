"""A night's frames measured side by side in worker processes (``night --workers N``).

:func:`measure_frames` runs :func:`.run.measure_frame` for a set of frames on a Dask
``LocalCluster`` of N one-thread processes on this machine (many nights on many machines are
the archive's work, :mod:`glue_zeropoint.archive`). Only frames that do not wait for another
frame are given to it: a frame without a celestial WCS of a field with a catalog reuses the WCS
solved for an earlier frame of its pointing, so those are measured afterwards, in time order,
in this process. Each frame's result is the one a serial run gives (the same function on the
same inputs); only the order in which they finish differs.
"""

import logging
import os

__all__ = ["NANNY_CONFIG", "QUIET_SCHEDULER", "WORKER_ENV", "in_worker", "local_cluster",
           "measure_frames"]

#: a worker process is one core: its numba kernels (and BLAS) run one thread, else N workers
#: of the machine's N cores would each start N threads and fight for the cores (numba's is
#: applied by the tasks themselves, :func:`in_worker`: the environment alone comes too late)
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


#: the workers keep glibc's own allocator settings: Dask's nannies set MALLOC_TRIM_THRESHOLD_
#: (to hand freed memory back to the system at once), which also stops glibc from raising its
#: mmap threshold, so every frame-sized array is mapped afresh and its pages faulted in again
#: on first touch: 123 -> 142 ms per HAT-P-32 frame on one thread (tests/benchmarks/README.md;
#: arrays above glibc's 32 MiB ceiling, a 4096^2 frame's, are mapped afresh either way). A
#: frame's arrays are freed when it is done; the memory limit still bounds a worker. (A
#: MALLOC_TRIM_THRESHOLD_ already in this process's environment is still inherited.)
NANNY_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


#: the scheduler's HTTP server (health and metrics; it starts even without the dashboard) on a
#: free local port: on 8787 it warned "Port 8787 is already in use" beside a running Dask
QUIET_SCHEDULER = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


class local_cluster:
    """A ``dask.distributed`` client on a new ``LocalCluster`` of ``workers`` one-thread
    processes (no dashboard; the cluster's INFO lines kept out of the user's log), started by
    :meth:`start` (in the background, while this process plans the night) or by the first
    :meth:`client`, and closed when the context ends."""

    def __init__(self, workers, memory_limit="auto"):
        self.workers = int(workers)
        self.memory_limit = memory_limit
        self.cluster = self._client = None
        self.level = None
        self._thread = self._error = None

    def _make(self):
        import dask
        from distributed import Client, LocalCluster

        with dask.config.set(NANNY_CONFIG):
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                        processes=True, memory_limit=self.memory_limit,
                                        dashboard_address=None, silence_logs=logging.ERROR,
                                        env=WORKER_ENV, scheduler_kwargs=QUIET_SCHEDULER)
        try:
            self._client = Client(self.cluster)
            self._client.run(_import_measurement)  # the workers' imports, before a frame
        except BaseException:
            if self._client is not None:
                self._client.close()
            self.cluster.close()  # no half-started cluster left behind
            self.cluster = self._client = None
            raise

    def _start(self):
        try:
            self._make()
        except BaseException as exc:  # raised by client(), in the caller's thread
            self._error = exc

    def start(self):
        """Start the cluster in a background thread (the processes' start and imports,
        ~2 s, overlap the night's planning); :meth:`client` waits for it."""
        import threading

        import distributed  # noqa: F401  (imported here, not beside the planning's imports)

        if self._thread is None and self._client is None:
            self._thread = threading.Thread(target=self._start, name="gzp-cluster-start",
                                            daemon=True)
            self._thread.start()

    def _join(self):
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def client(self):
        self._join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._client is None:
            self._make()
        return self._client

    def __enter__(self):
        dlog = logging.getLogger("distributed")
        self.level = dlog.level
        dlog.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
        return self

    def __exit__(self, *exc):
        self._join()
        if self._client is not None:
            self._client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.level is not None:
            logging.getLogger("distributed").setLevel(self.level)


def in_worker(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with this thread's numba kernels on at most the
    ``NUMBA_NUM_THREADS`` the process's environment says now (:data:`WORKER_ENV` on our
    workers; nothing changes where it is not set): the form every task is submitted in.

    A Dask nanny sets its worker's environment only after the spawned process has re-imported
    the parent's main module; when that module imports numba (a script that imports
    ``glue_zeropoint.night.run`` at its top), numba has read ``NUMBA_NUM_THREADS`` by then, and
    each of N workers ran its kernels on all N cores: on 2 cores the 142 HAT-P-32 frames took
    17.5 s on 2 workers against 13.5 s in one process (tests/benchmarks/README.md). numba's
    thread count is per calling thread, so it is set here, in the task's thread."""
    limit = os.environ.get("NUMBA_NUM_THREADS", "")
    if limit.isdigit() and int(limit) >= 1:
        import numba

        if numba.get_num_threads() > int(limit):
            numba.set_num_threads(int(limit))
    return fn(*args, **kwargs)


def _import_measurement():
    """Run on each worker as it starts: the measurement's modules imported."""
    from . import run  # noqa: F401


def independent(plan):
    """Indices (in ``plan.order``) of the frames that need no other frame's solved WCS."""
    out = []
    for i in plan.order:
        light = plan.lights[i]
        wcs = getattr(light, "wcs", None)
        if plan.cats.get(plan.fields[i]) is None or (wcs is not None and wcs.has_celestial):
            out.append(i)
    return out


def measure_frames(plan, indices, settings, cluster, done):
    """Measure the frames ``indices`` of ``plan`` on the processes of ``cluster`` (a
    :class:`local_cluster`).

    ``done(i, outcome)`` is called in this process as each frame finishes (in the order they
    finish); it may raise (e.g. :class:`~glue_zeropoint.exceptions.Cancelled`), which cancels
    the frames not yet measured. A frame whose worker fails (a crash, not a frame that could
    not be measured: that is a row saying why) is ``done(i, None, error)``.
    """
    from distributed import as_completed

    from .run import measure_frame

    client = cluster.client()
    cats = {f: client.scatter(c, broadcast=True) for f, c in plan.cats.items() if c is not None}
    futures = {}
    for i in indices:
        kw = plan.frame_kwargs(i)
        kw["catalog"] = cats.get(kw["field"])
        fut = client.submit(in_worker, measure_frame, plan.lights[i], settings=settings,
                            pure=False, key=f"frame-{i}-{os.urandom(4).hex()}", **kw)
        futures[fut.key] = (fut, i)
        plan.lights[i] = None  # the worker reads the frame; this process keeps its stars
    try:
        for fut in as_completed([f for f, _ in futures.values()]):
            i = futures.pop(fut.key)[1]
            if fut.status == "error":
                done(i, None, fut.exception())
            else:
                done(i, fut.result())
            fut.release()
    except BaseException:
        client.cancel([f for f, _ in futures.values()])
        raise
