"""Plugins menu: *Measure a night…* runs the whole night from a raw folder inside Glue.

:func:`measure_night_dialog` (the menu action) asks for the raw folder and an optional
catalog (a spec such as ``vizier:II/336/apass9`` or a local table file; empty: relative
photometry from the night's own stars), then calls :func:`measure_night_in_app`, which is
also what a script or a test calls with the folder given (no dialog):

- :func:`glue_zeropoint.night.run.measure_night` runs in a worker thread
  (:class:`~glue_zeropoint.qt.menus.BackgroundTask`): progress and each frame's line in a
  non-modal progress dialog and the status bar; Cancel stops at the next frame;
- its files go to ``OUT`` (default: ``<raw folder>_night`` next to the raw folder), as the
  ``night`` command writes them;
- back in the GUI thread the folder is loaded through the night data factory (so a saved
  session re-reads it) as the night dataset and its stars, and a night viewer opens on it;
- errors are shown non-modally (:func:`~glue_zeropoint.qt.menus.show_message`).
"""

from pathlib import Path

from qtpy import QtWidgets

from .menus import BackgroundTask, _status, start_job

__all__ = ["MEASURE_NIGHT_LABEL", "measure_night_in_app", "measure_night_dialog", "register"]

MEASURE_NIGHT_LABEL = "Measure a night…"


def default_out(raw_dir):
    """Where the night's files go when no folder is given: ``<raw>_night`` beside it."""
    raw = Path(raw_dir)
    return raw.with_name(raw.name + "_night")


def _work(raw_dir, catalog, out, kwargs, lines):
    """The worker thread's job: measure the night, write its files, return ``out``."""
    from ..night.outputs import write_night
    from ..night.run import measure_night

    def job(progress):
        state = {"done": 0, "total": 0}

        def step(done, total, message=""):
            state["done"], state["total"] = done, total
            if progress is not None:
                progress(done, total, message)

        def echo(line):
            lines.append(line)
            if progress is not None:  # the frame's line under the progress bar
                progress(state["done"] + 1, max(state["total"], 1), line)

        result = measure_night(raw_dir, catalog, out=out, progress=step, echo=echo, **kwargs)
        write_night(result, out)
        return result

    return job


def measure_night_in_app(app, raw_dir, catalog=None, *, out=None, on_done=None, viewer=True,
                         **kwargs):
    """Measure the night in ``raw_dir`` in a worker thread and load it into ``app``.

    Parameters
    ----------
    app : GlueApplication
    raw_dir : str or Path
        The raw folder (bias, dark, flat, lights).
    catalog : str, optional
        A catalog spec or a local table file (None: no zero points, relative photometry).
    out : str or Path, optional
        Where the night's files go (default :func:`default_out`).
    on_done : callable, optional
        ``on_done(datasets_or_None)`` at the end (None when it failed or was cancelled).
    viewer : bool
        Open a night viewer on the result.
    **kwargs
        More keywords of :func:`~glue_zeropoint.night.run.measure_night` (``site``,
        ``offline``, ``calibrate``...).

    Returns
    -------
    BackgroundTask
        Started; ``task.wait()`` blocks in a local event loop until it is done,
        ``task.lines`` holds the per-frame lines, ``task.datasets`` the loaded datasets.
    """
    from glue.core.data_factories import load_data

    from ..glue.night import night_factory, register

    raw_dir = Path(raw_dir).expanduser()
    out = Path(out).expanduser() if out else default_out(raw_dir)
    catalog = str(catalog).strip() if catalog else None
    lines = []
    title = f"Measuring the night {raw_dir.name}"
    job = BackgroundTask(_work(str(raw_dir), catalog, out, kwargs, lines), title, app)
    job.lines = lines
    job.datasets = None
    job.viewer = None

    def succeeded(result):
        register()  # the factory (normally registered by the plugin's setup)
        try:
            datasets = load_data(str(out), factory=night_factory)
        except Exception as exc:  # noqa: BLE001 - shown non-modally, never a traceback
            job.report_failure(exc)
            return
        datasets = datasets if isinstance(datasets, list) else [datasets]
        app.add_datasets(datasets)
        job.datasets = datasets
        if viewer:
            from .night_viewer import NightViewer

            job.viewer = app.new_data_viewer(NightViewer, data=datasets[0])
        n_ok = int((result.frames["status"] != "failed").sum())
        _status(app, f"{raw_dir.name}: {n_ok} of {len(result.frames)} frames measured, "
                     f"{result.verdict}; files in {out}")
        if on_done is not None:
            on_done(datasets)

    return start_job(job, app, f"measure the night {raw_dir}", succeeded, on_done)


def measure_night_dialog(session, data_collection):
    """Plugins menu action: ask for the raw folder and a catalog, then
    :func:`measure_night_in_app`."""
    app = session.application
    folder = QtWidgets.QFileDialog.getExistingDirectory(
        app, "Measure a night: the raw folder (bias, dark, flat and light frames)")
    if not folder:
        return None
    spec, ok = QtWidgets.QInputDialog.getText(
        app, "Measure a night",
        "Catalog: a spec (vizier:II/336/apass9, simbad) or a table file;\n"
        "empty: no zero points, the night's own stars only")
    if not ok:
        return None
    return measure_night_in_app(app, folder, spec or None)


def register():
    from glue_qt.config import menubar_plugin

    if MEASURE_NIGHT_LABEL not in [label for label, _f in menubar_plugin.members]:
        menubar_plugin(MEASURE_NIGHT_LABEL)(measure_night_dialog)
