"""Menu actions, background tasks and non-modal messages for the Qt side.

- :class:`BackgroundTask`: runs ``func(progress)`` in a worker thread with a non-modal
  progress dialog (and the main window's status bar) and a Cancel button; the result or the
  error comes back in the GUI thread. Cancel makes the next ``progress`` call raise
  `~glue_zeropoint.exceptions.Cancelled`.
- :func:`qt_task_runner`: installed with :func:`glue_zeropoint.glue.loader.set_task_runner`, so
  glue's own File > Open / drag-and-drop / session restore of a raw folder calibrate in a worker
  thread while the window keeps repainting (a local event loop waits for the worker).
- :func:`show_message`: a non-modal message box (``show()``, never ``exec()``) plus the status
  bar; this is how errors of our code (`~glue_zeropoint.exceptions.ZeropointError`) reach the user.
- Plugins menu: *Open raw night folder…* picks a folder and loads it asynchronously
  (:func:`open_raw_night`); File > Import data > *Raw night folder (calibrate)…* does the same
  through glue's importer hook (:func:`import_raw_night`). glue's File > Open dialog picks files
  only: there it opens calibrated products (``*_cal.fits``); a folder can also be given on the
  command line (``glue RAW_DIR``) or dropped on the window.
"""

import logging
import sys
from pathlib import Path

from qtpy import QtCore, QtWidgets

from ..exceptions import Cancelled, ZeropointError

__all__ = ["BackgroundTask", "qt_task_runner", "show_message", "main_window",
           "open_raw_night", "open_raw_night_dialog", "import_raw_night", "report_load_error",
           "OPEN_RAW_NIGHT_LABEL", "IMPORT_RAW_NIGHT_LABEL", "register"]

log = logging.getLogger(__name__)

OPEN_RAW_NIGHT_LABEL = "Open raw night folder…"
IMPORT_RAW_NIGHT_LABEL = "Raw night folder (calibrate)…"

# tasks and message boxes alive until they finish / are closed (Qt objects need an owner)
_alive = set()


