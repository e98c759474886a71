"""Star tools in glue's stock image viewer: pick/remove stars, detect all, aperture overlay.

- ``zp:star`` (:class:`StarTool`): click on a star, or drag a circle around it, to measure it
  (the aperture recentres on the star); click or drag starting inside an existing aperture to
  remove that star.
- ``zp:detect`` (:class:`DetectStarsTool`): find and measure all stars (worker thread, progress,
  Cancel); stars already picked stay.
- ``zp:regions`` (:class:`RegionsMenu`): a drop-down with "Add stars from a ds9 region file…"
  (circles or points, image or sky coordinates; recentred like drawn stars) and "Save
  apertures as ds9 regions…" (sky circles when the image has a WCS).
- :class:`ApertureOverlay`: the apertures of the reference image's stars dataset drawn as one
  matplotlib ``EllipseCollection`` on the viewer axes, redrawn when the stars change. The stars
  dataset itself is added to the viewer as a scatter layer, so subsets of stars (brushed in
  any linked view) show on the image.

- :class:`TableResizeGuard`: keeps glue's table viewers valid when a stars or catalog table
  changes length (glue-qt's table model computes its row order only once).

The tools act on the viewer's reference data, which must be an image made by
:func:`glue_zeropoint.glue.loader.ccd_to_data` (components ``flux``/``uncertainty``/``mask``).
Stars made through the API (not the tool) show on an image viewer after
:func:`show_stars_layer`.
"""

import logging
from pathlib import Path

import numpy as np
from glue.config import viewer_tool
from glue.core.hub import HubListener
from glue.core.message import (
    DataCollectionAddMessage,
    DataCollectionDeleteMessage,
    NumericalDataChangedMessage,
)
from glue.viewers.common.tool import SimpleToolMenu, Tool
from glue.viewers.matplotlib.toolbar_mode import ToolbarModeBase

from ..exceptions import ZeropointError
from ..glue.stars import (
    add_stars,
    find_positions,
    merge_stars,
    peak_within,
    region_positions,
    remove_stars,
    star_at,
    stars_for,
    write_star_regions,
)
from .blit import blit_enabled, install_fast_redraw, is_dynamic_layer, request_redraw
from .menus import BackgroundTask, describe_error, live_widget, show_message

__all__ = ["StarTool", "DetectStarsTool", "RegionsMenu", "ImportRegionsTool",
           "ExportRegionsTool", "import_regions_file", "export_regions_file", "ApertureOverlay",
           "TableResizeGuard", "image_of", "show_stars_layer", "TOOL_IDS", "register"]

log = logging.getLogger(__name__)

TOOL_IDS = ("zp:star", "zp:detect", "zp:regions")
CLICK_RADIUS = 3.0  # screen-independent: a drag shorter than this (pixels of the image) is a click
APERTURE_COLOR = "#00d5ff"


def image_of(viewer):
    """The viewer's reference data if it is a glue-zeropoint image, else ``None``."""
    data = getattr(viewer.state, "reference_data", None)
    if data is None or data.ndim != 2:
        return None
    labels = {cid.label for cid in data.main_components}
    return data if {"flux", "uncertainty", "mask"} <= labels else None


def show_stars_layer(viewer, stars):
    """Add the stars dataset to an image viewer (as a scatter layer) if it is not there."""
    if stars is None or any(layer.layer is stars for layer in viewer.state.layers):
        return
    viewer.add_data(stars)
    for layer in viewer.state.layers:
        if layer.layer is stars:
            layer.color = APERTURE_COLOR
            layer.size = 3
            layer.alpha = 0.9


def _viewer_xy(viewer, image, xdata, ydata):
    """Image pixel (x, y) from axes data coordinates (handles a transposed display)."""
    if viewer.state.x_att is image.pixel_component_ids[0]:
        return ydata, xdata
    return xdata, ydata


