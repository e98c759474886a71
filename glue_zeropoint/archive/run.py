"""Run the archive: nights -> frame tasks -> night fits, serially or on a Dask cluster.

:func:`run_archive` plans every night (:func:`.tasks.prepare_night`, a task), submits one
task per frame whose result is not stored yet (:func:`.tasks.measure_frame_task`), and when
a night's frames are all back, the night's fit (:func:`.tasks.fit_night_task`). With
``workers=0`` the same functions run one after the other in this process: the reference
the cluster's results must equal. A night that cannot be planned, and a frame that fails,
are reported and the archive goes on.
"""

import logging
import os
import time
from dataclasses import dataclass, field, fields

from .._settings import Settings as _Settings
from ..exceptions import InputError, ZeropointError
from ..io import OutputLock
from ..night.parallel import NANNY_CONFIG, QUIET_SCHEDULER, WORKER_ENV, in_worker
from ..night.settings import NightSettings
from .keys import Settings
from .store import Store
from .tasks import fit_night_task, measure_frame_task, prepare_night, write_failed_night
from .walk import find_nights

__all__ = ["run_archive", "ArchiveSummary", "ClusterSettings"]

log = logging.getLogger(__name__)

#: priorities: finish planned nights' frames and fits before planning more nights
_PRIORITY = {"prepare": 0, "frame": 1, "fit": 2}


@dataclass
class ArchiveSummary:
    """What a run did (per night: status, reason, frames measured now / already stored)."""

    store: str
    nights: dict = field(default_factory=dict)  # name -> dict
    n_frames: int = 0  # frames of the planned nights
    n_measured: int = 0  # measured in this run
    n_skipped: int = 0  # results already stored (resume)
    n_failed: int = 0  # frames whose row says failed (measured now)
    n_lost: int = 0  # frames whose task never came back (e.g. a worker killed repeatedly)
    failed_frames: list = field(default_factory=list)  # (night, file, reason)
    elapsed: float = 0.0
    workers: int = 0
    dashboard: str | None = None
    settings_hash: str = ""

    @property
    def failed_nights(self):
        return {n: d for n, d in self.nights.items() if d["status"] != "ok"}


class _Bookkeeper:
    def __init__(self, summary, progress, echo):
        self.s, self.progress, self.echo = summary, progress, echo
        self.total = 0
        self.done = 0

    def tick(self, message=""):
        if self.progress is not None:
            self.progress(self.done, self.s.n_failed + self.s.n_lost, self.total, message)

    def planned(self, job):
        n_all = job.n_stored if job.done else len(job.frames)
        n_todo = 0 if job.done else len(job.todo)
        self.s.n_frames += n_all
        self.s.n_skipped += n_all - n_todo  # a finished night's frames too
        if not job.done:  # the progress bar counts the nights still to do
            self.total += n_all
            self.done += n_all - n_todo
        self.tick(f"planned {job.name}")

    def frame(self, brief):
        self.done += 1
        if brief.get("skipped"):
            self.s.n_skipped += 1
        else:
            self.s.n_measured += 1
            if brief["failed"]:
                self.s.n_failed += 1
                self.s.failed_frames.append((brief["night"], brief["file"], brief["reason"]))
                self._say(f"{brief['night']}/{brief['file']}: FAILED: {brief['reason']}")
        self.tick(f"{brief['night']}/{brief['file']}")

    def lost(self, night, name, err):
        self.done += 1
        self.s.n_lost += 1
        self.s.failed_frames.append((night, name, f"task lost: {err}"))
        self._say(f"{night}/{name}: LOST: {err}")
        self.tick()

    def night(self, name, info):
        self.s.nights[name] = info
        if info["status"] == "ok":
            self._say(f"{name}: {info.get('n_frames', 0)} frames, verdict "
                      f"{info.get('verdict', '')}" + (" (already in the archive)"
                                                      if info.get("reused") else ""))
        else:
            self._say(f"{name}: {info['status'].upper()}: {info['reason']}")
        self.tick()

    def _say(self, line):
        if self.echo is not None:
            self.echo(line)


def _night_info(summary_row, reused=False):
    return {"status": summary_row["status"], "reason": summary_row["reason"],
            "verdict": summary_row.get("verdict", ""), "n_frames": summary_row.get("n_frames"),
            "reused": reused}


