""""Match to sky": give an image a WCS by clicking a few stars and their catalog counterparts.

With the ``zp:match_sky`` tool active in an image viewer, click a star on the image (the click
snaps to the star's centroid), then click its counterpart in a scatter viewer that shows a
catalog's RA/Dec; repeat. From 3 pairs on, the WCS is fitted from the pairs (astropy's fit from
points, :func:`~glue_zeropoint.astrometry.fit_wcs_from_pairs`), refined with every detected
star matched to the catalog (:func:`~glue_zeropoint.astrometry.refine_wcs`) and attached to the
image (:func:`~glue_zeropoint.glue.wcs_update.attach_wcs`), so linked catalog markers land on
the stars at once. Right-click on the image undoes the last pair. Messages go to the status bar
and to non-modal message boxes, never to a modal dialog.

:class:`~glue_zeropoint.glue.match_sky.SkyMatcher` (glue-core, no Qt) holds the pairs and the
fit, so scripts and tests can drive it directly; the science (snapping a click to a star, the
nearest catalog star, the fit and its refinement) is :mod:`glue_zeropoint.astrometry.pairs`.
This module keeps only the Qt tool that feeds it clicks and draws the pairs.
"""

import logging
import warnings

from glue.config import viewer_tool
from glue.viewers.common.tool import Tool

from ..exceptions import ZeropointError
from ..glue.match_sky import SkyMatcher, catalog_radec_ids

__all__ = ["SkyMatcher", "MatchSkyTool", "catalog_radec_ids", "register"]

log = logging.getLogger(__name__)

TOOL_ID = "zp:match_sky"
PAIR_COLOR = "#ff3df5"


def _all_viewers(viewer):
    app = getattr(getattr(viewer, "session", None), "application", None)
    tabs = getattr(app, "viewers", None) or ()
    return [v for tab in tabs for v in tab]


def _is_sky_view(viewer):
    state = getattr(viewer, "state", None)
    x_att = getattr(state, "x_att", None)
    y_att = getattr(state, "y_att", None)
    if x_att is None or y_att is None or getattr(x_att, "parent", None) is None:
        return False
    data = x_att.parent
    if getattr(data, "ndim", None) != 1:
        return False
    ra_id, dec_id = catalog_radec_ids(data)
    return ra_id is not None and x_att is ra_id and y_att is dec_id


