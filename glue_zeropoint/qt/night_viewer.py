"""The night viewer: zero point against airmass (with each band's extinction line) and
against time, for the night dataset (:mod:`glue_zeropoint.glue.night`).

- Points are the frames' night zero points, coloured by band; frames left out of the fit
  (cloudy, brushed, outside the time range) are drawn as crosses.
- Clicking a point (:meth:`NightViewer.show_frame`) shows that frame in an image viewer with
  its stars; a frame not yet in the session is loaded first (its calibrated product under
  the night folder's ``calibrated/``, else the raw light).
- Brushing frames in any viewer (a subset of the night, or of its stars through the join on
  ``frame``) drops them from the extinction fit when ``state.exclude_subsets`` is on; the
  time range ``state.t_min``/``state.t_max`` (hours) drops the frames outside it. Then the
  night dataset is refitted in place (:func:`~glue_zeropoint.glue.night.refit`), so every
  view of it follows, and the plots are redrawn.
- The state (the night dataset, the time range, the switch) is a glue ``ViewerState``, so it
  is saved with the session; the exclusion itself is in the dataset's meta.
"""

import numpy as np
from echo import CallbackProperty
from glue.core import BaseData, Subset
from glue.core.message import SubsetCreateMessage, SubsetDeleteMessage, SubsetUpdateMessage
from glue.viewers.common.state import ViewerState
from glue_qt.viewers.common.data_viewer import DataViewer
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy import QtWidgets

from ..glue.night import refit

__all__ = ["NightViewer", "NightViewerState", "register"]

BAND_COLOURS = {"U": "#7b2cbf", "B": "#1f77b4", "V": "#2ca02c", "R": "#d62728",
                "I": "#8c564b", "g": "#2ca02c", "r": "#d62728", "i": "#8c564b"}


class NightViewerState(ViewerState):
    night = CallbackProperty(None, docstring="The night dataset shown")
    t_min = CallbackProperty(None, docstring="Frames before this (hours) are left out")
    t_max = CallbackProperty(None, docstring="Frames after this (hours) are left out")
    exclude_subsets = CallbackProperty(True, docstring="Brushed frames leave the fit")
    selected_frame = CallbackProperty(None, docstring="File name of the frame last clicked")


