"""The zero-point viewer: a glue data viewer showing the zero point of an image live.

The logic and the choices live in :class:`~glue_zeropoint.glue.viewer_state.ZeroPointViewerState`
(glue-core); this module is only widgets:

- the options panel (glue's left panel): combos for image, stars, catalog, band, colour,
  subset mode and subset, the colour-term switch, clip sigma and match radius, wired with
  ``autoconnect_callbacks_to_qt`` (widget names ``<kind>_<attribute>``);
- the viewer window: the result (ZP +- error, scatter, colour term, sky brightness, stars used
  and matched, stars left out per reason), the residual plots against catalog magnitude and
  colour (used, clipped, user-excluded stars and those left out for a photometry, catalog or
  match reason each drawn their own way, the reasons written beside the points), the per-star
  table (a "why left out" column with the reason codes, explained in tooltips: see
  :mod:`glue_zeropoint.zeropoint.reasons`), and buttons to exclude the selected stars,
  include all again, and export the result as JSON, ECSV or PNG.

Errors are shown in the viewer's status line, never in a modal dialog. Tests and scripts call
:meth:`ZeroPointViewer.export_json` / ``export_ecsv`` / ``export_png`` directly.
"""

import logging
from pathlib import Path

import numpy as np
from echo.qt import autoconnect_callbacks_to_qt
from glue.core import BaseData, Subset
from glue_qt.viewers.common.data_viewer import DataViewer
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy import QtCore, QtWidgets

from ..exceptions import ZeropointError
from ..glue.viewer_state import ZeroPointViewerState, is_catalog_data, is_image_data, is_stars_data
from ..io import atomic_path, to_jsonable, write_json

__all__ = ["ZeroPointViewer", "ZeroPointOptionsWidget", "StarTableModel", "register"]

log = logging.getLogger(__name__)

#: how the stars are drawn in the residual plots, by reason group (the star table's ``group``,
#: :mod:`glue_zeropoint.zeropoint.reasons`): used, clipped by the fit, excluded by the user,
#: and left out before the fit for a photometry, catalog or match reason
STYLES = {
    "used": dict(marker="o", color="#1f77b4", label="used", s=18, zorder=3),
    "fit": dict(marker="x", color="#d62728", label="clipped", s=24, zorder=4),
    "user": dict(marker="s", facecolors="none", edgecolors="#ff7f0e", label="excluded",
                 s=26, zorder=5),
    "photometry": dict(marker="^", facecolors="none", edgecolors="#9467bd",
                       label="photometry", s=24, zorder=2),
    "catalog": dict(marker="D", facecolors="none", edgecolors="#17a589", label="catalog",
                    s=20, zorder=2),
    "match": dict(marker="v", facecolors="none", edgecolors="#8c564b", label="match",
                  s=22, zorder=1),
}
#: text colour of each group in the per-star table and of the reason labels in the plot
GROUP_COLOURS = {"used": "#1f77b4", "fit": "#d62728", "user": "#ff7f0e",
                 "photometry": "#9467bd", "catalog": "#17a589", "match": "#8c564b"}
#: at most this many left-out stars get their reason written beside them in the plot (the
#: farthest from the fit first); the table lists every star
N_LABELS = 12
TABLE_COLUMNS = (("star_id", "star", "{:d}"), ("mag_cat", "m cat", "{:.3f}"),
                 ("mag_inst", "m inst", "{:.3f}"), ("colour", "colour", "{:.3f}"),
                 ("residual", "residual", "{:+.3f}"), ("status", "status", "{}"),
                 ("reason", "why left out", "{}"))


def _fmt(value, fmt="{:.3f}", none="—"):
    if value is None:
        return none
    try:
        if isinstance(value, float) and not np.isfinite(value):
            return none
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