class MatchSkyTool(Tool):
    """Toggle a match-to-sky session on an image viewer.

    A push button rather than a toolbar mode: glue switches off the active mode of a viewer
    as soon as another viewer gets the focus, and the user has to click in the catalog view.
    While the session is on, clicks on the image (when no other mode such as pan/zoom is
    active) pick stars and clicks in any RA/Dec scatter view pick their counterparts. Press
    the button again to end the session.
    """

    icon = "glue_crosshair"
    tool_id = TOOL_ID
    action_text = "Match to sky"
    tool_tip = ("Match to sky: press, then click a star on the image and the same star in a "
                "RA/Dec scatter view of the catalog; three pairs or more give the image a "
                "WCS. Right-click on the image undoes the last pair; press again to stop.")
    status_tip = ("CLICK a star, then its counterpart in the catalog's RA/Dec view "
                  "(3+ pairs fit the WCS; right-click: undo)")

    def __init__(self, viewer=None):
        super().__init__(viewer=viewer)
        self.matcher = None
        self.running = False
        self._sky_connections = []
        self._image_connection = None
        self._artists = []

    # ------------------------------------------------------------------ plumbing
    def _image(self):
        data = getattr(self.viewer.state, "reference_data", None)
        if data is None or data.ndim != 2:
            return None
        return data

    def _ensure_matcher(self):
        image = self._image()
        if image is None:
            return None
        if self.matcher is None or self.matcher.image is not image:
            self.matcher = SkyMatcher(image)
        return self.matcher

    def activate(self):
        """The toolbar button: start a session, or end the running one."""
        if self.running:
            self.stop()
        else:
            self.start()

    def start(self):
        if self._ensure_matcher() is None:
            self._status("Match to sky works on a 2-D image: make one the reference data")
            return
        toolbar = getattr(self.viewer, "toolbar", None)
        if toolbar is not None and getattr(toolbar, "active_tool", None) is not None:
            toolbar.active_tool = None  # pan/zoom or selection would react to the clicks too
        canvas = self.viewer.axes.figure.canvas
        self._image_connection = canvas.mpl_connect("button_press_event", self._on_image_press)
        self._connect_sky_views()
        self.running = True
        self._status(self.status_tip)

    def stop(self):
        for canvas, cid in self._sky_connections:
            try:
                canvas.mpl_disconnect(cid)
            except Exception:  # noqa: BLE001 - the other viewer may be closed already
                pass
        self._sky_connections = []
        if self._image_connection is not None:
            try:
                self.viewer.axes.figure.canvas.mpl_disconnect(self._image_connection)
            except Exception:  # noqa: BLE001 - the viewer may be closing
                pass
            self._image_connection = None
        self._clear_markers()
        self.running = False
        if self.matcher is not None and self.matcher.pending is not None:
            self.matcher.pending = None

    def close(self):
        self.stop()
        self.matcher = None
        super().close()

    def _connect_sky_views(self):
        for canvas, cid in self._sky_connections:
            canvas.mpl_disconnect(cid)
        self._sky_connections = []
        for v in _all_viewers(self.viewer):
            if v is self.viewer or not hasattr(v, "axes"):
                continue
            canvas = v.axes.figure.canvas
            cid = canvas.mpl_connect("button_press_event",
                                     lambda event, v=v: self._on_sky_press(v, event))
            self._sky_connections.append((canvas, cid))

    def sky_views(self):
        """The open scatter viewers that show a catalog's RA/Dec."""
        return [v for v in _all_viewers(self.viewer) if v is not self.viewer and _is_sky_view(v)]

    def _status(self, text):
        try:
            from .menus import _status

            _status(self.viewer, text)
        except Exception:  # noqa: BLE001 - a status message must never break the tool
            log.debug("status: %s", text)

    def _error(self, err):
        from .menus import describe_error, show_message

        show_message(self.viewer, describe_error(err), error=True)

    # ------------------------------------------------------------------ events
    def _on_image_press(self, event):
        toolbar = getattr(self.viewer, "toolbar", None)
        if toolbar is not None and getattr(toolbar, "active_tool", None) is not None:
            return  # another mode (pan/zoom, selection) owns the clicks
        matcher = self._ensure_matcher()
        if matcher is None:
            return
        if int(getattr(event, "button", 1) or 1) == 3:  # right click anywhere: undo
            matcher.undo()
            self._redraw_markers()
            self._status(f"{len(matcher.pixels)} pair(s)")
            return
        if event.inaxes is not self.viewer.axes or event.xdata is None:
            return
        x, y = self._image_xy(float(event.xdata), float(event.ydata))
        self._connect_sky_views()  # catalog views opened since the start
        self.click_image(x, y)

    def _image_xy(self, xdata, ydata):
        image = self._image()
        if self.viewer.state.x_att is image.pixel_component_ids[0]:
            return ydata, xdata
        return xdata, ydata

    def _on_sky_press(self, view, event):
        if event.inaxes is not getattr(view, "axes", None) or event.xdata is None:
            return
        if not _is_sky_view(view) or int(getattr(event, "button", 1) or 1) != 1:
            return
        toolbar = getattr(view, "toolbar", None)
        if toolbar is not None and getattr(toolbar, "active_tool", None) is not None:
            return
        self.click_sky(view, float(event.xdata), float(event.ydata))

    # ------------------------------------------------------------------ actions
    def click_image(self, x, y):
        """A click on the image at pixel (x, y): start a pair with the star there."""
        matcher = self._ensure_matcher()
        if matcher is None:
            return None
        try:
            pos = matcher.add_pixel(x, y)
        except ZeropointError as err:
            self._status(str(err))
            return None
        self._redraw_markers()
        if not self.sky_views():
            self._status(f"star at ({pos[0]:.1f}, {pos[1]:.1f}); open a scatter view of a "
                         "catalog with ra on x and dec on y to click its counterpart")
        else:
            self._status(f"star at ({pos[0]:.1f}, {pos[1]:.1f}): now click it in the catalog "
                         "view")
        return pos

    def click_sky(self, view, xdata, ydata):
        """A click in a RA/Dec view at (xdata, ydata): finish the pending pair; fit if >= 3."""
        matcher = self._ensure_matcher()
        if matcher is None or matcher.pending is None:
            self._status("click a star on the image first")
            return None
        catalog = view.state.x_att.parent
        try:
            row = matcher.add_sky(catalog, xdata, ydata, view.state.x_att, view.state.y_att)
            self._redraw_markers(view)
            n = len(matcher.pixels)
            if n < 3:
                self._status(f"{n} pair(s): match {3 - n} more star(s)")
                return row
            matcher.wcs = None
            matcher.apply(self.viewer.session.data_collection)
        except ZeropointError as err:
            self._error(err)
            return None
        except Exception as err:  # noqa: BLE001 - never a traceback dialog
            log.exception("match to sky failed")
            self._error(err)
            return None
        self._refresh_image_viewers(matcher.image)
        self._status(matcher.report)
        return row

    def _refresh_image_viewers(self, image):
        for v in [self.viewer] + _all_viewers(self.viewer):
            state = getattr(v, "state", None)
            if getattr(state, "reference_data", None) is image and hasattr(v, "_set_wcs"):
                try:
                    v._set_wcs(relim=False)
                except Exception:  # noqa: BLE001 - a redraw problem must not lose the WCS
                    log.debug("could not reset the axes of %s", v, exc_info=True)
                v.axes.figure.canvas.draw_idle()

    # ------------------------------------------------------------------ markers
    def _clear_markers(self):
        for artist in self._artists:
            try:
                artist.remove()
            except (ValueError, AttributeError, NotImplementedError):
                pass
        self._artists = []

    def _redraw_markers(self, view=None):
        self._clear_markers()
        m = self.matcher
        if m is None:
            return
        ax = self.viewer.axes
        pts = list(m.pixels) + ([m.pending] if m.pending is not None else [])
        image = self._image()
        transposed = image is not None and self.viewer.state.x_att is image.pixel_component_ids[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, (x, y) in enumerate(pts):
                px, py = (y, x) if transposed else (x, y)
                self._artists.append(ax.plot([px], [py], marker="o", ms=14, mfc="none",
                                             mec=PAIR_COLOR, mew=1.5, zorder=50)[0])
                self._artists.append(ax.text(px + 8, py + 8, str(k + 1), color=PAIR_COLOR,
                                             fontsize=9, zorder=50))
            for v in self.sky_views():
                for k, (ra, dec) in enumerate(m.sky):
                    self._artists.append(v.axes.plot([ra], [dec], marker="o", ms=10,
                                                     mfc="none", mec=PAIR_COLOR, mew=1.5,
                                                     zorder=50)[0])
                    self._artists.append(v.axes.text(ra, dec, f" {k + 1}", color=PAIR_COLOR,
                                                     fontsize=9, zorder=50))
                v.axes.figure.canvas.draw_idle()
        ax.figure.canvas.draw_idle()


def register():
    """Register the tool and add it to the stock image viewer's toolbar."""
    from glue_qt.viewers.image import ImageViewer

    if TOOL_ID not in viewer_tool.members:
        viewer_tool.add(MatchSkyTool)
    if TOOL_ID not in ImageViewer.tools:
        ImageViewer.tools = list(ImageViewer.tools) + [TOOL_ID]
