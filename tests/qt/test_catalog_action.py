from pathlib import Path

import numpy as np
import pytest
from qtpy import QtCore, QtWidgets

from glue_zeropoint.glue.catalog_data import catalogs_for
from glue_zeropoint.glue.links import links_between
from glue_zeropoint.glue.stars import add_stars, stars_for
from glue_zeropoint.simulate import reference_catalog

OUTPUT = Path(__file__).parents[1] / "_output"


@pytest.fixture
def loaded(image_viewer):
    return image_viewer


def open_dialog(viewer):
    dialog = viewer.toolbar.tools["zp:catalog"].activate()
    assert dialog.isVisible() and not dialog.isModal()
    return dialog


def fetch(qtbot, dialog):
    qtbot.mouseClick(dialog.button_fetch, QtCore.Qt.MouseButton.LeftButton)
    task = dialog.task
    assert task is not None
    task.wait(20000)
    assert task.finished
    return task


def visible_message_boxes():
    return [w for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()]


def test_local_catalog_file_becomes_a_linked_dataset_shown_on_the_image(glue_app, loaded,
                                                                        qtbot, tmp_path):
    viewer, light, truth = loaded
    dc = glue_app.data_collection
    path = tmp_path / "my catalog.ecsv"
    reference_catalog(truth["field"], style="apass", extra_stars=0).write(path,
                                                                          format="ascii.ecsv")
    stars = add_stars(dc, light, [(truth["field"].stars["x"][0], truth["field"].stars["y"][0])])

    dialog = open_dialog(viewer)
    dialog.set_source("file")
    dialog.valuetext_file.setText(str(path))
    task = fetch(qtbot, dialog)
    assert task.error is None

    (catalog,) = catalogs_for(dc, light)
    assert catalog.label == "my catalog.ecsv: M13_V_000"
    assert catalog.size == len(truth["field"].stars)
    assert len(links_between(dc, catalog, light)) == 2
    assert len(links_between(dc, catalog, stars)) == 2
    assert any(layer.layer is catalog for layer in viewer.state.layers)
    assert "sources" in dialog.text_status.text()
    # markers land on the stars: catalog pixel positions through the links = true positions
    cx = np.asarray(catalog[light.pixel_component_ids[1]])
    order = np.argsort(np.asarray(catalog["ra"]))
    true_order = np.argsort(np.asarray(truth["field"].stars["ra"]))
    np.testing.assert_allclose(cx[order], np.asarray(truth["field"].stars["x"])[true_order],
                               atol=0.01)
    # fetching again updates the same dataset in place
    fetch(qtbot, dialog)
    assert catalogs_for(dc, light) == [catalog]
    viewer.figure.canvas.draw()
    OUTPUT.mkdir(exist_ok=True)
    glue_app.screenshot(str(OUTPUT / "catalog_markers.png"))
    dialog.close()


def test_vizier_through_the_stub_server(glue_app, loaded, qtbot, cds_stub):
    viewer, light, truth = loaded
    cds_stub.set_vizier("II/336/apass9", reference_catalog(truth["field"], style="apass"))
    dialog = open_dialog(viewer)
    dialog.set_source("vizier")
    dialog.valuetext_catalog.setText("II/336/apass9")
    task = fetch(qtbot, dialog)
    assert task.error is None, task.error
    (catalog,) = catalogs_for(glue_app.data_collection, light)
    assert catalog.size >= len(truth["field"].stars)
    assert "mag_V" in [c.label for c in catalog.main_components]
    assert any("-source=II/336/apass9" in str(r) for r in cds_stub.requests)
    dialog.close()


def test_service_failure_is_a_non_modal_message(glue_app, loaded, qtbot, cds_stub):
    viewer, light, _truth = loaded
    cds_stub.fail("http500", service="vizier")
    dialog = open_dialog(viewer)
    dialog.set_source("vizier")
    dialog.valuetext_catalog.setText("II/336/apass9")
    task = fetch(qtbot, dialog)
    assert task.error is not None
    assert catalogs_for(glue_app.data_collection, light) == []
    boxes = visible_message_boxes()
    assert boxes and not boxes[-1].isModal()
    assert "II/336/apass9" in boxes[-1].text() or "VizieR" in boxes[-1].text()
    assert dialog.text_status.text()
    for box in boxes:
        box.close()
    dialog.close()


def test_image_without_wcs_asks_for_a_file(glue_app, qtbot, tmp_path):
    from glue_qt.viewers.image import ImageViewer
    from zp_nights import sim_ccd

    from glue_zeropoint.glue.loader import ccd_to_data
    from glue_zeropoint.qt.catalog_action import fetch_catalog

    ccd, _truth = sim_ccd()
    ccd.wcs = None
    image = ccd_to_data(ccd, "no wcs")
    glue_app.add_data(image)
    viewer = glue_app.new_data_viewer(ImageViewer, data=image)
    done = []
    assert fetch_catalog(viewer, "simbad", on_done=done.append) is None
    assert done == [None]
    boxes = visible_message_boxes()
    assert boxes and "no celestial WCS" in boxes[-1].text()
    for box in boxes:
        box.close()
    assert stars_for(glue_app.data_collection, image) is None


def test_cancel_a_slow_query_returns_at_once(glue_app, loaded, qtbot, cds_stub):
    viewer, light, truth = loaded
    cds_stub.set_vizier("II/336/apass9", reference_catalog(truth["field"], style="apass"))
    cds_stub.fail("timeout", service="vizier", delay=60.0)  # held until released below
    dialog = open_dialog(viewer)
    dialog.set_source("vizier")
    qtbot.mouseClick(dialog.button_fetch, QtCore.Qt.MouseButton.LeftButton)
    task = dialog.task
    qtbot.waitUntil(lambda: task.dialog is not None and task.dialog.isVisible(), timeout=3000)
    qtbot.mouseClick(task.dialog.findChild(QtWidgets.QPushButton),
                     QtCore.Qt.MouseButton.LeftButton)
    # reported cancelled on the click itself, while the query is still waiting on the socket
    assert task.finished and task.running
    assert dialog.button_fetch.isEnabled()
    cds_stub.release()
    qtbot.waitUntil(lambda: not task.running, timeout=10000)  # the abandoned query ends
    qtbot.wait(50)
    assert catalogs_for(glue_app.data_collection, light) == []
    dialog.close()


def test_viewer_closed_while_its_query_runs(glue_app, loaded, qtbot, cds_stub):
    """The catalog arrives after its viewer was closed: it is still added and linked, and
    nothing touches the dead viewer (no exception in the Qt event loop)."""
    from glue_zeropoint.qt.catalog_action import fetch_catalog

    viewer, light, truth = loaded
    cds_stub.set_vizier("II/336/apass9", reference_catalog(truth["field"], style="apass"))
    cds_stub.fail("timeout", service="vizier", delay=60.0, times=1)  # held until released
    done = []
    task = fetch_catalog(viewer, "vizier:II/336/apass9", band="V", on_done=done.append)
    qtbot.waitUntil(lambda: len(cds_stub.requests) == 1, timeout=5000)
    viewer.close(warn=False)
    qtbot.wait(50)
    assert not task.finished
    cds_stub.release()
    qtbot.waitUntil(lambda: task.finished, timeout=20000)
    qtbot.wait(50)
    assert task.error is None
    (catalog,) = catalogs_for(glue_app.data_collection, light)
    assert done == [catalog] and catalog.size > 0