class ApertureOverlay(HubListener):
    """Apertures of the reference image's stars, drawn on an image viewer's axes."""

    def __init__(self, viewer):
        from matplotlib.collections import EllipseCollection

        self.viewer = viewer
        self.axes = viewer.axes
        self.collection = EllipseCollection(
            [], [], [], units="xy", offsets=np.zeros((0, 2)),
            offset_transform=self.axes.transData, facecolors="none",
            edgecolors=APERTURE_COLOR, linewidths=1.2, zorder=50, animated=blit_enabled())
        self.axes.add_collection(self.collection, autolim=False)
        self._stars = None
        hub = viewer.session.hub
        hub.subscribe(self, NumericalDataChangedMessage, handler=self._on_change,
                      filter=lambda msg: msg.data is self._stars)
        hub.subscribe(self, DataCollectionAddMessage, handler=self._on_change)
        hub.subscribe(self, DataCollectionDeleteMessage, handler=self._on_change)
        viewer.state.add_callback("reference_data", self._on_change)
        viewer.state.add_callback("x_att", self._on_change)
        self.refresh()

    @property
    def n_apertures(self):
        return len(self.collection.get_offsets())

    def _on_change(self, *args):
        self.refresh()

    def refresh(self):
        viewer = self.viewer
        if viewer is None:
            return
        image = image_of(viewer)
        stars = None if image is None else stars_for(viewer.session.data_collection, image)
        self._stars = stars
        if stars is None or stars.size == 0:
            offsets = np.zeros((0, 2))
            radius = 1.0
        else:
            x, y = np.asarray(stars["x"], float), np.asarray(stars["y"], float)
            if viewer.state.x_att is image.pixel_component_ids[0]:
                x, y = y, x
            offsets = np.column_stack([x, y])
            radius = float(stars.meta.get("zp_aperture", {}).get("r", 5.0))
        n = len(offsets)
        self.collection.set_offsets(offsets)
        self.collection.set_widths(np.full(n, 2 * radius))
        self.collection.set_heights(np.full(n, 2 * radius))
        self.collection.set_angles(np.zeros(n))
        request_redraw(viewer, self.collection)  # the collection is animated: a blit

    def remove(self):
        if self.viewer is None:
            return
        self.viewer.session.hub.unsubscribe_all(self)
        self.viewer.state.remove_callback("reference_data", self._on_change)
        self.viewer.state.remove_callback("x_att", self._on_change)
        try:
            self.collection.remove()
        except (ValueError, NotImplementedError):
            pass
        self.viewer = None


class TableResizeGuard(HubListener):
    """Keep glue's table viewers valid when a table dataset changes length; let plots of the
    stars blit.

    glue-qt's ``DataTableModel`` computes its row order once, so a stars table that gains or
    loses rows (or a catalog fetched again) would make a table viewer index past the end.
    This listener runs before the viewers (high hub priority) and resizes their row order.
    When a stars or matches table changes, glue's matplotlib viewers showing it (e.g. a
    scatter plot of the matches) get :class:`~glue_zeropoint.qt.blit.FastOverlayRedraw`, as
    the image viewers with the star tool have.
    """

    def __init__(self, session):
        self.session = session
        session.hub.subscribe(self, NumericalDataChangedMessage, handler=self._resize,
                              priority=10000)

    def _resize(self, message):
        from glue_qt.viewers.table import TableViewer

        app = self.session.application
        data = message.data
        if app is None or getattr(data, "ndim", None) != 1:
            return
        for tab in app.viewers:
            for viewer in tab:
                model = getattr(viewer, "model", None)
                if (isinstance(viewer, TableViewer) and model is not None
                        and model._data is data and model.order.size != data.shape[0]):
                    viewer.ui.table.clearSelection()
                    model.order = np.arange(data.shape[0])  # a sorted view is re-sorted next
        if is_dynamic_layer(data):
            _blit_plots_of(app, data)


def _blit_plots_of(app, data):
    from glue_qt.viewers.matplotlib.data_viewer import MatplotlibDataViewer

    for tab in app.viewers:
        for viewer in tab:
            fast = getattr(viewer, "_zp_fast_redraw", None)
            if (isinstance(viewer, MatplotlibDataViewer)
                    and (fast is None or fast.canvas is None)
                    and any(getattr(la.layer, "data", la.layer) is data for la in viewer.layers)):
                install_fast_redraw(viewer)


