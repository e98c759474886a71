"""Progress reporting shared by long steps (calibration, queries, solving).

Library functions take ``progress=None`` or a callable ``progress(done, total, message)``.
The callable may raise :class:`~glue_zeropoint.exceptions.Cancelled` to stop the step; the
step then leaves every earlier output intact. The command line passes a tqdm bar (only on a
terminal), the Glue layer a callback that updates a progress dialog from a worker thread.
"""

import sys

__all__ = ["report", "TerminalProgress"]


def report(progress, done, total, message=""):
    """Call ``progress`` if one was given."""
    if progress is not None:
        progress(done, total, message)


class TerminalProgress:
    """A progress callback that draws a tqdm bar on a terminal and stays silent otherwise."""

    def __init__(self, description, stream=None, enabled=None):
        self.description = description
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._bar = None

    def __call__(self, done, total, message=""):
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.description, file=self.stream,
                             leave=False, unit="step")
        self._bar.total = total
        self._bar.n = done
        if message:
            self._bar.set_postfix_str(message[:40], refresh=False)
        self._bar.refresh()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