class ZeroPointOptionsWidget(QtWidgets.QWidget):
    """The viewer's choices (glue shows it in the left panel when the viewer is active)."""

    def __init__(self, viewer_state, session, parent=None):
        super().__init__(parent=parent)
        self.viewer_state = viewer_state
        self.session = session
        form = QtWidgets.QFormLayout(self)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        self.combosel_image = QtWidgets.QComboBox()
        self.combosel_stars = QtWidgets.QComboBox()
        self.combosel_catalog = QtWidgets.QComboBox()
        self.combosel_band = QtWidgets.QComboBox()
        self.combosel_color = QtWidgets.QComboBox()
        self.bool_fit_color_term = QtWidgets.QCheckBox("fit a colour term")
        self.combosel_selection_mode = QtWidgets.QComboBox()
        self.combosel_subset = QtWidgets.QComboBox()
        self.valuetext_clip_sigma = QtWidgets.QLineEdit()
        self.valuetext_match_radius = QtWidgets.QLineEdit()
        rows = (("Image", "combosel_image"), ("Stars", "combosel_stars"),
                ("Catalog", "combosel_catalog"), ("Band", "combosel_band"),
                ("Colour", "combosel_color"), ("", "bool_fit_color_term"),
                ("Subset use", "combosel_selection_mode"), ("Subset", "combosel_subset"),
                ("Clip (sigma)", "valuetext_clip_sigma"),
                ("Match radius (\")", "valuetext_match_radius"))
        for label, name in rows:
            widget = getattr(self, name)
            widget.setObjectName(name)
            form.addRow(label, widget)
        self._connections = autoconnect_callbacks_to_qt(
            viewer_state, self, {"clip_sigma": {"fmt": "{:g}"}, "match_radius": {"fmt": "{:g}"}})


class StarTableModel(QtCore.QAbstractTableModel):
    """A read-only Qt model over the state's per-star table (cheap for hundreds of rows)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._table = None

    def set_table(self, table):
        self.beginResetModel()
        self._table = table
        self.endResetModel()

    def rowCount(self, parent=QtCore.QModelIndex()):  # noqa: B008 (Qt signature)
        return 0 if self._table is None or parent.isValid() else len(self._table)

    def columnCount(self, parent=QtCore.QModelIndex()):  # noqa: B008
        return len(TABLE_COLUMNS)

    def headerData(self, section, orientation, role=QtCore.Qt.DisplayRole):
        if role == QtCore.Qt.DisplayRole and orientation == QtCore.Qt.Horizontal:
            return TABLE_COLUMNS[section][1]
        return None

    def data(self, index, role=QtCore.Qt.DisplayRole):
        if self._table is None or not index.isValid():
            return None
        name, _title, fmt = TABLE_COLUMNS[index.column()]
        value = self._table[name][index.row()]
        if role == QtCore.Qt.DisplayRole:
            if name == "star_id":
                return str(int(value))
            if name in ("status", "reason"):
                return str(value)
            return _fmt(float(value), fmt)
        if role == QtCore.Qt.ToolTipRole and name in ("status", "reason"):
            return str(self._table["why"][index.row()]) if "why" in self._table.colnames \
                else str(value)
        if role == QtCore.Qt.ForegroundRole and name in ("status", "reason"):
            from qtpy import QtGui

            group = (str(self._table["group"][index.row()]) if "group" in self._table.colnames
                     else "used")
            return QtGui.QBrush(QtGui.QColor(GROUP_COLOURS.get(group, "#888888")))
        return None

    def star_id(self, row):
        return int(self._table["star_id"][row])


class ZeroPointPanel(QtWidgets.QWidget):
    """The viewer's central widget: result, residual plots, per-star table, buttons."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.label_result = QtWidgets.QLabel("")
        self.label_result.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.label_result.setWordWrap(True)
        layout.addWidget(self.label_result)
        self.label_status = QtWidgets.QLabel("")
        self.label_status.setWordWrap(True)
        self.label_status.setStyleSheet("color: #b03000")
        layout.addWidget(self.label_status)

        splitter = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        self.figure = Figure(figsize=(6, 2.6), dpi=80)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        splitter.addWidget(self.canvas)
        self.table_model = StarTableModel(self)
        self.table_view = QtWidgets.QTableView()
        self.table_view.setModel(self.table_model)
        self.table_view.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table_view.verticalHeader().setVisible(False)
        self.table_view.horizontalHeader().setStretchLastSection(True)
        splitter.addWidget(self.table_view)
        splitter.setSizes([260, 160])
        layout.addWidget(splitter, stretch=1)

        buttons = QtWidgets.QHBoxLayout()
        self.button_exclude = QtWidgets.QPushButton("Exclude selected")
        self.button_exclude.setToolTip("Exclude the stars of the chosen subset (or of the "
                                       "active selection, or the rows picked in the table)")
        self.button_include = QtWidgets.QPushButton("Include all")
        self.button_json = QtWidgets.QPushButton("JSON…")
        self.button_ecsv = QtWidgets.QPushButton("ECSV…")
        self.button_png = QtWidgets.QPushButton("PNG…")
        for button in (self.button_exclude, self.button_include):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(QtWidgets.QLabel("Export:"))
        for button in (self.button_json, self.button_ecsv, self.button_png):
            buttons.addWidget(button)
        layout.addLayout(buttons)