def _guard_tables(session):
    if getattr(session, "_zp_table_guard", None) is None:
        session._zp_table_guard = TableResizeGuard(session)


def _overlay(viewer):
    install_fast_redraw(viewer)
    overlay = getattr(viewer, "_zp_aperture_overlay", None)
    if overlay is None or overlay.viewer is None:
        overlay = ApertureOverlay(viewer)
        viewer._zp_aperture_overlay = overlay
    return overlay


@viewer_tool
class StarTool(ToolbarModeBase):
    """Click (or drag a circle) on a star to measure it; click an aperture to remove it."""

    icon = "glue_star"
    tool_id = "zp:star"
    action_text = "Stars"
    tool_tip = ("Measure stars: click on a star or drag a circle around it; click inside an "
                "aperture to remove that star")
    status_tip = ("CLICK or DRAG a circle on a star to measure it; CLICK inside an aperture to "
                  "remove it")

    def __init__(self, viewer, **kwargs):
        super().__init__(viewer, **kwargs)
        self._press_callback = self._on_press
        self._move_callback = self._on_move
        self._release_callback = self._on_release
        self._start = None
        self._last = None
        self._rubber = None
        self.overlay = _overlay(viewer)
        _guard_tables(viewer.session)

    # mouse handling (left button only; other buttons keep glue's meaning)
    def press(self, event):
        if getattr(event, "button", 1) not in (1, None):
            self._start = None
            return
        super().press(event)

    def _on_press(self, mode):
        if self._event_xdata is None or self._event_ydata is None:
            self._start = None
            return
        self._start = (float(self._event_xdata), float(self._event_ydata))
        self._last = self._start

    def _on_move(self, mode):
        if self._start is None or self._event_xdata is None:
            return
        self._last = (float(self._event_xdata), float(self._event_ydata))
        radius = float(np.hypot(self._last[0] - self._start[0], self._last[1] - self._start[1]))
        if radius < CLICK_RADIUS:
            return
        if self._rubber is None:
            from matplotlib.patches import Circle

            # animated: moving it redraws only the overlays (see .blit)
            self._rubber = Circle(self._start, radius, fill=False, ec="#ffcc00", lw=1.2,
                                  ls="--", zorder=60, animated=blit_enabled())
            self.viewer.axes.add_patch(self._rubber)
        self._rubber.set_center(self._start)
        self._rubber.set_radius(radius)
        self._rubber.set_visible(True)
        request_redraw(self.viewer, self._rubber)

    def _on_release(self, mode):
        if self._start is None:
            return
        if self._event_xdata is not None and self._event_ydata is not None:
            self._last = (float(self._event_xdata), float(self._event_ydata))
        start, end = self._start, self._last or self._start
        self._start = self._last = None
        self._hide_rubber()
        radius = float(np.hypot(end[0] - start[0], end[1] - start[1]))
        self.act(start[0], start[1], radius if radius >= CLICK_RADIUS else 0.0)

    def _hide_rubber(self):
        if self._rubber is not None and self._rubber.get_visible():
            self._rubber.set_visible(False)
            request_redraw(self.viewer, self._rubber)

    def deactivate(self):
        self._hide_rubber()
        self._start = None
        super().deactivate()

    # the action itself (also called directly by scripts)
    def act(self, xdata, ydata, radius=0.0):
        """Remove the star whose aperture holds ``(xdata, ydata)``, or measure a new one there.

        ``radius`` > 0: the star is the brightest pixel within that circle (axes data units).
        Returns ``('added' | 'removed' | None, star_id)``.
        """
        viewer = self.viewer
        image = image_of(viewer)
        if image is None:
            show_message(viewer, "The star tool works on images loaded by glue-zeropoint "
                                 "(a raw night or a calibrated product): make one the "
                                 "reference data of this viewer.", error=False)
            return None, None
        dc = viewer.session.data_collection
        x, y = _viewer_xy(viewer, image, xdata, ydata)
        stars = stars_for(dc, image)
        hit = star_at(stars, x, y)
        try:
            if hit is not None:
                remove_stars(dc, image, [hit])
                viewer.set_status(f"removed star {hit}")
                return "removed", hit
            if radius > 0:
                x, y = peak_within(image, x, y, radius)
            before = set(np.asarray(stars["star_id"]).tolist()) if stars is not None else set()
            stars = add_stars(dc, image, [(x, y)])
        except ZeropointError as err:
            show_message(viewer, describe_error(err))
            return None, None
        show_stars_layer(viewer, stars)
        new = sorted(set(np.asarray(stars["star_id"]).tolist()) - before)
        if not new:
            viewer.set_status("no new star: it is already measured")
            return None, None
        row = int(np.flatnonzero(np.asarray(stars["star_id"]) == new[0])[0])
        viewer.set_status(f"star {new[0]} at ({stars['x'][row]:.1f}, {stars['y'][row]:.1f}): "
                          f"flux {stars['flux'][row]:.0f} ± {stars['flux_err'][row]:.0f} e-")
        return "added", new[0]

    def close(self):
        overlay = getattr(self.viewer, "_zp_aperture_overlay", None) if self.viewer else None
        if overlay is not None:
            overlay.remove()
            self.viewer._zp_aperture_overlay = None
        if self._rubber is not None:
            self._rubber.remove()
            self._rubber = None
        fast = getattr(self.viewer, "_zp_fast_redraw", None) if self.viewer else None
        if fast is not None:
            fast.remove()
            self.viewer._zp_fast_redraw = None
        super().close()


