"""A new user's first minutes in the app: a raw night and a catalog load with no dialog and
no Qt warning (issue 12, item 4).

The app here is a real ``GlueApplication`` with the plugin registered through glue's entry
point, glue's autolink setting left at its default ("always show" the suggestion dialog), any
modal dialog failing the test (``no_modal_dialogs``) and every Qt message captured
(``qInstallMessageHandler``).
"""

from pathlib import Path

import pytest
from glue.core.autolinking import find_possible_links
from glue.plugins.wcs_autolinking.wcs_autolinking import WCSLink
from helpers import glue_application
from qtpy import QtCore, QtWidgets

from glue_zeropoint.glue.links import AUTOLINKER_LABEL, link_images

OUTPUT = Path(__file__).parents[1] / "_output"


@pytest.fixture
def qt_messages():
    """Every Qt message (debug included) of the test, as ``(type, text)``."""
    messages = []

    def handler(mode, context, message):
        messages.append((mode, message))

    previous = QtCore.qInstallMessageHandler(handler)
    yield messages
    QtCore.qInstallMessageHandler(previous)


@pytest.fixture
def fresh_app(qapp, no_modal_dialogs, monkeypatch, products_root):
    """A GlueApplication as a user gets it: autolink dialogs on ("always_show")."""
    app = glue_application(monkeypatch, "always_show",
                           ("Astronomy WCS", "Astronomy WCS (3D)", AUTOLINKER_LABEL))
    yield app
    app.close()


@pytest.fixture(scope="module")
def raw_night(tmp_path_factory):
    """A small simulated raw night with three lights (V, V, B) and its reference catalog."""
    from glue_zeropoint.simulate import reference_catalog, simulate_night

    root = tmp_path_factory.mktemp("quiet")
    raw = root / "raw night"
    truth = simulate_night(raw, shape=(128, 128), n_bias=3, n_dark=3, n_flat=3,
                           lights=(("V", 20.0, 2), ("B", 30.0, 1)),
                           field_kwargs={"n_stars": 40, "seed": 2})
    catalog = root / "field catalog.ecsv"
    reference_catalog(truth.field, bands=("B", "V"), seed=2).write(catalog, format="ascii.ecsv")
    return raw, catalog


def _qt_warnings(messages):
    return [text for mode, text in messages
            if mode in (QtCore.QtMsgType.QtWarningMsg, QtCore.QtMsgType.QtCriticalMsg,
                        QtCore.QtMsgType.QtFatalMsg)]


def test_night_and_catalog_load_with_no_dialog_and_no_qt_warning(fresh_app, raw_night,
                                                                 qt_messages, qtbot):
    from glue_qt.viewers.image import ImageViewer
    from glue_qt.viewers.table import TableViewer

    from glue_zeropoint.qt.catalog_action import fetch_catalog

    raw, catalog_file = raw_night
    app = fresh_app
    dc = app.data_collection
    # File > Open of a folder (glue's load_data -> add_datasets -> autolinkers): a modal
    # "Astronomy WCS" suggestion would raise ModalDialogOpened here
    app.load_data(str(raw))
    lights = [d for d in dc if d.meta.get("zp_kind") == "light"]
    assert len(lights) == 3
    wcs_links = [link for link in dc.external_links if isinstance(link, WCSLink)]
    assert {frozenset((link.data1, link.data2)) for link in wcs_links} == {
        frozenset((a, b)) for i, a in enumerate(lights) for b in lights[i + 1:]}
    assert find_possible_links(dc) == {}  # glue has nothing left to suggest

    # the catalog, as the catalog tool fetches a local file for the image's field
    viewer = app.new_data_viewer(ImageViewer, data=lights[0])
    done = []
    fetch_catalog(viewer, str(catalog_file), band="V", offline=True, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=60000)
    catalog = done[0]
    assert catalog is not None and catalog in dc and len(catalog["ra"]) > 20
    # and as glue's own File > Open of the same table file
    app.load_data(str(catalog_file))
    assert find_possible_links(dc) == {}

    # what the user sees now: the night and the catalog on the image, nothing asking
    OUTPUT.mkdir(exist_ok=True)
    app.resize(1200, 800)
    viewer.viewer_size, viewer.position = (800, 600), (0, 0)
    app.show()
    QtWidgets.QApplication.processEvents()
    viewer.figure.canvas.draw()
    app.screenshot(str(OUTPUT / "night_and_catalog_loaded.png"))
    assert not [w for w in QtWidgets.QApplication.topLevelWidgets()
                if isinstance(w, QtWidgets.QDialog) and w.isVisible()
                and not isinstance(w, QtWidgets.QProgressDialog)]

    # a table viewer showing a subset, closed with the app: glue-qt's table model used to
    # print "dataChanged() called with an invalid index range" here
    table = app.new_data_viewer(TableViewer, data=catalog)
    dc.new_subset_group("bright", catalog.id["ra"] > float(catalog["ra"].min()))
    assert len(table.layers) == 2
    app.show()
    QtWidgets.QApplication.processEvents()
    table.close(warn=False)
    QtWidgets.QApplication.processEvents()
    warnings = [text for text in _qt_warnings(qt_messages)
                if "propagateSizeHints" not in text]  # the offscreen platform's own notice
    assert warnings == []


