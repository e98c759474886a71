"""Catalog action in the image viewer: SIMBAD / VizieR / local file for the image's field.

``zp:catalog`` (:class:`CatalogTool`) opens a non-modal :class:`CatalogDialog`. The query runs in
a worker thread (progress dialog with Cancel); the result becomes a glue table dataset linked to
the image by RA/Dec and to its stars table (:func:`glue_zeropoint.glue.catalog_data.link_catalog`),
and can be shown as markers on the image (a scatter layer through the links). Fetching the same
catalog again for the same image updates that dataset in place. Errors from our code show in
the dialog and as a non-modal message.

:func:`fetch_catalog` does the same without the dialog (scripts, tests).

Offline work
------------
The glue setting ``ZEROPOINT_CATALOG_OFFLINE`` (registered by :func:`register`; glue keeps it in
``~/.glue/settings.cfg`` with its other settings) and ``GLUE_ZEROPOINT_OFFLINE=1`` make the
dialog's "Offline (cache and local files only)" box checked by default and are what
:func:`fetch_catalog` and :func:`identify_stars` use when ``offline`` is not given: only the
catalog cache and local files are used, never a service.

SIMBAD identification
---------------------
:func:`identify_stars` (the dialog's "Identify stars in SIMBAD" button) makes the one SIMBAD cone
query of the image field in a worker thread (cached, so the answer is shared with a SIMBAD
catalog fetched for the same image) and adds ``simbad_id``, ``simbad_otype``,
``simbad_sep_arcsec``, ``variable`` and ``nonstellar`` (0/1) components to the image's stars
dataset, in place (:func:`glue_zeropoint.glue.identification.add_identification`): links,
subsets and viewers stay. This module keeps the dialog, the tool and the worker threads; the
dataset work is in :mod:`glue_zeropoint.glue.catalog_data` and
:mod:`glue_zeropoint.glue.identification`.
"""

import logging
from pathlib import Path

import numpy as np
from glue.config import viewer_tool
from glue.viewers.common.tool import Tool
from qtpy import QtCore, QtWidgets

from ..exceptions import CatalogError, ZeropointError
from ..glue.catalog_data import add_or_update_catalog, catalog_field
from ..glue.identification import (  # noqa: F401 (IDENTIFICATION_COMPONENTS: API)
    IDENTIFICATION_COMPONENTS,
    add_identification,
    stars_snapshot,
)
from ..glue.stars import stars_for
from .menus import BackgroundTask, describe_error, live_widget, show_message, start_job
from .tools import image_of

__all__ = ["CatalogTool", "CatalogDialog", "fetch_catalog", "catalog_field", "identify_stars",
           "add_identification", "offline_default", "OFFLINE_SETTING",
           "IDENTIFICATION_COMPONENTS", "register"]

log = logging.getLogger(__name__)

MARKER_COLOR = "#ff7f0e"
SOURCES = (("VizieR catalog", "vizier"), ("SIMBAD", "simbad"), ("Local file", "file"))

#: The glue setting (``glue.config.settings``) of offline catalog work.
OFFLINE_SETTING = "ZEROPOINT_CATALOG_OFFLINE"


def offline_default():
    """True when the glue setting or ``GLUE_ZEROPOINT_OFFLINE=1`` asks for offline work."""
    from glue.config import settings

    from ..catalogs.config import offline_from_env

    setting = getattr(settings, OFFLINE_SETTING) if OFFLINE_SETTING in settings else False
    return bool(setting) or offline_from_env()


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


def fetch_catalog(viewer, spec, *, image=None, band=None, show=True, on_done=None, offline=None):
    """Query a catalog for the field of ``image`` (default: the viewer's reference image).

    ``spec`` is ``'simbad'``, ``'vizier:<id>'``, ``'default'`` or a local file path. Runs in a
    worker thread; returns the :class:`~glue_zeropoint.qt.menus.BackgroundTask` (or ``None`` if
    it could not start). ``on_done(data_or_None)`` is called at the end. ``offline=None``:
    :func:`offline_default` (the glue setting or ``GLUE_ZEROPOINT_OFFLINE``).
    """
    from ..catalogs import get_catalog

    offline = offline_default() if offline is None else bool(offline)

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
            data = add_or_update_catalog(dc, image, table, f"{catalog}: {image.label}")
            if live_widget(viewer) is not None and viewer.state is not None:  # not closed
                if show:
                    show_catalog_layer(viewer, data)
                cached = " (from cache)" if table.meta.get("from_cache") else ""
                viewer.set_status(f"{catalog}: {len(table)} sources{cached}")
        if on_done is not None:
            on_done(data)

    return start_job(task, viewer, f"fetch {name}", succeeded, on_done,
                     message=lambda err: f"Catalog {name}: {err}")