def main_window():
    """The glue application window (the first top-level QMainWindow), or ``None``."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        return None
    active = app.activeWindow()
    if isinstance(active, QtWidgets.QMainWindow):
        return active
    for widget in app.topLevelWidgets():
        if isinstance(widget, QtWidgets.QMainWindow) and widget.isVisible():
            return widget
    for widget in app.topLevelWidgets():
        if isinstance(widget, QtWidgets.QMainWindow):
            return widget
    return None


def live_widget(widget):
    """``widget`` if its Qt object still exists, else ``None`` (a viewer or window closed while
    a background task ran: touching it would raise RuntimeError inside a Qt slot)."""
    if widget is None:
        return None
    try:
        widget.objectName()
    except RuntimeError:
        return None
    return widget


def _status(parent, text, timeout_ms=8000):
    parent = live_widget(parent)
    window = parent if isinstance(parent, QtWidgets.QMainWindow) else main_window()
    if window is not None:
        window.statusBar().showMessage(text, timeout_ms)


def show_message(parent, text, *, title="glue-zeropoint", error=True, detail=None):
    """Show ``text`` non-modally (a message box shown with ``show()``) and in the status bar.

    Returns the message box (already shown; it deletes itself when closed).
    """
    parent = live_widget(parent)
    _status(parent, text.splitlines()[0] if text else "")
    icon = QtWidgets.QMessageBox.Icon.Warning if error else QtWidgets.QMessageBox.Icon.Information
    box = QtWidgets.QMessageBox(icon, title, text, QtWidgets.QMessageBox.StandardButton.Ok,
                                parent)
    if detail:
        box.setInformativeText(detail)
    box.setWindowModality(QtCore.Qt.WindowModality.NonModal)
    box.setModal(False)
    box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose, True)
    _alive.add(box)
    box.finished.connect(lambda *_: _alive.discard(box))
    box.show()
    return box


def describe_error(exc):
    """A one-paragraph message for an exception (ours as they are, others with their type)."""
    if isinstance(exc, ZeropointError):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}): {exc}"


class _Worker(QtCore.QThread):
    """Run ``func(*args)`` in a thread; emit ``result(value)`` or ``error(exc_info)``, always.

    Unlike glue's ``Worker`` this also reports a ``BaseException`` (``SystemExit``,
    ``KeyboardInterrupt``, a test's network guard), so that whoever waits for the task is
    always told it ended.
    """

    result = QtCore.Signal(object)
    error = QtCore.Signal(object)

    def __init__(self, func, *args):
        super().__init__()
        self.func = func
        self.args = args

    def run(self):
        try:
            value = self.func(*self.args)
        except BaseException:  # noqa: BLE001 - reported to the GUI thread, never swallowed
            self.error.emit(sys.exc_info())
        else:
            self.result.emit(value)


class BackgroundTask(QtCore.QObject):
    """Run ``func(progress)`` in a worker thread, with a non-modal progress dialog and Cancel.

    Parameters
    ----------
    func : callable
        ``func(progress)``; ``progress(done, total, message)`` may raise ``Cancelled``.
    title : str
        Shown in the progress dialog and the status bar.
    parent : QWidget, optional
    dialog : bool
        Show a progress dialog (after ``min_duration_ms``); the status bar is always used.
    abandon_on_cancel : bool
        On Cancel, report ``cancelled`` at once and ignore whatever the worker returns later
        (for a network query waiting on a socket, which cannot stop at a progress report).
        Otherwise the task stops at its next progress report (calibration: files already
        written stay complete).

    Signals ``succeeded(result)``, ``failed(exception)``, ``cancelled()``, and ``done()`` after
    any of them.
    """

    succeeded = QtCore.Signal(object)
    failed = QtCore.Signal(object)
    cancelled = QtCore.Signal()
    done = QtCore.Signal()
    _progressed = QtCore.Signal(int, int, str)

    def __init__(self, func, title, parent=None, *, dialog=True, min_duration_ms=300,
                 abandon_on_cancel=False):
        super().__init__()
        self.title = title
        self.parent_widget = parent
        self._cancel_requested = False
        self._abandon = abandon_on_cancel
        self.finished = False
        self.result = None
        self.error = None
        self._worker = _Worker(func, self._progress)
        self._worker.result.connect(self._on_result)
        self._worker.error.connect(self._on_error)
        # keep this object (and its QThread) alive until the thread has really ended
        self._worker.finished.connect(self._on_thread_end)
        self._progressed.connect(self._on_progress)
        self.dialog = None
        if dialog:
            self.dialog = QtWidgets.QProgressDialog(title, "Cancel", 0, 0, parent)
            self.dialog.setWindowTitle("glue-zeropoint")
            self.dialog.setWindowModality(QtCore.Qt.WindowModality.NonModal)
            self.dialog.setModal(False)
            self.dialog.setMinimumDuration(min_duration_ms)
            self.dialog.setAutoClose(False)
            self.dialog.setAutoReset(False)
            self.dialog.canceled.connect(self.cancel)

    # worker thread
    def _progress(self, done, total, message=""):
        if self._cancel_requested:
            raise Cancelled(f"{self.title}: cancelled")
        self._progressed.emit(int(done), int(total), str(message or ""))

    # GUI thread
    def start(self):
        _alive.add(self)
        _status(self.parent_widget, f"{self.title}…", 0)
        if live_widget(self.dialog) is not None:
            self.dialog.setValue(0)
        self._worker.start()
        return self

    def cancel(self):
        """Ask the task to stop at its next progress report (or abandon it, see above)."""
        if self.finished:
            return
        self._cancel_requested = True
        if self._abandon:
            self.error = Cancelled(f"{self.title}: cancelled")
            self._finish(wait=False)
            _status(self.parent_widget, f"{self.title}: cancelled")
            self.cancelled.emit()
            self.done.emit()
        elif live_widget(self.dialog) is not None:
            self.dialog.setLabelText(f"{self.title}: cancelling…")

    def _on_thread_end(self):
        if not self.finished:
            # the thread ended without emitting result or error (cannot happen with _Worker,
            # kept so that a waiting event loop can never be left hanging)
            exc = RuntimeError(f"{self.title}: the worker thread ended without a result")
            self._on_error((type(exc), exc, None))
        if self.finished:
            _alive.discard(self)

    @property
    def running(self):
        """True while the worker thread runs (also after an abandoned cancel)."""
        return self._worker.isRunning()

    @property
    def cancel_requested(self):
        return self._cancel_requested

    def _on_progress(self, done, total, message):
        dialog = live_widget(self.dialog)
        if dialog is not None and not self.finished:
            dialog.setMaximum(max(total, 0))
            dialog.setValue(min(done, total) if total > 0 else 0)
            if message and not self._cancel_requested:
                dialog.setLabelText(f"{self.title}\n{message}")
        if message and not self.finished:
            _status(self.parent_widget, f"{self.title}: {message}", 0)

    def _finish(self, wait=True):
        self.finished = True
        if wait:
            self._worker.wait()
        dialog, self.dialog = live_widget(self.dialog), None
        if dialog is not None:  # (gone with its parent when the viewer was closed)
            try:
                dialog.canceled.disconnect(self.cancel)
            except (TypeError, RuntimeError):  # already disconnected
                pass
            dialog.close()
            dialog.deleteLater()
        if not self._worker.isRunning():
            _alive.discard(self)

    def _on_result(self, result):
        if self.finished:  # abandoned
            return
        self.result = result
        try:
            self._finish()
            _status(self.parent_widget, f"{self.title}: done")
            self.succeeded.emit(result)
        finally:  # whoever waits (a local event loop) is always released
            self.done.emit()

    def _on_error(self, exc_info):
        if self.finished:  # abandoned
            return
        exc = exc_info[1]
        self.error = exc
        try:
            self._finish()
            if isinstance(exc, Cancelled):
                _status(self.parent_widget, f"{self.title}: cancelled")
                self.cancelled.emit()
            else:
                if not isinstance(exc, ZeropointError):
                    log.error("%s failed", self.title, exc_info=exc_info)
                _status(self.parent_widget, f"{self.title}: failed")
                self.failed.emit(exc)
        finally:
            self.done.emit()

    def wait(self, timeout_ms=None):
        """Block in a local event loop (the GUI keeps running) until the task is done."""
        if self.finished:
            return
        loop = QtCore.QEventLoop()
        self.done.connect(loop.quit)
        if timeout_ms is not None:
            QtCore.QTimer.singleShot(int(timeout_ms), loop.quit)
        if not self.finished:
            loop.exec()


def qt_task_runner(task, title):
    """Task runner for :func:`glue_zeropoint.glue.loader.run_task` in a Qt application.

    In the GUI thread: run ``task`` in a worker thread with a progress dialog, keep the event
    loop running while waiting, then return its result or raise its exception. Elsewhere (no
    QApplication, or already in a worker thread): call it directly.
    """
    app = QtWidgets.QApplication.instance()
    if app is None or QtCore.QThread.currentThread() is not app.thread():
        return task(None)
    job = BackgroundTask(task, title, main_window()).start()
    job.wait()
    if job.error is not None:
        raise job.error
    return job.result


def report_load_error(message):
    """Error reporter of the raw-night factory: a non-modal message (GUI thread), else raise."""
    from ..exceptions import InputError

    app = QtWidgets.QApplication.instance()
    if app is None or QtCore.QThread.currentThread() is not app.thread():
        raise InputError(message)
    show_message(main_window(), message)


def open_raw_night(app, path, *, on_done=None):
    """Load a raw-night folder (or folder of products) into ``app`` without blocking.

    Calibration (or reading existing products) runs in a worker thread with progress and
    Cancel; the datasets are added to the app when done; errors show non-modally. Returns the
    :class:`BackgroundTask`; ``on_done(datasets_or_None)`` is called at the end.
    """
    from glue.core.data_factories import load_data

    from ..glue.loader import progress_override, raw_night_factory

    path = str(Path(path).expanduser())

    def work(progress):
        with progress_override(progress):
            result = load_data(path, factory=raw_night_factory)
        return result if isinstance(result, list) else [result]

    job = BackgroundTask(work, f"Loading {Path(path).name}", app)

    def succeeded(datasets):
        if not datasets and job.cancel_requested:  # the factory turns Cancelled into []
            _status(app, f"Loading {Path(path).name}: cancelled")
            datasets = None
        elif datasets:
            app.add_datasets(datasets)
            _status(app, f"Loaded {len(datasets)} images from {Path(path).name}")
        if on_done is not None:
            on_done(datasets)

    return start_job(job, app, f"load {path}", succeeded, on_done)


def start_job(job, app, what, succeeded, on_done=None, message=None):
    """Connect a :class:`BackgroundTask` and start it: ``succeeded(result)`` on success; on
    failure a non-modal message, ``message(error text)`` or "Could not <what>: ...";
    ``on_done(None)`` after a failure or a cancel (``succeeded`` calls ``on_done`` itself).
    Returns the started task."""

    def failed(exc):
        text = describe_error(exc)
        show_message(app, message(text) if message else f"Could not {what}:\n{text}")
        if on_done is not None:
            on_done(None)

    def cancelled():
        if on_done is not None:
            on_done(None)

    job.succeeded.connect(succeeded)
    job.failed.connect(failed)
    job.cancelled.connect(cancelled)
    job.report_failure = failed
    return job.start()


def open_raw_night_dialog(session, data_collection):
    """Plugins menu action: pick a folder, then :func:`open_raw_night`."""
    app = session.application
    folder = QtWidgets.QFileDialog.getExistingDirectory(
        app, "Open a raw night (folder of bias, dark, flat and light frames)")
    if folder:
        return open_raw_night(app, folder)
    return None


def import_raw_night(folder=None):
    """File > Import data entry: pick a raw-night folder, return its datasets.

    glue calls importers synchronously; the calibration still runs in a worker thread with a
    progress dialog (through the factory's task runner) and errors show non-modally.
    """
    from glue.core.data_factories import load_data

    from ..glue.loader import raw_night_factory

    if folder is None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            main_window(), "Import a raw night (folder of bias, dark, flat and light frames)")
    if not folder:
        return []
    result = load_data(str(folder), factory=raw_night_factory)
    return result if isinstance(result, list) else [result]


def register():
    """Menu entries (Plugins, File > Import data), the Qt task runner and error reporter."""
    from glue.config import importer
    from glue_qt.config import menubar_plugin

    from ..glue.loader import set_error_reporter, set_task_runner

    set_task_runner(qt_task_runner)
    set_error_reporter(report_load_error)
    if OPEN_RAW_NIGHT_LABEL not in [label for label, _f in menubar_plugin.members]:
        menubar_plugin(OPEN_RAW_NIGHT_LABEL)(open_raw_night_dialog)
    if IMPORT_RAW_NIGHT_LABEL not in [label for label, _f in importer.members]:
        importer(IMPORT_RAW_NIGHT_LABEL)(import_raw_night)
