"""Work-arounds for glue-qt behaviour the plugin's users would otherwise see.

- glue-qt 0.4's table viewer model (``DataTableModel.data_changed``) emits ``dataChanged`` with
  an index range that is never valid (``index(columnCount, rowCount)``, rows and columns
  swapped and one past the end; ``index(0, 0)`` of an empty table). Since Qt 6.9 a visible
  view prints "dataChanged() called with an invalid index range" for it, e.g. every time a
  table viewer showing a subset is closed (the demo's star table, on quitting the app).
  :func:`fix_table_model` replaces that method with one emitting the table's real range
  (nothing for an empty table) -- only while glue-qt's method still has the bug, so a fixed
  glue-qt is left alone.
- :func:`offscreen_messages_filtered`: Qt's ``offscreen`` platform (``--no-gui``, CI) prints
  "This plugin does not support propagateSizeHints()" whenever a window is shown; that is
  the platform's limitation, not a problem of ours. Inside this context the message is
  dropped; every other Qt message still goes to stderr.
"""

import inspect
import logging
import sys
from contextlib import contextmanager

__all__ = ["fix_table_model", "table_model_needs_fix", "offscreen_messages_filtered",
           "register"]

log = logging.getLogger(__name__)

_BUGGY_RANGE = "self.index(self.columnCount(), self.rowCount())"
_OFFSCREEN_NOISE = ("This plugin does not support propagateSizeHints()",)


def table_model_needs_fix(model_class=None):
    """True while glue-qt's ``DataTableModel.data_changed`` builds the invalid range."""
    if model_class is None:
        from glue_qt.viewers.table.data_viewer import DataTableModel as model_class
    method = model_class.data_changed
    if getattr(method, "_zp_fixed", False):
        return False
    try:
        return _BUGGY_RANGE in inspect.getsource(method)
    except (OSError, TypeError):  # no source (a frozen app): leave glue-qt as it is
        return False


def _data_changed(self):
    """Refresh the table and announce the change for the rows and columns that exist."""
    self._update_visible()
    self.data_by_row_and_column.cache_clear()
    rows, columns = self.rowCount(), self.columnCount()
    if rows > 0 and columns > 0:
        self.dataChanged.emit(self.index(0, 0), self.index(rows - 1, columns - 1))
    self.layoutChanged.emit()


_data_changed._zp_fixed = True


def fix_table_model():
    """Give glue-qt's table model a valid ``dataChanged`` range (see the module docstring).

    Returns True if the method was replaced now.
    """
    from glue_qt.viewers.table.data_viewer import DataTableModel

    if not table_model_needs_fix(DataTableModel):
        return False
    DataTableModel.data_changed = _data_changed
    log.debug("glue-qt DataTableModel.data_changed replaced (valid dataChanged range)")
    return True


@contextmanager
def offscreen_messages_filtered():
    """Drop the offscreen platform's size-hint message; pass every other Qt message on."""
    from qtpy import QtCore

    def handler(mode, context, message):
        if message in _OFFSCREEN_NOISE:
            return
        print(message, file=sys.stderr)

    previous = QtCore.qInstallMessageHandler(handler)
    try:
        yield
    finally:
        QtCore.qInstallMessageHandler(previous)


def register():
    """Apply :func:`fix_table_model` (glue loads the plugin before any viewer exists)."""
    fix_table_model()
