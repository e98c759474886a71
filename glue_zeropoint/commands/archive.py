"""``glue-zeropoint archive DIR... --out STORE``: many nights into one archive, on Dask.

Walks the night folders (a folder holding FITS frames is a night; otherwise each of its
sub-folders holding FITS frames is one), builds each night's masters once, measures every
light frame as a task on a ``dask.distributed`` cluster (a LocalCluster sized to the
machine, ``--workers N``, ``--serial``, or ``--scheduler ADDRESS``), fits each night, and
writes a Parquet archive partitioned by night plus per-night summaries into STORE. A rerun
skips frames already done and redoes changed ones; a night or frame that fails is reported
and the archive goes on. ``--report`` prints the trends of STORE. Exit code 0 when every
night is in the archive, 3 when some night failed or is incomplete (the others are stored),
2 on bad input.
"""

import sys
from pathlib import Path

from .night import add_night_arguments

__all__ = ["add_parser", "run"]


def add_parser(sub):
    p = sub.add_parser("archive", help="many nights on a Dask cluster into one archive",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("dirs", nargs="*", type=Path, metavar="DIR",
                   help="night folders, or folders holding a night per sub-folder")
    p.add_argument("--out", required=True, type=Path, metavar="STORE",
                   help="archive folder (created; reruns resume into it)")
    p.add_argument("--report", action="store_true",
                   help="print the trends of STORE (after the run when DIRs are given)")
    add_night_arguments(p)
    run_how = p.add_mutually_exclusive_group()
    run_how.add_argument("--workers", type=int, default=None, metavar="N",
                         help="LocalCluster worker processes (default: one per core)")
    run_how.add_argument("--serial", action="store_true",
                         help="no cluster: every task in this process, one after another")
    run_how.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (its "
                              "workers must see DIRs and STORE at the same paths)")
    p.add_argument("--memory-limit", default="auto", metavar="SIZE",
                   help="memory per LocalCluster worker, e.g. 2GB (default: the machine's "
                        "memory shared between the workers)")
    p.add_argument("--no-dashboard", action="store_true", help="no Dask dashboard")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for --scheduler and its workers (default 10)")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bar on stderr (auto: on a terminal)")
    p.set_defaults(func=run)


class _Bar:
    """A tqdm bar of frames done/failed with an ETA on stderr."""

    def __init__(self, mode):
        self.enabled = mode == "always" or (mode == "auto" and sys.stderr.isatty())
        self.bar = None

    def __call__(self, done, failed, total, message=""):
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="archive", unit="frame", file=sys.stderr,
                            dynamic_ncols=True)
        self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(f"failed {failed}", refresh=False)
        self.bar.refresh()

    def write(self, line):
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run(args):
    from ..archive import ClusterSettings, run_archive, trend_report
    from ..exceptions import InputError
    from .night import night_settings

    if not args.dirs:
        if not args.report:
            raise InputError("give night folders (DIR...) to archive, or --report to print "
                             f"the trends of {args.out}")
        print(trend_report(args.out))
        return 0
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: give 1 or more (or --serial)")
    settings = night_settings(args)
    cluster = ClusterSettings(workers=0 if args.serial else args.workers,
                              scheduler=args.scheduler, memory_limit=args.memory_limit,
                              dashboard=not args.no_dashboard, connect_timeout=args.timeout)
    bar = _Bar(args.progress)

    def on_client(client):
        n = len(client.scheduler_info()["workers"])
        where = args.scheduler or "a LocalCluster"
        link = client.dashboard_link if not args.no_dashboard else None
        print(f"Dask: {n} worker(s) on {where}" + (f"; dashboard {link}" if link else ""),
              flush=True)

    try:
        s = run_archive(args.dirs, args.out, catalog=args.catalog, settings=settings,
                        cluster=cluster, progress=bar, echo=bar.write, on_client=on_client)
    finally:
        bar.close()
    bad = s.failed_nights
    print(f"archive {s.store}: {len(s.nights)} night(s), {s.n_frames} frame(s): "
          f"{s.n_measured} measured now, {s.n_skipped} already stored, {s.n_failed} failed"
          + (f", {s.n_lost} lost" if s.n_lost else "") + f" in {s.elapsed:.1f} s")
    for name, info in bad.items():
        print(f"  night {name}: {info['status']}: {info['reason']}")
    if args.report:
        print(trend_report(args.out))
    return 3 if bad or s.n_lost else 0