def identify_stars(viewer, *, image=None, offline=None, on_done=None, match_radius=None):
    """Identify the stars of ``image`` (default: the viewer's reference image) in SIMBAD.

    One SIMBAD cone query for the image field (the same cone as a SIMBAD catalog fetched for
    the image, so a cached answer is reused) in a worker thread, then
    :func:`add_identification` on the image's stars dataset. ``offline=None``:
    :func:`offline_default`. Errors are non-modal messages. Returns the
    :class:`~glue_zeropoint.qt.menus.BackgroundTask` or ``None`` if it could not start;
    ``on_done(stars_data_or_None)`` is called at the end.
    """

    from ..catalogs import identify_field

    def give_up(text, error=True):
        show_message(viewer, text, error=error)
        if on_done is not None:
            on_done(None)
        return None

    image = image if image is not None else image_of(viewer)
    if image is None:
        return give_up("Stars are identified on an image loaded by glue-zeropoint: make one "
                       "the reference data of this viewer.", error=False)
    dc = viewer.session.data_collection
    stars = stars_for(dc, image)
    if stars is None or stars.size == 0:
        return give_up(f"{image.label}: no stars measured yet; measure some with the Stars "
                       f"tool or 'Detect all stars', then identify them in SIMBAD.",
                       error=False)
    try:
        center, radius = catalog_field(image)
        if center is None:
            raise CatalogError(f"{image.label}: the image has no celestial WCS, so its stars "
                               f"have no sky position; solve it first")
    except ZeropointError as err:
        return give_up(f"SIMBAD identification: {describe_error(err)}")
    offline = offline_default() if offline is None else bool(offline)
    snapshot = stars_snapshot(stars, image)
    task = BackgroundTask(
        lambda progress: identify_field(snapshot, center, radius, offline=offline,
                                        match_radius=match_radius, progress=progress),
        f"SIMBAD identification for {image.label}", viewer, abandon_on_cancel=True)

    def succeeded(table):
        target = stars_for(dc, image)
        if target is None:
            if on_done is not None:
                on_done(None)
            return
        n_found = add_identification(target, table)
        info = table.meta.get("identify", {})
        cached = " (from cache)" if info.get("from_cache") else ""
        if live_widget(viewer) is not None:
            viewer.set_status(f"SIMBAD{cached}: {n_found} of {target.size} stars identified, "
                              f"{info.get('n_variable', 0)} variable, "
                              f"{info.get('n_nonstellar', 0)} non-stellar")
        if on_done is not None:
            on_done(target)

    return start_job(task, viewer, "identify the stars", succeeded, on_done,
                     message=lambda err: f"SIMBAD identification: {err}")


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
        self.bool_offline = QtWidgets.QCheckBox("Offline (cache and local files only)")
        self.bool_offline.setChecked(offline_default())
        self.bool_offline.setToolTip(
            "Use only answers cached by earlier queries and local files; never contact "
            "VizieR or SIMBAD (default: the ZEROPOINT_CATALOG_OFFLINE glue setting or "
            "GLUE_ZEROPOINT_OFFLINE=1)")
        self.button_identify = QtWidgets.QPushButton("Identify stars in SIMBAD")
        self.button_identify.setToolTip(
            "Query SIMBAD once for the image field and add simbad_id, simbad_otype, variable "
            "and nonstellar to the image's stars table")
        self.identify_task = None
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
        buttons.addWidget(self.button_identify)
        buttons.addStretch(1)
        buttons.addWidget(self.button_fetch)
        buttons.addWidget(self.button_close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.bool_show)
        layout.addWidget(self.bool_offline)
        layout.addWidget(self.text_status)
        layout.addLayout(buttons)

        self.combosel_source.currentIndexChanged.connect(self._update_enabled)
        self.button_browse.clicked.connect(self._browse)
        self.button_fetch.clicked.connect(self.fetch)
        self.button_identify.clicked.connect(self.identify)
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
                                  on_done=self._done, offline=self.bool_offline.isChecked())
        return self.task

    def identify(self):
        """Identify the image's stars in SIMBAD (see :func:`identify_stars`)."""
        if self.identify_task is not None and not self.identify_task.finished:
            return self.identify_task
        self.button_identify.setEnabled(False)
        self.text_status.setText("Identifying the stars in SIMBAD…")
        self.identify_task = identify_stars(self.viewer, offline=self.bool_offline.isChecked(),
                                            on_done=self._identified)
        return self.identify_task

    def _identified(self, stars):
        try:
            self.button_identify.setEnabled(True)
            if stars is None:
                task = self.identify_task
                error = task.error if task is not None else None
                self.text_status.setText(describe_error(error) if error else
                                         "No star identified.")
            else:
                found = int(np.count_nonzero(np.asarray(stars["simbad_id"]) != ""))
                self.text_status.setText(f"{stars.label}: {found} of {stars.size} stars "
                                         f"identified in SIMBAD.")
        except RuntimeError:  # the dialog was closed meanwhile
            pass

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


def register_setting():
    """Register the ``ZEROPOINT_CATALOG_OFFLINE`` glue setting (default False).

    glue reads saved settings (``~/.glue/settings.cfg``) again after loading the plugins, so a
    saved value applies; glue saves all settings when its preferences are accepted.
    """
    from glue.config import settings

    if OFFLINE_SETTING not in settings:
        settings.add(OFFLINE_SETTING, False, validator=bool)


def register():
    """Register the offline setting and the tool; add the tool to the stock image viewer."""
    from glue_qt.viewers.image import ImageViewer

    register_setting()

    if CatalogTool.tool_id not in viewer_tool.members:
        viewer_tool.add(CatalogTool)
    if CatalogTool.tool_id not in ImageViewer.tools:
        ImageViewer.tools = list(ImageViewer.tools) + [CatalogTool.tool_id]
