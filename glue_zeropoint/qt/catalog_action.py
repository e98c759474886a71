"""Catalog action in the image viewer: SIMBAD / VizieR / local file for the image's field.

``zp:catalog`` (:class:`CatalogTool`) opens a non-modal :class:`CatalogDialog`. The query runs in
a worker thread (progress dialog with Cancel); the result becomes a glue table dataset linked to
the image by RA/Dec and to its stars table (:func:`glue_zeropoint.glue.catalog_data.link_catalog`),
and can be shown as markers on the image (a scatter layer through the links). Fetching the same
catalog again for the same image updates that dataset in place. Errors from our code show in
the dialog and as a non-modal message.

:func:`fetch_catalog` does the same without the dialog (scripts, tests).
"""

import logging
from pathlib import Path

from glue.config import viewer_tool
from glue.viewers.common.tool import Tool
from qtpy import QtCore, QtWidgets

from ..exceptions import CatalogError, ZeropointError
from ..glue.catalog_data import catalog_to_data, catalogs_for, link_catalog
from ..glue.loader import wcs_from_meta
from .menus import BackgroundTask, describe_error, show_message
from .tools import image_of

__all__ = ["CatalogTool", "CatalogDialog", "fetch_catalog", "catalog_field", "register"]

log = logging.getLogger(__name__)

MARKER_COLOR = "#ff7f0e"
SOURCES = (("VizieR catalog", "vizier"), ("SIMBAD", "simbad"), ("Local file", "file"))


def catalog_field(image):
    """``(center, radius)`` of the cone covering an image dataset, or ``(None, None)`` without WCS."""
    from ..catalogs import field_of

    wcs = wcs_from_meta(image)
    if wcs is None or not wcs.has_celestial:
        return None, None
    return field_of(wcs, image.shape)


def _add_or_update(dc, image, table, label):
    new = catalog_to_data(table, label)
    for data in catalogs_for(dc, image):
        if data.label == label:
            data.update_values_from_data(new)
            data.meta.update(new.meta)
            link_catalog(dc, data, image)
            return data
    dc.append(new)
    link_catalog(dc, new, image)
    return new


def show_catalog_layer(viewer, catalog):
    """Add a catalog dataset to an image viewer as markers (if not already there)."""
    if any(layer.layer is catalog for layer in viewer.state.layers):
        return
    viewer.add_data(catalog)
    for layer in viewer.state.layers:
        if layer.layer is catalog:
            layer.color = MARKER_COLOR
            layer.size = 7
            layer.alpha = 0.8


def fetch_catalog(viewer, spec, *, image=None, band=None, show=True, on_done=None, offline=False):
    """Query a catalog for the field of ``image`` (default: the viewer's reference image).

    ``spec`` is ``'simbad'``, ``'vizier:<id>'``, ``'default'`` or a local file path. Runs in a
    worker thread; returns the :class:`~glue_zeropoint.qt.menus.BackgroundTask` (or ``None`` if
    it could not start). ``on_done(data_or_None)`` is called at the end.
    """
    from ..catalogs import get_catalog

    image = image if image is not None else image_of(viewer)
    if image is None:
        show_message(viewer, "Catalogs are fetched for an image loaded by glue-zeropoint: make "
                             "one the reference data of this viewer.", error=False)
        return None
    spec = str(spec)
    is_file = not spec.lower().startswith(("vizier:", "simbad", "default"))
    try:
        center, radius = catalog_field(image)
        if center is None and not is_file:
            raise CatalogError(f"{image.label}: the image has no celestial WCS, so its field "
                               f"is unknown; solve it first or load a local catalog file")
    except ZeropointError as err:
        show_message(viewer, describe_error(err))
        if on_done is not None:
            on_done(None)
        return None
    name = Path(spec).stem if is_file else spec
    task = BackgroundTask(
        lambda progress: get_catalog(spec, center, radius, band=band, offline=offline,
                                     progress=progress),
        f"Catalog {name} for {image.label}", viewer, abandon_on_cancel=True)
    dc = viewer.session.data_collection

    def succeeded(table):
        data = None
        if image in dc:
            catalog = Path(spec).name if is_file else str(table.meta.get("catalog") or name)
            data = _add_or_update(dc, image, table, f"{catalog}: {image.label}")
            if show and viewer.state is not None:
                show_catalog_layer(viewer, data)
            cached = " (from cache)" if table.meta.get("from_cache") else ""
            viewer.set_status(f"{catalog}: {len(table)} sources{cached}")
        if on_done is not None:
            on_done(data)

    def failed(exc):
        show_message(viewer, f"Catalog {name}: {describe_error(exc)}")
        if on_done is not None:
            on_done(None)

    task.succeeded.connect(succeeded)
    task.failed.connect(failed)
    task.cancelled.connect(lambda: on_done(None) if on_done is not None else None)
    return task.start()


