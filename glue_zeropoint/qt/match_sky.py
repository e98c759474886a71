""""Match to sky": give an image a WCS by clicking a few stars and their catalog counterparts.

With the ``zp:match_sky`` tool active in an image viewer, click a star on the image (the click
snaps to the star's centroid), then click its counterpart in a scatter viewer that shows a
catalog's RA/Dec; repeat. From 3 pairs on, the WCS is fitted from the pairs (astropy's fit from
points, :func:`~glue_zeropoint.astrometry.fit_wcs_from_pairs`), refined with every detected
star matched to the catalog (:func:`~glue_zeropoint.astrometry.refine_wcs`) and attached to the
image (:func:`~glue_zeropoint.glue.wcs_update.attach_wcs`), so linked catalog markers land on
the stars at once. Right-click on the image undoes the last pair. Messages go to the status bar
and to non-modal message boxes, never to a modal dialog.

:class:`SkyMatcher` holds the pairs and the fit without any Qt, so scripts and tests can drive
it directly.
"""

import logging
import warnings

import numpy as np
from glue.config import viewer_tool
from glue.viewers.common.tool import Tool

from ..astrometry import detect_sources, fit_wcs_from_pairs, refine_wcs, wcs_quality
from ..astrometry.detect import windowed_centroids
from ..exceptions import InputError, ZeropointError
from ..glue.wcs_update import attach_wcs

__all__ = ["SkyMatcher", "MatchSkyTool", "catalog_radec_ids", "register"]

log = logging.getLogger(__name__)

TOOL_ID = "zp:match_sky"
PAIR_COLOR = "#ff3df5"
_RA_NAMES = ("ra", "ra_icrs", "raj2000", "right ascension")
_DEC_NAMES = ("dec", "de_icrs", "dej2000", "declination")


def catalog_radec_ids(data):
    """``(ra_cid, dec_cid)`` of a glue table dataset with RA/Dec columns, or ``(None, None)``."""
    ra = dec = None
    for cid in data.main_components:
        low = cid.label.lower()
        if ra is None and low in _RA_NAMES:
            ra = cid
        if dec is None and low in _DEC_NAMES:
            dec = cid
    return ra, dec


def _image_array(data):
    labels = {cid.label: cid for cid in data.main_components}
    cid = labels.get("flux") or data.main_components[0]
    return np.asarray(data.get_data(cid), dtype=np.float32)