def test_link_images_is_idempotent_and_leaves_other_data_alone(zp_products):
    from glue.core import Data, DataCollection
    from glue.core.data_factories import load_data

    folder, _truths = zp_products
    images = load_data(str(folder))
    table = Data(x=[1.0, 2.0], label="table")
    dc = DataCollection(images + [table])
    assert len(images) == 3  # two lights and a master flat, all with a WCS
    first = link_images(dc)
    assert {frozenset((link.data1, link.data2)) for link in first} == {
        frozenset((a, b)) for i, a in enumerate(images) for b in images[i + 1:]}
    assert link_images(dc) == []  # never twice
    assert find_possible_links(dc) == {}


def test_plugin_autolinker_runs_before_glues_wcs_autolinker(fresh_app):
    from glue.config import autolinker

    labels = [label for label, _function in autolinker.members]
    assert labels.index(AUTOLINKER_LABEL) < labels.index("Astronomy WCS")


def test_table_model_fix_applies_while_glue_qt_has_the_bug():
    """If glue-qt fixes its table model, the plugin's replacement stops being applied (and
    this test says to remove it)."""
    from glue_qt.viewers.table.data_viewer import DataTableModel

    from glue_zeropoint.qt import compat

    compat.fix_table_model()
    assert getattr(DataTableModel.data_changed, "_zp_fixed", False), (
        "glue-qt's DataTableModel.data_changed no longer builds the invalid range: "
        "remove glue_zeropoint.qt.compat.fix_table_model")
    assert not compat.table_model_needs_fix()


def test_plugins_menu_opens_a_raw_night_folder_without_a_dialog(fresh_app, raw_night,
                                                                monkeypatch, qt_messages, qtbot):
    """Plugins > Open raw night folder…: the folder picker (a folder, not files) returns the
    night; it loads in the background and is linked, with no suggestion dialog."""
    from glue_zeropoint.qt.menus import OPEN_RAW_NIGHT_LABEL

    raw, _catalog = raw_night
    app = fresh_app
    picked = []

    def pick_folder(parent, caption, *args, **kwargs):
        picked.append(caption)
        return str(raw)

    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", pick_folder)
    (action,) = [a for a in app._actions["plugins"] if a.text() == OPEN_RAW_NIGHT_LABEL]
    action.trigger()
    qtbot.waitUntil(lambda: len(app.data_collection) > 0, timeout=120000)
    assert picked and "raw night" in picked[0]
    lights = [d for d in app.data_collection if d.meta.get("zp_kind") == "light"]
    assert len(lights) == 3
    assert len([link for link in app.data_collection.external_links
                if isinstance(link, WCSLink)]) == 3
    assert find_possible_links(app.data_collection) == {}
    assert [text for text in _qt_warnings(qt_messages) if "propagateSizeHints" not in text] == []