@dataclass
class ClusterSettings(_Settings):
    """Where an archive runs (not part of a result's key).

    Attributes
    ----------
    workers : int, optional
        0: serially in this process; N: a ``LocalCluster`` of N worker processes of one
        thread each; None: one worker per core. Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running ``dask-scheduler`` (e.g. ``tcp://127.0.0.1:8786``); its
        workers must see the night folders and the store at the same paths.
    memory_limit : str or int
        Per-worker memory limit of the ``LocalCluster`` (e.g. ``"2GB"``; ``"auto"``: the
        machine's memory shared between the workers).
    dashboard : bool
        Start the LocalCluster's dashboard (its address is in the summary).
    connect_timeout : float
        Seconds to wait for a scheduler and its first worker.
    """

    workers: int | None = None
    scheduler: str | None = None
    memory_limit: object = "auto"
    dashboard: bool = True
    connect_timeout: float = 10.0


def _split_keywords(keywords):
    """Flat keywords -> (NightSettings changes, ClusterSettings changes); TypeError for a
    keyword that is neither."""
    night_names = {f.name for f in fields(NightSettings)}
    cluster_names = {f.name for f in fields(ClusterSettings)}
    unknown = sorted(set(keywords) - night_names - cluster_names)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    return ({k: v for k, v in keywords.items() if k in night_names},
            {k: v for k, v in keywords.items() if k in cluster_names})


def run_archive(dirs, store, *, catalog=None, settings=None, cluster=None, progress=None,
                echo=None, on_client=None, **keywords):
    """Reduce every night below ``dirs`` into the archive ``store``.

    Parameters
    ----------
    dirs : list of path
        Night folders, or folders of night folders (see :func:`.walk.find_nights`).
    store : path
        The archive folder (created; see :mod:`.store`); results already there under the
        same keys are kept (resume), changed frames and settings are redone.
    catalog : str or Path, optional
        Catalog spec, as for ``glue-zeropoint night``.
    settings : `~glue_zeropoint.night.settings.NightSettings`, optional
        What each night is measured with (its ``colours`` are not used: the night's default
        colours apply).
    cluster : ClusterSettings, optional
        Where it runs: workers, scheduler, memory_limit, dashboard, connect_timeout.
    **keywords
        Any field of either settings object (``offline=True``, ``workers=2``, ...).
    progress : callable, optional
        ``progress(done, failed, total, message)`` after every task.
    echo : callable, optional
        ``echo(line)``: a line per night and per failed frame.
    on_client : callable, optional
        ``on_client(client)`` once the cluster is up (e.g. to print the dashboard address).

    Returns
    -------
    ArchiveSummary

    Raises
    ------
    InputError
        No such folder, no nights found, a scheduler that does not answer.
    """
    t0 = time.perf_counter()
    night_kw, cluster_kw = _split_keywords(keywords)
    settings = Settings.from_night(catalog, NightSettings.from_keywords(settings, **night_kw))
    cluster = ClusterSettings.from_keywords(cluster, **cluster_kw)
    st = Store(store)
    nights = find_nights(dirs, exclude=[st.root])
    st.create()
    summary = ArchiveSummary(store=str(st.root), settings_hash=settings.hash)
    book = _Bookkeeper(summary, progress, echo)
    with OutputLock(st.root, "archive"):
        st.clean_tmp()
        if cluster.scheduler is None and cluster.workers == 0:
            _run_serial(nights, st, settings, book)
        else:
            with _client(cluster) as client:
                summary.workers = len(client.scheduler_info()["workers"])
                summary.dashboard = client.dashboard_link \
                    if (cluster.dashboard or cluster.scheduler) else None
                if on_client is not None:
                    on_client(client)
                _run_dask(client, nights, st, settings, book)
        st.clean_tmp()  # a worker killed while writing left its temporary file
    summary.elapsed = time.perf_counter() - t0
    return summary


def _prepare_or_fail(name, path, st, settings, book):
    try:
        return prepare_night(name, str(path), str(st.root), settings)
    except ZeropointError as err:
        book.night(name, _night_info(write_failed_night(str(st.root), name, path, str(err))))
    return None