class CatalogDialog(QtWidgets.QDialog):
    """Non-modal dialog: choose SIMBAD, a VizieR catalog id or a local file, then Fetch."""

    def __init__(self, viewer, parent=None):
        super().__init__(parent if parent is not None else viewer)
        self.viewer = viewer
        self.task = None
        self.result_data = None
        self.setWindowTitle("Reference catalog for the image field")
        self.setModal(False)
        self.setWindowModality(QtCore.Qt.WindowModality.NonModal)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose, True)

        self.combosel_source = QtWidgets.QComboBox()
        for text, key in SOURCES:
            self.combosel_source.addItem(text, key)
        self.valuetext_catalog = QtWidgets.QLineEdit(self._default_catalog())
        self.valuetext_catalog.setPlaceholderText("e.g. II/336/apass9, I/360/syntphot")
        self.valuetext_file = QtWidgets.QLineEdit()
        self.valuetext_file.setPlaceholderText("ECSV, CSV, VOTable or FITS table")
        self.button_browse = QtWidgets.QPushButton("Browse…")
        self.bool_show = QtWidgets.QCheckBox("Show markers on the image")
        self.bool_show.setChecked(True)
        self.text_status = QtWidgets.QLabel("")
        self.text_status.setWordWrap(True)
        self.button_fetch = QtWidgets.QPushButton("Fetch")
        self.button_close = QtWidgets.QPushButton("Close")

        form = QtWidgets.QFormLayout()
        form.addRow("Source", self.combosel_source)
        form.addRow("VizieR catalog", self.valuetext_catalog)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.valuetext_file)
        row.addWidget(self.button_browse)
        form.addRow("File", row)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.button_fetch)
        buttons.addWidget(self.button_close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.bool_show)
        layout.addWidget(self.text_status)
        layout.addLayout(buttons)

        self.combosel_source.currentIndexChanged.connect(self._update_enabled)
        self.button_browse.clicked.connect(self._browse)
        self.button_fetch.clicked.connect(self.fetch)
        self.button_close.clicked.connect(self.close)
        self._update_enabled()

    def _default_catalog(self):
        image = image_of(self.viewer)
        band = image.meta.get("band") if image is not None else None
        try:
            from ..catalogs import default_catalogs_for_band

            return default_catalogs_for_band(band)[0] if band else "II/336/apass9"
        except (ZeropointError, LookupError, ValueError):
            return "II/336/apass9"

    @property
    def source(self):
        return self.combosel_source.currentData()

    def set_source(self, key):
        self.combosel_source.setCurrentIndex(self.combosel_source.findData(key))

    def _update_enabled(self, *args):
        self.valuetext_catalog.setEnabled(self.source == "vizier")
        self.valuetext_file.setEnabled(self.source == "file")
        self.button_browse.setEnabled(self.source == "file")

    def _browse(self):
        path, _filter = QtWidgets.QFileDialog.getOpenFileName(
            self, "Catalog file", "", "Tables (*.ecsv *.csv *.vot *.xml *.fits *.fit);;All (*)")
        if path:
            self.valuetext_file.setText(path)

    def spec(self):
        """The catalog spec for :func:`glue_zeropoint.catalogs.get_catalog` from the widgets."""
        if self.source == "simbad":
            return "simbad"
        if self.source == "vizier":
            catalog = self.valuetext_catalog.text().strip()
            if not catalog:
                raise CatalogError("give a VizieR catalog id, e.g. II/336/apass9")
            return catalog if catalog.lower().startswith("vizier:") else f"vizier:{catalog}"
        path = self.valuetext_file.text().strip()
        if not path:
            raise CatalogError("choose a catalog file (ECSV, CSV, VOTable or FITS)")
        return path

    def fetch(self):
        if self.task is not None and not self.task.finished:
            return self.task
        try:
            spec = self.spec()
        except ZeropointError as err:
            self.text_status.setText(str(err))
            return None
        self.button_fetch.setEnabled(False)
        self.text_status.setText(f"Fetching {spec}…")
        self.task = fetch_catalog(self.viewer, spec, show=self.bool_show.isChecked(),
                                  on_done=self._done)
        return self.task

    def _done(self, data):
        self.result_data = data
        try:
            self.button_fetch.setEnabled(True)
            if data is None:
                error = self.task.error if self.task is not None else None
                self.text_status.setText(describe_error(error) if error else "Nothing loaded.")
            else:
                self.text_status.setText(f"{data.label}: {data.size} sources, linked to the "
                                         f"image by RA/Dec.")
        except RuntimeError:  # the dialog was closed meanwhile
            pass


@viewer_tool
class CatalogTool(Tool):
    """Open the catalog dialog for the viewer's reference image."""

    icon = "glue_link"
    tool_id = "zp:catalog"
    action_text = "Reference catalog"
    tool_tip = "Fetch a reference catalog (SIMBAD, VizieR or a local file) for the image field"

    def __init__(self, viewer):
        super().__init__(viewer)
        self.dialog = None

    def activate(self):
        if image_of(self.viewer) is None:
            show_message(self.viewer, "Catalogs are fetched for an image loaded by "
                                      "glue-zeropoint: make one the reference data of this "
                                      "viewer.", error=False)
            return None
        if self.dialog is None:
            self.dialog = CatalogDialog(self.viewer)
            self.dialog.destroyed.connect(self._forget)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _forget(self, *args):
        self.dialog = None


def register():
    """Register the tool and add it to the stock image viewer's toolbar."""
    from glue_qt.viewers.image import ImageViewer

    if CatalogTool.tool_id not in viewer_tool.members:
        viewer_tool.add(CatalogTool)
    if CatalogTool.tool_id not in ImageViewer.tools:
        ImageViewer.tools = list(ImageViewer.tools) + [CatalogTool.tool_id]
