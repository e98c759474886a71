"""Many nights as Dask tasks, resumable, into one columnar archive.

Public surface:

- :func:`run_archive`: walk night folders, reduce every frame as a task (serially, on a
  ``LocalCluster`` or on an existing ``dask.distributed`` scheduler) into a store, with a
  :class:`~glue_zeropoint.night.settings.NightSettings` (what is measured) and a
  :class:`ClusterSettings` (where it runs);
- :func:`find_nights`: the night folders below the given folders;
- :func:`read_archive` / :func:`read_summaries`: the store's per-frame and per-night tables;
- :func:`trend_report`: the text of ``glue-zeropoint archive --report``.

Imports :mod:`glue_zeropoint.night` and :mod:`glue_zeropoint.calibration`; never glue or Qt.
"""

from .report import trend_report
from .run import ArchiveSummary, ClusterSettings, run_archive
from .store import read_archive, read_summaries
from .walk import find_nights

__all__ = ["run_archive", "ArchiveSummary", "ClusterSettings", "find_nights", "read_archive", "read_summaries",
           "trend_report"]