class NightViewer(DataViewer):
    """ZP vs airmass and vs time for the night dataset (see the module docstring)."""

    LABEL = "Night (zero point vs airmass)"
    _state_cls = NightViewerState
    _close_on_last_layer_removed = False
    allow_duplicate_data = True

    def __init__(self, session, state=None, parent=None):
        super().__init__(session, state=state, parent=parent)
        widget = QtWidgets.QWidget(self)
        layout = QtWidgets.QVBoxLayout(widget)
        self.info = QtWidgets.QLabel("drop the night dataset here")
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self.figure = Figure(figsize=(7, 4), dpi=80)
        self.canvas = FigureCanvasQTAgg(self.figure)
        layout.addWidget(self.canvas, stretch=1)
        self.setCentralWidget(widget)
        self.canvas.mpl_connect("pick_event", self._on_pick)
        self._points = {}
        self.image_viewer = None
        for name in ("night", "t_min", "t_max", "exclude_subsets"):
            self.state.add_callback(name, lambda *_: self.update_fit())
        self.resize(760, 480)
        if self.state.night is not None:
            self.update_fit()

    # -- data in ------------------------------------------------------------------------------

    def add_data(self, data):
        if isinstance(data, Subset):
            return self.add_subset(data)
        if not isinstance(data, BaseData) or data.meta.get("zp_kind") != "night":
            self.info.setText(f"{getattr(data, 'label', data)}: not a night dataset")
            return False
        self.state.night = data
        return True

    def add_subset(self, subset):
        self.update_fit()
        return True

    def register_to_hub(self, hub):
        super().register_to_hub(hub)
        for msg in (SubsetCreateMessage, SubsetUpdateMessage, SubsetDeleteMessage):
            hub.subscribe(self, msg, handler=self._subset_changed)

    def _subset_changed(self, message):
        night = self.state.night
        subset = getattr(message, "subset", None) or getattr(message, "sender", None)
        if night is not None and getattr(subset, "data", None) is night:
            self.update_fit()

    # -- fit ----------------------------------------------------------------------------------

    def excluded_mask(self):
        """Frames left out: brushed (any subset of the night) and outside the time range."""
        night = self.state.night
        n = night.size
        mask = np.zeros(n, bool)
        if self.state.exclude_subsets:
            for subset in night.subsets:
                try:
                    mask |= np.asarray(subset.to_mask(), bool)
                except Exception:  # noqa: BLE001 - a subset on unlinked data: ignore
                    continue
        hours = np.asarray(night["hours"], float)
        if self.state.t_min is not None:
            mask |= hours < float(self.state.t_min)
        if self.state.t_max is not None:
            mask |= hours > float(self.state.t_max)
        return mask

    def update_fit(self):
        night = self.state.night
        if night is None:
            return
        fits = refit(night, self.excluded_mask())
        text = []
        for band, f in fits.items():
            if "error" in f:
                text.append(f"{band}: {f['error']}")
            else:
                sys = f.get("k_sys") or 0.0
                total = (f" (± {f['k_err_total']:.3f} with the common tail)" if sys > 0 else
                         " (+ a common-tail bias not bounded)" if sys != sys else "")
                text.append(f"{band}: k = {f['k']:.3f} ± {f['k_err']:.3f}{total}, ZP0 = "
                            f"{f['zp0']:.3f}, {f['n_used']}/{f['n_frames']} frames, "
                            f"{f['n_cloudy']} cloudy")
        self.info.setText("; ".join(text) or "no band could be fitted")
        self.redraw(fits)

    def redraw(self, fits=None):
        night = self.state.night
        fits = fits if fits is not None else night.meta.get("zp_night_fits", {})
        self.figure.clear()
        ax1, ax2 = self.figure.subplots(1, 2, sharey=True)
        bands = np.asarray(night["band"]).astype(str)
        x = np.asarray(night["airmass"], float)
        y = np.asarray(night["zp_night"], float)
        h = np.asarray(night["hours"], float)
        used = np.asarray(night["used_in_fit"], bool)
        self._points = {}
        for band in np.unique(bands):
            m = bands == band
            c = BAND_COLOURS.get(band, "k")
            idx = np.flatnonzero(m)
            art = ax1.scatter(x[m], y[m], c=[c] * m.sum(), picker=5, s=20, label=band)
            self._points[art] = idx
            ax1.scatter(x[m & ~used], y[m & ~used], marker="x", c="k", s=40)
            art2 = ax2.scatter(h[m], y[m], c=[c] * m.sum(), picker=5, s=20)
            self._points[art2] = idx
            ax2.scatter(h[m & ~used], y[m & ~used], marker="x", c="k", s=40)
            f = fits.get(band) or {}
            if "k" in f and np.isfinite(x[m]).any():
                xx = np.linspace(np.nanmin(x[m]), np.nanmax(x[m]), 20)
                ax1.plot(xx, f["zp0"] - f["k"] * xx, "-", color=c)
        ax1.set_xlabel("airmass")
        ax1.set_ylabel("zero point (night)")
        ax2.set_xlabel("hours")
        if len(bands):
            ax1.legend(fontsize=8)
        self.canvas.draw_idle()

    # -- clicking a frame -----------------------------------------------------------------------

    def _on_pick(self, event):
        idx = self._points.get(event.artist)
        if idx is None or not len(event.ind):
            return
        self.show_frame(int(idx[event.ind[0]]))

    def show_frame(self, row):
        """Show the frame of night row ``row`` in an image viewer with its stars.

        The frame is loaded into the session first when it is not there (its calibrated
        product, else its raw light: :func:`~glue_zeropoint.glue.night.load_frame`), with
        its stars from the night's detections. Returns the image viewer, or None (the info
        line says why) when the frame's file cannot be found.
        """
        from glue_qt.viewers.image import ImageViewer

        from ..exceptions import ZeropointError
        from ..glue.night import load_frame
        from .tools import show_stars_layer

        file_name = str(self.state.night["file"][row])
        self.state.selected_frame = file_name
        try:
            image, stars = load_frame(self.session.data_collection, self.state.night, row)
        except ZeropointError as err:
            self.info.setText(str(err))
            return None
        app = getattr(self.session, "application", None)
        if self.image_viewer is None or self.image_viewer not in getattr(app, "viewers", [[]])[0]:
            self.image_viewer = app.new_data_viewer(ImageViewer, data=image)
            self._place_beside(self.image_viewer)
        else:
            self.image_viewer.add_data(image)
            self.image_viewer.state.reference_data = image
        for layer in self.image_viewer.layers:
            if layer.layer is image:
                # glue's Min/Max stretch puts cosmic rays at white and every star at black
                layer.state.percentile = 99.5
        for data in self.session.data_collection:
            if image.uuid in (data.meta.get("zp_stars_for"), data.meta.get("zp_night_stars_for")):
                show_stars_layer(self.image_viewer, data)
        self.info.setText(f"{file_name}: shown with "
                          f"{0 if stars is None else stars.size} of its stars")
        return self.image_viewer


    def _place_beside(self, viewer):
        """Put ``viewer`` to the right of this one, as tall as it (it opened on top of it)."""
        try:
            x, y = self.position
            w, h = self.viewer_size
            viewer.viewer_size = (max(h, 450), h)
            viewer.position = (x + w + 4, y)
        except (AttributeError, TypeError, RuntimeError):  # no MDI window (a bare viewer)
            pass


def register():
    from glue_qt.config import qt_client

    if NightViewer not in qt_client.members:
        qt_client.add(NightViewer)
