"""Real mouse events on a glue viewer's matplotlib canvas (press, moves, release through Qt),
so tests exercise the tools and glue's ROI selection as a user's hand does."""

from qtpy import QtCore, QtWidgets


def canvas_point(viewer, x, y):
    """Qt widget position (logical pixels, y down) of data point (x, y) on the viewer canvas."""
    canvas = viewer.axes.figure.canvas
    dx, dy = viewer.axes.transData.transform((x, y))
    ratio = canvas.device_pixel_ratio
    height = canvas.get_width_height()[1]  # logical pixels
    return QtCore.QPoint(int(round(dx / ratio)), int(round(height - dy / ratio)))


def click(qtbot, viewer, x, y):
    canvas = viewer.axes.figure.canvas
    qtbot.mouseClick(canvas, QtCore.Qt.MouseButton.LeftButton, pos=canvas_point(viewer, x, y))


def drag(qtbot, viewer, start, end):
    """Press at ``start``, move in three steps, release at ``end`` (data coordinates)."""
    canvas = viewer.axes.figure.canvas
    button = QtCore.Qt.MouseButton.LeftButton
    qtbot.mousePress(canvas, button, pos=canvas_point(viewer, *start))
    for t in (0.3, 0.7, 1.0):
        point = (start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
        qtbot.mouseMove(canvas, canvas_point(viewer, *point))
        QtWidgets.QApplication.processEvents()  # each move handled, none merged with the next
    qtbot.mouseRelease(canvas, button, pos=canvas_point(viewer, *end))
    QtWidgets.QApplication.processEvents()


def drag_rectangle(qtbot, viewer, x0, x1, y0, y1):
    """Draw a rectangular region with glue's own rectangle-selection tool, by hand.

    Returns the ROI glue made of it (the drag is rounded to screen pixels, so it is close to,
    not exactly, the rectangle asked for). Start inside the axes: a press on their edge is
    outside them for matplotlib, and glue then starts no selection.
    """
    groups = viewer.session.data_collection.subset_groups
    before = list(groups)
    viewer.figure.canvas.draw()
    viewer.toolbar.active_tool = "select:rectangle"
    drag(qtbot, viewer, (x0, y0), (x1, y1))
    viewer.toolbar.active_tool = None
    changed = [g for g in groups if g not in before] or list(
        viewer.session.edit_subset_mode.edit_subset)
    return changed[-1].subset_state.roi