@viewer_tool
class DetectStarsTool(Tool):
    """Find and measure all the stars of the reference image (in a worker thread)."""

    icon = "glue_point"
    tool_id = "zp:detect"
    action_text = "Detect stars"
    tool_tip = "Detect and measure all stars in the image (keeps the stars already picked)"

    def __init__(self, viewer):
        super().__init__(viewer)
        self.task = None

    def activate(self):
        viewer = self.viewer
        image = image_of(viewer)
        if image is None:
            show_message(viewer, "Detect stars works on images loaded by glue-zeropoint: make "
                                 "one the reference data of this viewer.", error=False)
            return None
        if self.task is not None and not self.task.finished:
            return self.task
        _overlay(viewer)
        task = BackgroundTask(lambda progress: find_positions(image, progress=progress),
                              f"Detecting stars in {image.label}", viewer)

        def succeeded(found):
            if self.viewer is None or live_widget(viewer) is None:  # the viewer was closed
                return
            dc = viewer.session.data_collection
            if image not in dc:
                return
            try:
                stars, added = merge_stars(dc, image, found, fwhm=found.meta.get("fwhm"),
                                           remeasure=True)
            except ZeropointError as err:
                show_message(viewer, describe_error(err))
                return
            show_stars_layer(viewer, stars)
            viewer.set_status(f"detected {len(found)} stars, {len(added)} new")

        task.succeeded.connect(succeeded)
        task.failed.connect(lambda exc: show_message(viewer, describe_error(exc)))
        self.task = task.start()
        return task


REGION_FILTER = "ds9 regions (*.reg);;All files (*)"


def _regions_image(viewer):
    image = image_of(viewer)
    if image is None:
        show_message(viewer, "ds9 regions work on images loaded by glue-zeropoint: make one the "
                             "reference data of this viewer.", error=False)
    return image