def _run_serial(nights, st, settings, book):
    for name, path in nights:
        job = _prepare_or_fail(name, path, st, settings, book)
        if job is None:
            continue
        _after_prepare(job, book)
        if job.done:
            continue
        for fj in job.todo:
            book.frame(measure_frame_task(fj))
        book.night(name, _night_info(fit_night_task(job)))


def _after_prepare(job, book):
    book.planned(job)
    if job.done:
        book.night(job.name, {"status": "ok", "reason": "", "verdict": "unchanged",
                              "n_frames": job.n_stored, "reused": True})


class _client:
    """A ``dask.distributed`` client on a new LocalCluster or an existing scheduler."""

    def __init__(self, settings):
        self.settings = settings  # a ClusterSettings
        self.cluster = self.client = None
        self.log_level = None

    def __enter__(self):
        import dask
        from distributed import Client, LocalCluster

        st = self.settings
        workers, scheduler, timeout = st.workers, st.scheduler, st.connect_timeout
        # the cluster's own INFO lines (workers starting, closing) are not the user's news
        dlog = logging.getLogger("distributed")
        self.log_level = dlog.level
        dlog.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
        if scheduler is not None:
            try:
                self.client = Client(scheduler, timeout=f"{timeout}s")
            except (OSError, TimeoutError, ValueError) as err:
                raise InputError(
                    f"--scheduler {scheduler}: no Dask scheduler answered within {timeout:g} s "
                    f"({type(err).__name__}); check the address (tcp://HOST:PORT) and that "
                    "dask-scheduler is running") from err
            try:
                self.client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, OSError) as err:
                self.client.close()
                raise InputError(f"--scheduler {scheduler}: the scheduler has no workers "
                                 f"(waited {timeout:g} s); start some with 'dask worker "
                                 f"{scheduler}'") from err
            return self.client
        n = workers if workers else (os.cpu_count() or 1)
        with dask.config.set(NANNY_CONFIG):
            self.cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, memory_limit=st.memory_limit,
                dashboard_address="127.0.0.1:0" if st.dashboard else None,
                silence_logs=logging.ERROR, env=WORKER_ENV,
                scheduler_kwargs=None if st.dashboard else QUIET_SCHEDULER)
        self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.log_level is not None:
            logging.getLogger("distributed").setLevel(self.log_level)


def _run_dask(client, nights, st, settings, book):
    from distributed import as_completed

    ac = as_completed()
    what = {}  # future key -> (kind, night, payload)
    jobs, pending = {}, {}

    def submit(kind, fn, arg, night, payload=None, *extra):
        fut = client.submit(in_worker, fn, arg, *extra, pure=False, priority=_PRIORITY[kind],
                            key=f"{kind}-{night}-{payload if payload is not None else ''}-"
                                f"{os.urandom(4).hex()}")
        what[fut.key] = (kind, night, payload)
        ac.add(fut)

    paths = dict(nights)
    for name, path in nights:
        submit("prepare", prepare_night, name, name, None, str(path), str(st.root), settings)
    for fut in ac:
        kind, night, payload = what.pop(fut.key)
        err = fut.exception() if fut.status == "error" else None
        if fut.status == "cancelled":
            err = "cancelled"
        res = None if err is not None else fut.result()
        fut.release()
        if kind == "prepare":
            if err is not None:
                reason = str(err) if isinstance(err, ZeropointError) else \
                    f"internal error: {type(err).__name__}: {err}"
                book.night(night, _night_info(write_failed_night(
                    str(st.root), night, paths[night], reason)))
                continue
            job = res
            _after_prepare(job, book)
            if job.done:
                continue
            jobs[night] = job
            todo = job.todo
            pending[night] = len(todo)
            for fj in todo:
                submit("frame", measure_frame_task, fj, night, fj.index)
            if not todo:
                submit("fit", fit_night_task, job, night)
        elif kind == "frame":
            if err is not None:
                fj = next(f for f in jobs[night].frames if f.index == payload)
                book.lost(night, fj.name, f"{type(err).__name__}: {err}")
            else:
                book.frame(res)
            pending[night] -= 1
            if pending[night] == 0:
                submit("fit", fit_night_task, jobs[night], night)
        else:  # fit
            if err is not None:
                book.night(night, {"status": "failed", "reason": f"night fit: {err}",
                                   "verdict": "", "n_frames": None, "reused": False})
            else:
                book.night(night, _night_info(res))
            jobs.pop(night, None)