class SkyMatcher:
    """Pairs of (star on the image, catalog star) and the WCS they give.

    Parameters
    ----------
    image : `glue.core.data.Data`
        The 2-D image dataset.
    snap_radius : float
        A click snaps to the brightest star within this many pixels.
    """

    def __init__(self, image, snap_radius=8.0):
        if image.ndim != 2:
            raise InputError(f"{image.label}: match to sky needs a 2-D image")
        self.image = image
        self.snap_radius = float(snap_radius)
        self.pixels = []  # (x, y) of paired stars
        self.sky = []  # (ra, dec) of their catalog counterparts
        self.pending = None  # (x, y) waiting for its counterpart
        self.catalog = None  # the catalog dataset the counterparts were taken from
        self.wcs = None
        self.report = ""
        self._array = None
        self._sources = None

    # ------------------------------------------------------------------ pairs
    @property
    def array(self):
        if self._array is None:
            self._array = _image_array(self.image)
        return self._array

    def snap(self, x, y):
        """Centroid of the star nearest to a click at pixel (x, y)."""
        a = self.array
        ny, nx = a.shape
        r = int(np.ceil(self.snap_radius))
        x0, x1 = max(int(round(x)) - 2 * r, 0), min(int(round(x)) + 2 * r + 1, nx)
        y0, y1 = max(int(round(y)) - 2 * r, 0), min(int(round(y)) + 2 * r + 1, ny)
        if x0 >= x1 or y0 >= y1:
            raise InputError(f"the click at ({x:.0f}, {y:.0f}) is outside the image")
        box = a[y0:y1, x0:x1].astype(float)
        finite = np.isfinite(box)
        if not finite.any():
            raise InputError(f"no valid pixels near ({x:.0f}, {y:.0f})")
        back = np.nanmedian(box)
        sub = np.where(finite, box - back, 0.0)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        near = np.hypot(xx - x, yy - y) <= self.snap_radius
        k = np.argmax(np.where(near, sub, -np.inf))
        py, px = yy.ravel()[k], xx.ravel()[k]
        noise = 1.4826 * np.nanmedian(np.abs(sub[finite]))
        if sub.ravel()[k] < 5 * max(noise, 1e-12):
            raise InputError(f"no star near ({x:.0f}, {y:.0f}): click closer to a star")
        full = np.zeros_like(a, dtype=np.float32)
        full[y0:y1, x0:x1] = sub
        cx, cy = windowed_centroids(full, [px], [py], fwhm=3.0, half=min(r, 7))
        return float(cx[0]), float(cy[0])

    def add_pixel(self, x, y, snap=True):
        """Start a pair with the star at (x, y) (snapped to its centroid); returns it."""
        self.pending = self.snap(x, y) if snap else (float(x), float(y))
        return self.pending

    def add_sky(self, catalog, x, y, x_cid=None, y_cid=None):
        """Finish the pending pair with the catalog star nearest to (x, y) in a RA/Dec view.

        ``x``, ``y`` are in the units of the view's axes ``x_cid``, ``y_cid`` (RA and Dec in
        degrees by default). Returns the catalog row index, or None when no pair was pending.
        """
        if self.pending is None:
            return None
        ra_id, dec_id = catalog_radec_ids(catalog)
        if ra_id is None or dec_id is None:
            raise InputError(f"{catalog.label}: the catalog has no ra/dec columns")
        ra = np.asarray(catalog.get_data(ra_id), float)
        dec = np.asarray(catalog.get_data(dec_id), float)
        vx = ra if x_cid is None else np.asarray(catalog.get_data(x_cid), float)
        vy = dec if y_cid is None else np.asarray(catalog.get_data(y_cid), float)
        cosd = np.cos(np.deg2rad(np.nanmedian(dec)))
        sx = cosd if (x_cid is None or x_cid is ra_id) else 1.0
        d = np.hypot((vx - x) * sx, vy - y)
        if not np.isfinite(d).any():
            raise InputError(f"{catalog.label}: no catalog star with a finite position")
        row = int(np.nanargmin(d))
        self.pixels.append(self.pending)
        self.sky.append((float(ra[row]), float(dec[row])))
        self.pending = None
        self.catalog = catalog
        return row

    def undo(self):
        """Drop the pending star, or else the last pair."""
        if self.pending is not None:
            self.pending = None
        elif self.pixels:
            self.pixels.pop()
            self.sky.pop()

    # ------------------------------------------------------------------ fit
    def sources(self):
        if self._sources is None:
            self._sources = detect_sources(self.array, max_sources=3000)
        return self._sources

    def fit(self, refine=True):
        """Fit the WCS from the pairs (>= 3), refined with all stars when possible.

        Returns the WCS (also in :attr:`wcs`); :attr:`report` says what was done.
        """
        from astropy.coordinates import SkyCoord

        n = len(self.pixels)
        if n < 3:
            raise InputError(f"{n} pair(s) so far: match at least 3 stars to fit a WCS")
        xy = np.array(self.pixels)
        sky = SkyCoord(np.array(self.sky)[:, 0], np.array(self.sky)[:, 1], unit="deg")
        shape = self.image.shape
        wcs = fit_wcs_from_pairs(xy, sky, shape=shape, sip_degree=None if n >= 17 else 1)
        px, py = wcs.world_to_pixel(sky)
        pair_rms = float(np.sqrt(np.mean((px - xy[:, 0]) ** 2 + (py - xy[:, 1]) ** 2)))
        self.report = f"WCS from {n} pairs (rms {pair_rms:.2f} pixel)"
        if refine and self.catalog is not None:
            ra_id, dec_id = catalog_radec_ids(self.catalog)
            ra = np.asarray(self.catalog.get_data(ra_id), float)
            dec = np.asarray(self.catalog.get_data(dec_id), float)
            src = self.sources()
            try:
                fit, i_src, _ = refine_wcs(wcs, src["x"], src["y"], ra, dec, shape=shape,
                                           radius=max(5.0, 4 * pair_rms))
            except ZeropointError as err:
                self.report += f"; not refined ({err})"
            else:
                if len(i_src) >= max(10, 2 * n):
                    wcs = fit.wcs
                    q = wcs_quality(wcs, src, self.catalog_table(),
                                    radius=max(3 * fit.rms_arcsec, 0.5))
                    self.report = (f"WCS from {n} pairs refined with {len(i_src)} stars: rms "
                                   f"{q.rms_arcsec:.2f} arcsec = {q.rms_pix:.2f} pixel"
                                   + (f", SIP degree {fit.degree}" if fit.degree > 1 else ""))
                else:
                    self.report += (f"; only {len(i_src)} stars matched the catalog, kept the "
                                    "fit from the pairs")
        self.wcs = wcs
        return wcs

    def catalog_table(self):
        from astropy.table import Table

        ra_id, dec_id = catalog_radec_ids(self.catalog)
        return Table({"ra": np.asarray(self.catalog.get_data(ra_id), float),
                      "dec": np.asarray(self.catalog.get_data(dec_id), float)})

    def apply(self, data_collection=None, save_product=True):
        """Fit (if needed) and attach the WCS to the image; returns it.

        With ``save_product``, the WCS is also written into the calibrated product the image
        was loaded from (``meta['zp_product']``), when there is one.
        """
        from pathlib import Path

        from ..astrometry import update_fits_wcs

        wcs = self.wcs if self.wcs is not None else self.fit()
        attach_wcs(self.image, wcs, data_collection=data_collection)
        product = self.image.meta.get("zp_product") if save_product else None
        if product and Path(product).is_file():
            update_fits_wcs(product, wcs, history="WCS from match to sky (glue-zeropoint)")
            self.report += f"; saved in {Path(product).name}"
        return wcs


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