def import_regions_file(viewer, path):
    """Add the stars of a ds9 region file to the viewer's image.

    The file is read in a worker thread (regions' parser takes ~1 s for 2,000 regions), the
    stars are then measured in the GUI thread, as a detection's are. Errors are a non-modal
    message. Returns the :class:`~.menus.BackgroundTask` (``None`` when there is no image);
    its ``result`` is the pixel positions read, ``added_ids`` the new stars' ids.
    """
    image = _regions_image(viewer)
    if image is None:
        return None
    task = BackgroundTask(lambda progress: region_positions(image, path),
                          f"Reading {Path(path).name}", viewer)
    task.added_ids = None

    def succeeded(xy):
        if live_widget(viewer) is None or viewer.state is None:  # the viewer was closed
            return
        dc = viewer.session.data_collection
        if image not in dc:
            return
        try:
            stars, added = merge_stars(dc, image, xy, recenter=True)
        except ZeropointError as err:
            show_message(viewer, describe_error(err))
            return
        task.added_ids = added
        if stars is not None:
            _overlay(viewer)
            show_stars_layer(viewer, stars)
        viewer.set_status(f"{len(added)} star(s) added from {path}")

    task.succeeded.connect(succeeded)
    task.failed.connect(lambda exc: show_message(viewer, describe_error(exc)))
    return task.start()


def export_regions_file(viewer, path):
    """Save the image's apertures as ds9 circles; errors are a non-modal message. Returns the
    path written (``None`` on error)."""
    image = _regions_image(viewer)
    if image is None:
        return None
    try:
        written = write_star_regions(viewer.session.data_collection, image, path)
    except ZeropointError as err:
        show_message(viewer, describe_error(err))
        return None
    except OSError as err:
        show_message(viewer, f"{path}: cannot be written ({err.strerror or err})")
        return None
    viewer.set_status(f"apertures saved to {written}")
    return written


@viewer_tool
class RegionsMenu(SimpleToolMenu):
    """Toolbar drop-down: stars from, and apertures to, ds9 region files."""

    icon = "glue_open"
    tool_id = "zp:regions"
    action_text = "ds9 regions"
    tool_tip = "Stars from a ds9 region file, or the apertures saved as one"


@viewer_tool
class ImportRegionsTool(Tool):
    """Add the stars marked in a ds9 region file (image or sky coordinates; recentred)."""

    icon = "glue_open"
    tool_id = "zp:regions:import"
    action_text = "Add stars from a ds9 region file…"
    tool_tip = "Measure the stars marked in a ds9 region file (circles or points)"

    def activate(self):
        from qtpy import QtWidgets

        if _regions_image(self.viewer) is None:
            return None
        path, _filter = QtWidgets.QFileDialog.getOpenFileName(
            self.viewer, "Stars from a ds9 region file", "", REGION_FILTER)
        return import_regions_file(self.viewer, path) if path else None


@viewer_tool
class ExportRegionsTool(Tool):
    """Save the apertures of the listed stars as ds9 circles (sky coordinates with a WCS)."""

    icon = "glue_filesave"
    tool_id = "zp:regions:export"
    action_text = "Save apertures as ds9 regions…"
    tool_tip = "Write the stars' apertures as a ds9 region file"

    def activate(self):
        from qtpy import QtWidgets

        image = _regions_image(self.viewer)
        if image is None:
            return None
        path, _filter = QtWidgets.QFileDialog.getSaveFileName(
            self.viewer, "Save apertures as ds9 regions", f"{image.label}.reg", REGION_FILTER)
        return export_regions_file(self.viewer, path) if path else None


REGION_SUBTOOLS = ["zp:regions:import", "zp:regions:export"]


def register():
    """Make sure the tools are registered and in the stock image viewer's toolbar."""
    from glue_qt.viewers.image import ImageViewer

    for cls in (StarTool, DetectStarsTool, RegionsMenu, ImportRegionsTool, ExportRegionsTool):
        if cls.tool_id not in viewer_tool.members:
            viewer_tool.add(cls)
    missing = [tool_id for tool_id in TOOL_IDS if tool_id not in ImageViewer.tools]
    if missing:
        ImageViewer.tools = list(ImageViewer.tools) + missing
    if "zp:regions" not in ImageViewer.subtools:
        ImageViewer.subtools = {**ImageViewer.subtools, "zp:regions": list(REGION_SUBTOOLS)}