class ZeroPointViewer(DataViewer):
    """A glue viewer that fits and shows the photometric zero point of an image.

    Drop an image (or its stars, or a catalog) on it, or open it with
    ``app.new_data_viewer(ZeroPointViewer, data=image)``; the stars and catalog linked to the
    image are picked automatically. All choices are in ``viewer.state``.
    """

    LABEL = "Zero point"
    _state_cls = ZeroPointViewerState
    _options_cls = ZeroPointOptionsWidget
    _close_on_last_layer_removed = False
    allow_duplicate_data = True

    def __init__(self, session, state=None, parent=None):
        super().__init__(session, state=state, parent=parent)
        self.panel = ZeroPointPanel(self)
        self.setCentralWidget(self.panel)
        self.panel.button_exclude.clicked.connect(self.exclude_selected)
        self.panel.button_include.clicked.connect(self.include_all)
        self.panel.button_json.clicked.connect(lambda: self._ask_path("json"))
        self.panel.button_ecsv.clicked.connect(lambda: self._ask_path("ecsv"))
        self.panel.button_png.clicked.connect(lambda: self._ask_path("png"))
        self._message = ""
        self._dialog = None
        self.state.add_callback("revision", self._update_view)
        self.state.add_callback("status", self._update_status)
        self.resize(720, 560)
        self._update_view()

    # -- data in --------------------------------------------------------------------------------

    def add_data(self, data):
        """Use a dropped dataset as the image, the stars or the catalog (by its kind)."""
        if isinstance(data, Subset):
            return self.add_subset(data)
        if not isinstance(data, BaseData):
            return False
        try:
            if is_image_data(data):
                self.state.image = data
            elif is_stars_data(data):
                self.state.stars = data
            elif is_catalog_data(data):
                self.state.catalog = data
            else:
                self.show_message(f"{data.label}: not an image, a stars table or a catalog")
                return False
        except ValueError as err:  # not among the choices (e.g. not in the data collection)
            self.show_message(f"{data.label}: cannot be used here ({err})")
            return False
        return True

    def add_subset(self, subset):
        """A dropped subset becomes the chosen subset (used as set by ``selection_mode``)."""
        group = getattr(subset, "group", None)
        if group is not None and group in ZeroPointViewerState.subset.get_choices(self.state):
            self.state.subset = group
        return True

    def remove_data(self, data):
        for name in ("image", "stars", "catalog"):
            if getattr(self.state, name) is data:
                setattr(self.state, name, None)

    # -- user actions -----------------------------------------------------------------------------

    def _active_group(self):
        if self.state.subset is not None:
            return self.state.subset
        groups = list(getattr(self.session.edit_subset_mode, "edit_subset", None) or [])
        return groups[0] if groups else None

    def exclude_selected(self, *args):
        """Exclude the selected stars: rows picked in the table, else the chosen subset, else
        the active selection (brushed in any linked view). Returns the ids excluded."""
        rows = sorted({index.row() for index in
                       self.panel.table_view.selectionModel().selectedRows()})
        try:
            if rows:
                ids = [self.panel.table_model.star_id(r) for r in rows]
                self.state.exclude_stars(ids)
            else:
                group = self._active_group()
                if group is None:
                    self.show_message("select stars first: draw a region in any linked view "
                                      "or pick rows in the table")
                    return []
                ids = self.state.exclude_subset(group)
        except ZeropointError as err:
            self.show_message(str(err))
            return []
        if not ids:
            self.show_message("the selection holds no star")
        return ids

    def include_all(self, *args):
        """Forget all exclusions."""
        self.state.include_all()

    # -- export ---------------------------------------------------------------------------------

    def _require_result(self):
        if self.state.result is None:
            raise ZeropointError("no zero point to export: " + (self.state.status or
                                                                 "the fit has not run"))
        return self.state.result

    def export_json(self, path):
        """Write the result as ``zeropoint.json``-style JSON (docs/architecture.md section 4 keys)."""
        result = self._require_result()
        return write_json(path, result.to_dict())

    def export_ecsv(self, path):
        """Write the per-star table (with the result in its meta) as ECSV."""
        result = self._require_result()
        table = self.state.star_table().copy()
        table.meta.update(to_jsonable({k: v for k, v in result.to_dict().items()
                                       if not isinstance(v, (list, dict))}))
        path = Path(path)
        with atomic_path(path) as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        return path

    def export_png(self, path):
        """Save the residual plots as a PNG."""
        path = Path(path)
        if getattr(self, "_axes", None) is None:
            self._draw(None)
        for artist in self._animated:  # savefig leaves animated artists out
            artist.set_animated(False)
        try:
            with atomic_path(path) as tmp:
                self.panel.figure.savefig(tmp, format="png", dpi=100)
        finally:
            for artist in self._animated:
                artist.set_animated(True)
            self.panel.canvas.draw_idle()
        return path

    def _ask_path(self, kind):
        """A non-modal save dialog; the chosen file goes to ``export_<kind>``."""
        dialog = QtWidgets.QFileDialog(self, f"Export the zero point as {kind.upper()}",
                                       f"zeropoint.{kind}", f"{kind.upper()} (*.{kind})")
        dialog.setAcceptMode(QtWidgets.QFileDialog.AcceptSave)
        dialog.setOption(QtWidgets.QFileDialog.DontUseNativeDialog, True)
        dialog.setDefaultSuffix(kind)
        dialog.fileSelected.connect(lambda path: self._export(kind, path))
        dialog.setWindowModality(QtCore.Qt.NonModal)
        dialog.setModal(False)
        self._dialog = dialog
        dialog.show()

    def _export(self, kind, path):
        try:
            written = getattr(self, f"export_{kind}")(path)
        except (ZeropointError, OSError) as err:
            self.show_message(f"export failed: {err}")
            return None
        self.show_message(f"wrote {written}", error=False)
        return written

    # -- display ----------------------------------------------------------------------------------

    def show_message(self, text, error=True):
        """Show a message in the viewer (non-modal) and in the log."""
        self._message = text
        color = "#b03000" if error else "#2a6a2a"
        self.panel.label_status.setStyleSheet(f"color: {color}")
        self.panel.label_status.setText(text)
        (log.warning if error else log.info)("zero-point viewer: %s", text)

    def _update_status(self, *args):
        self.panel.label_status.setStyleSheet("color: #b03000")
        self.panel.label_status.setText(self.state.status or "")

    def _update_view(self, *args):
        self._update_status()
        self.panel.label_result.setText(self.summary_html())
        table = self.state.star_table() if self.state.result is not None else None
        self.panel.table_model.set_table(table)
        self._draw(table)

    def summary_html(self):
        """The result as a short HTML summary (what the viewer shows at the top)."""
        r = self.state.result
        if r is None:
            return "<b>Zero point:</b> —"
        lines = [f"<b>ZP({r.band}) = {_fmt(r.zp)} ± {_fmt(r.zp_err)}</b> mag "
                 f"(total ± {_fmt(r.zp_err_total)}) &nbsp; scatter {_fmt(r.scatter)} mag"
                 f" &nbsp; stars used {r.n_used} / matched {r.n_matched}"]
        extra = []
        if r.color_term is not None:
            extra.append(f"colour term ({r.color}) {_fmt(r.color_term)} ± "
                         f"{_fmt(r.color_term_err)}")
        elif self.state.fit_color_term and getattr(r, "color_term_reason", ""):
            import html

            extra.append(f"colour term ({html.escape(str(r.color or ''))}) not fitted: "
                         f"{html.escape(str(r.color_term_reason))}")
        if getattr(r, "sky_sb", None) is not None:
            extra.append(f"sky {_fmt(r.sky_sb, '{:.2f}')} ± {_fmt(r.sky_sb_err, '{:.2f}')} "
                         "mag/arcsec²")
        if getattr(r, "aperture_correction", None) is not None:
            extra.append(f"aperture corr. {_fmt(r.aperture_correction)}")
        if extra:
            lines.append(" &nbsp; ".join(extra))
        rejected = getattr(r, "rejected", None) or {}
        if rejected:
            lines.append("left out: " + ", ".join(f"{n} {code}" for code, n in rejected.items()))
        lines.extend(self._measurement_lines())
        return "<br>".join(lines)

    def _measurement_lines(self):
        """The stars' measured PSF and what their measurement had to assume (from the stars
        dataset's metadata, as measure_stars wrote it)."""
        import html

        stars = getattr(self.state, "stars", None)
        meta = getattr(stars, "meta", None) or {}
        out = []
        psf = meta.get("zp_psf")
        if isinstance(psf, dict) and psf.get("fwhm") is not None:
            if psf.get("n_stars"):
                text = (f"PSF FWHM {_fmt(psf.get('fwhm'), '{:.2f}')} ± "
                        f"{_fmt(psf.get('fwhm_scatter'), '{:.2f}')} px "
                        f"({psf['n_stars']} stars)")
            else:
                text = f"PSF FWHM {_fmt(psf.get('fwhm'), '{:.2f}')} px (given, not measured here)"
            if psf.get("fwhm", 99) < 2.0:
                text += ", <b>undersampled</b>"
            if (psf.get("ellipticity") or 0) >= 0.1:
                text += (f", ellipticity {_fmt(psf.get('ellipticity'), '{:.2f}')} at "
                         f"{_fmt(psf.get('theta'), '{:.0f}')}°")
            out.append(text)
        assumptions = [str(a) for a in (meta.get("zp_assumptions") or [])]
        if assumptions:
            out.append("<i>assumed:</i> " + "; ".join(html.escape(a) for a in assumptions))
        return out

    def _setup_plot(self):
        """Axes and artists made once; updates move the points and blit them over a cached
        background (a full redraw only when the axis limits must change)."""
        figure = self.panel.figure
        figure.set_layout_engine(None)
        figure.subplots_adjust(left=0.1, right=0.985, bottom=0.2, top=0.88, wspace=0.06)
        axes = figure.subplots(1, 2, sharey=True)
        self._axes = list(axes)
        self._artists = []
        self._animated = []
        for ax in self._axes:
            ax.grid(alpha=0.3)
            ax.axhline(0.0, color="0.3", lw=0.8)
            artists = {"band": ax.axhspan(-0.0, 0.0, color="#1f77b4", alpha=0.08, lw=0)}
            for kind, style in STYLES.items():
                artists[kind] = ax.scatter([], [], **style)
            self._artists.append(artists)
            self._animated += list(artists.values())
        self._axes[0].set_ylabel("m_cat − m_inst − ZP (mag)")
        # above the plot, where it hides no point
        self._axes[0].legend(handles=[self._artists[0][k] for k in STYLES], loc="lower left",
                             bbox_to_anchor=(0.0, 1.0), borderaxespad=0.1, fontsize=7,
                             frameon=False, ncols=6, handletextpad=0.1, columnspacing=0.6)
        # the reasons of the left-out stars, written beside them (a fixed pool of texts, moved
        # and refilled on each update, so that updates can still be blitted)
        self._labels = [self._axes[0].text(0, 0, "", fontsize=6, ha="left", va="bottom",
                                           clip_on=True, zorder=6)
                        for _ in range(N_LABELS)]
        self._animated += self._labels
        self._title = self._axes[1].set_title("", fontsize=9, loc="right")
        self._message_text = self._axes[0].text(0.5, 0.5, "", ha="center", va="center",
                                                transform=self._axes[0].transAxes, color="0.4")
        self._animated += [self._title, self._message_text]
        for artist in self._animated:
            artist.set_animated(True)
        self._background = None
        self.panel.canvas.mpl_connect("draw_event", self._on_draw_event)

    def _on_draw_event(self, event):
        """After a full draw: keep the static background, then draw the moving artists."""
        from matplotlib.transforms import Bbox

        canvas = self.panel.canvas
        renderer = canvas.get_renderer()  # its size: figure.bbox can be a hair short of it
        self._background = canvas.copy_from_bbox(
            Bbox.from_bounds(0, 0, renderer.width, renderer.height))
        self._draw_animated()

    def _draw_animated(self):
        figure = self.panel.figure
        for artist in self._animated:
            if artist.axes is None or artist.axes.get_visible():
                figure.draw_artist(artist)

    def _blit(self):
        canvas = self.panel.canvas
        if self._background is None:
            canvas.draw_idle()
            return
        canvas.restore_region(self._background)
        self._draw_animated()
        canvas.blit(self.panel.figure.bbox)

    @staticmethod
    def _sticky_limits(current, lo, hi, pad=0.08, slack=1.8):
        """Keep ``current`` limits if they hold ``[lo, hi]`` and are not much wider."""
        span = max(hi - lo, 1e-3)
        c0, c1 = current
        if c0 <= lo and c1 >= hi and (c1 - c0) <= slack * span * (1 + 2 * pad):
            return None
        return lo - pad * span, hi + pad * span

    def _draw(self, table):
        if getattr(self, "_axes", None) is None:
            self._setup_plot()
        r = self.state.result
        empty = table is None or r is None or len(table) == 0
        with_colour = (not empty and np.isfinite(np.asarray(table["colour"], float)).any())
        self._message_text.set_text((self.state.status or "no fit yet") if empty else "")
        relayout = self._axes[1].get_visible() != with_colour
        self._axes[1].set_visible(with_colour)
        if empty:
            for artists in self._artists:
                for kind in STYLES:
                    artists[kind].set_offsets(np.zeros((0, 2)))
            for label in self._labels:
                label.set_text("")
            self._title.set_text("")
            self.panel.canvas.draw_idle()
            return
        residual = np.asarray(table["residual"], float)
        status = np.asarray(table["group"])
        scatter = float(r.scatter) if r.scatter is not None and np.isfinite(r.scatter) else 0.0
        in_fit = np.isin(status, ["used", "fit", "user"]) & np.isfinite(residual)
        # left-out stars widen the plot only when near the fitted ones (a 2-mag variable would
        # squash them); the table lists them all
        reach = 2.0 * max(3 * scatter, float(np.max(np.abs(residual[in_fit])))
                          if in_fit.any() else 0.0, 0.05)
        shown = in_fit | (np.isfinite(residual) & (np.abs(residual) <= reach))
        xs = [("mag_cat", f"catalog {r.band} (mag)"), ("colour", f"{self.state.color} (mag)")]
        for ax, artists, (name, xlabel) in zip(self._axes, self._artists, xs, strict=True):
            if name == "colour" and not with_colour:
                continue
            x = np.asarray(table[name], float)
            for kind in STYLES:
                sel = (status == kind) & np.isfinite(x) & np.isfinite(residual)
                artists[kind].set_offsets(np.column_stack([x[sel], residual[sel]]))
            artists["band"].set_y(-scatter)
            artists["band"].set_height(2 * scatter)
            good = shown & np.isfinite(x)
            if good.any():
                limits = self._sticky_limits(ax.get_xlim(), float(np.min(x[good])),
                                             float(np.max(x[good])))
                if limits is not None:
                    ax.set_xlim(*limits)
                    relayout = True
            if ax.get_xlabel() != xlabel:
                ax.set_xlabel(xlabel)
                relayout = True
        if shown.any():
            span = max(3 * scatter, float(np.max(np.abs(residual[shown]))), 0.05)
            limits = self._sticky_limits(self._axes[0].get_ylim(), -span, span, pad=0.2)
            if limits is not None:
                self._axes[0].set_ylim(limits[0], limits[1] + 0.15 * span)
                relayout = True
        self._set_labels(table, residual, status)  # placed in the final limits
        self._title.set_text(f"ZP {r.zp:.3f} ± {r.zp_err:.3f}")
        if relayout or self._background is None:
            self.panel.canvas.draw_idle()
        else:
            self._blit()

    def _set_labels(self, table, residual, group):
        """Write the reasons of up to :data:`N_LABELS` left-out stars beside their points in
        the magnitude plot: the user's exclusions and the clipped stars first, then one star
        of every other reason (moved up or down off the labels already written), then the
        rest where they cover no label (24 labels had piled up on the faint end of a field),
        each time the farthest from the fit first."""
        x = np.asarray(table["mag_cat"], float)
        reason = np.asarray(table["reason"]).astype(str)
        rows = np.flatnonzero((group != "used") & np.isfinite(x) & np.isfinite(residual))
        rank = np.where(np.isin(group[rows], ["user", "fit"]), 0, 1)
        rows = rows[np.lexsort((-np.abs(residual[rows]), rank))]
        _, first = np.unique(reason[rows], return_index=True)
        lead = np.zeros(rows.size, bool)
        lead[first] = True
        lead |= np.isin(group[rows], ["user", "fit"])
        placed = self._place_labels(rows[lead], rows[~lead], x, residual, reason)
        for label, item in zip(self._labels, placed + [None] * N_LABELS, strict=False):
            if item is None:
                label.set_text("")
                continue
            row, xy = item
            label.set_position(xy)
            label.set_text(" " + reason[row])
            label.set_color(GROUP_COLOURS.get(str(group[row]), "0.3"))

    def _place_labels(self, lead, rest, x, residual, reason):
        """``[(row, (x, y) in data)]``, at most :data:`N_LABELS`: every ``lead`` row at its
        point or moved by up to 3 label heights up or down to a free place (or at its point
        when there is none), then the ``rest`` only where they cover no label (screen pixels,
        ~3.5 px a character at the labels' 6 pt, 9 px high)."""
        trans = self._axes[0].transData
        rows = np.r_[lead[:N_LABELS], rest].astype(int)
        pix = dict(zip(rows.tolist(), trans.transform(np.column_stack(
            [x[rows], residual[rows]])).tolist(), strict=True)) if rows.size else {}
        boxes, out = [], []

        def free(b):
            return all(b[2] < o[0] or o[2] < b[0] or b[3] < o[1] or o[3] < b[1]
                       for o in boxes)

        def place(row, shifts, must):
            px, py = pix[int(row)]
            width = 3.5 * (len(reason[row]) + 1)
            for dy in shifts:
                b = (px, py + dy, px + width, py + dy + 9.0)
                if free(b):
                    boxes.append(b)
                    out.append((int(row), tuple(trans.inverted().transform((px, py + dy)))))
                    return
            if must:  # a lead label with no free place: written at its point
                boxes.append((px, py, px + width, py + 9.0))
                out.append((int(row), (float(x[row]), float(residual[row]))))

        for row in lead[:N_LABELS]:
            place(row, (0.0, 9.0, -9.0, 18.0, -18.0, 27.0, -27.0), must=True)
        for row in rest:
            if len(out) >= N_LABELS:
                break
            place(row, (0.0,), must=False)
        return out

    def closeEvent(self, event):
        self.state.disconnect()
        super().closeEvent(event)


def register():
    """Add the zero-point viewer to glue's viewer menu."""
    from glue_qt.config import qt_client

    if ZeroPointViewer not in qt_client.members:
        qt_client.add(ZeroPointViewer)
