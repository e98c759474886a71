"""Open a night from the archive with a click in a scatter plot (the Qt side).

:class:`OpenNightTool` (``zp:open_night``) is added to glue's scatter viewer: with it active,
a click on a point of an archive dataset (``glue-zeropoint archive``'s frames or nights, see
:mod:`glue_zeropoint.glue.archive`) adds that night's *Night* dataset to the session and
opens it in the night viewer; a night already open is shown again. The logic that finds the
night and builds its dataset is in :mod:`glue_zeropoint.glue.archive` (no Qt there).
"""

import numpy as np
from glue.config import viewer_tool
from glue.viewers.matplotlib.toolbar_mode import ToolbarModeBase

from ..exceptions import ZeropointError
from .menus import describe_error, show_message

__all__ = ["OpenNightTool", "night_at", "register"]

#: a click this far (screen pixels) from every point opens nothing
PICK_RADIUS_PX = 12.0


def night_at(viewer, xdata, ydata):
    """``(data, row)`` of the archive point nearest the click at ``(xdata, ydata)`` (axes data
    units) among the viewer's visible archive layers, or ``(None, None)`` when no point lies
    within :data:`PICK_RADIUS_PX`."""
    state = viewer.state
    ax = viewer.axes
    click = ax.transData.transform([[xdata, ydata]])[0]
    best = (None, None, PICK_RADIUS_PX)
    for layer in state.layers:
        data = getattr(layer.layer, "data", layer.layer)
        if data.meta.get("zp_kind") not in ("archive_frames", "archive_nights") or \
                not layer.visible:
            continue
        try:
            x = np.asarray(data[state.x_att], float)
            y = np.asarray(data[state.y_att], float)
        except Exception:  # noqa: BLE001 - axes of another dataset: nothing to pick here
            continue
        ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if not ok.size:
            continue
        if layer.layer is not data:  # a subset layer: only its points
            ok = ok[np.asarray(layer.layer.to_mask(), bool)[ok]]
            if not ok.size:
                continue
        pts = ax.transData.transform(np.column_stack([x[ok], y[ok]]))
        d = np.hypot(pts[:, 0] - click[0], pts[:, 1] - click[1])
        k = int(np.argmin(d))
        if d[k] < best[2]:
            best = (data, int(ok[k]), float(d[k]))
    return best[0], best[1]


def open_night_at(viewer, xdata, ydata):
    """Open the night of the archive point under the click (see :func:`night_at`) in a night
    viewer; returns the *Night* dataset, or None (nothing under the click)."""
    from ..glue.archive import night_from_archive

    data, row = night_at(viewer, xdata, ydata)
    if data is None:
        viewer.set_status("no archive point under the click")
        return None
    name = data.meta["zp_archive_nights"][str(int(np.asarray(data["night_id"])[row]))]
    dc = viewer.session.data_collection
    night = next((d for d in dc if d.meta.get("zp_archive_night") == name), None)
    try:
        if night is None:
            night = night_from_archive(data.meta["zp_archive"], name)
            dc.append(night)
    except ZeropointError as err:
        show_message(viewer, describe_error(err))
        return None
    from .night_viewer import NightViewer

    app = viewer.session.application
    if app is not None:
        app.new_data_viewer(NightViewer, data=night)
    viewer.set_status(f"opened night {name}")
    return night


@viewer_tool
class OpenNightTool(ToolbarModeBase):
    """Click a night (or one of its frames) in a plot of the archive to open that night."""

    icon = "glue_point"
    tool_id = "zp:open_night"
    action_text = "Open night"
    tool_tip = "Open a night of the archive: click its point in the plot"
    status_tip = "CLICK a point of the archive to open its night in a night viewer"

    def __init__(self, viewer, **kwargs):
        super().__init__(viewer, **kwargs)
        self._release_callback = self._on_release

    def _on_release(self, mode):
        if self._event_xdata is None or self._event_ydata is None:
            return
        open_night_at(self.viewer, float(self._event_xdata), float(self._event_ydata))


def register():
    """Register the tool and put it in glue's scatter viewer toolbar."""
    from glue_qt.viewers.scatter import ScatterViewer

    if OpenNightTool.tool_id not in viewer_tool.members:
        viewer_tool.add(OpenNightTool)
    if OpenNightTool.tool_id not in ScatterViewer.tools:
        ScatterViewer.tools = list(ScatterViewer.tools) + [OpenNightTool.tool_id]
