"""Plugins > Measure a night…: the whole night from a raw folder inside Glue (worker thread,
progress, non-modal errors), then a click on a frame loads it with its stars."""

from pathlib import Path

import numpy as np
import pytest
from qtpy import QtWidgets

from glue_zeropoint.simulate import reference_catalog
from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night


@pytest.fixture(scope="module")
def raw_night(tmp_path_factory):
    base = tmp_path_factory.mktemp("action_night")
    truth, lights = write_extinction_night(base / "raw", seed=5, n_per_band=4,
                                           bands={"V": DEFAULT_BANDS["V"]}, cloud=None)
    reference_catalog(truth.field, style="normalised").write(base / "catalog.ecsv")
    return base, lights


def _boxes():
    return [w for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()]


def test_menu_entry_is_registered(glue_app):
    from glue_zeropoint.qt.night_action import MEASURE_NIGHT_LABEL

    assert MEASURE_NIGHT_LABEL in [a.text() for a in glue_app._actions["plugins"]]


def test_measure_a_night_then_click_a_frame(glue_app, raw_night, tmp_path):
    from glue_zeropoint.qt.night_action import measure_night_in_app
    from glue_zeropoint.qt.night_viewer import NightViewer

    base, lights = raw_night
    done = []
    task = measure_night_in_app(glue_app, base / "raw", str(base / "catalog.ecsv"),
                                out=tmp_path / "out", on_done=done.append)
    assert not task.finished  # returned at once: the night runs in a worker thread
    assert task.dialog is not None and not task.dialog.isModal()
    task.wait(600000)  # the bound only stops a hang
    assert task.error is None, task.error
    night, stars = done[0]
    assert night.meta["zp_kind"] == "night" and night.size == len(lights)
    assert stars.meta["zp_kind"] == "night_stars"
    assert len(task.lines) == len(lights) and all(ln.startswith("[") for ln in task.lines)
    assert isinstance(task.viewer, NightViewer) and task.viewer.state.night is night
    assert "k =" in task.viewer.info.text()
    assert "4 of 4 frames measured" in glue_app.statusBar().currentMessage()
    assert (tmp_path / "out" / "night.ecsv").is_file()

    # a click on a frame that is not in the session loads its calibrated product + stars
    n_before = len(glue_app.data_collection)
    image_viewer = task.viewer.show_frame(2)
    assert image_viewer is not None
    image = image_viewer.state.reference_data
    assert image.meta["zp_kind"] == "light"
    assert Path(image.meta["zp_product"]).name == f"{Path(str(night['file'][2])).stem}_cal.fits"
    frame_stars = [d for d in glue_app.data_collection
                   if d.meta.get("zp_night_stars_for") == image.uuid]
    assert len(frame_stars) == 1
    n_det = int(np.sum(np.asarray(stars["frame"]) == np.asarray(night["frame"])[2]))
    assert frame_stars[0].size == n_det > 0
    assert frame_stars[0] in [layer.layer for layer in image_viewer.state.layers]
    assert len(glue_app.data_collection) == n_before + 2
    # beside the night viewer, not on top of it; stretched so that the stars show
    x, y = task.viewer.position
    assert image_viewer.position[0] >= x + task.viewer.viewer_size[0]
    assert image_viewer.position[1] == y
    assert [la.percentile for la in image_viewer.state.layers if la.layer is image] == [99.5]
    # clicking it again reuses both
    task.viewer.show_frame(2)
    assert len(glue_app.data_collection) == n_before + 2


def test_click_falls_back_to_the_raw_light(glue_app, raw_night, tmp_path):
    """No calibrated products kept (measured with --no-calibrate): the raw light is shown."""
    from glue_zeropoint.qt.night_action import measure_night_in_app

    base, lights = raw_night
    task = measure_night_in_app(glue_app, base / "raw", None, out=tmp_path / "out",
                                calibrate=False)
    task.wait(600000)
    assert task.error is None, task.error
    assert not (tmp_path / "out" / "calibrated").exists()
    viewer = task.viewer
    image_viewer = viewer.show_frame(0)
    assert image_viewer is not None
    image = image_viewer.state.reference_data
    assert Path(image.meta["zp_product"]).parent == base / "raw"


def test_a_bad_folder_is_a_non_modal_message(glue_app, tmp_path):
    from glue_zeropoint.qt.night_action import measure_night_in_app

    empty = tmp_path / "empty"
    empty.mkdir()
    done = []
    task = measure_night_in_app(glue_app, empty, None, on_done=done.append)
    task.wait(120000)
    assert done == [None] and len(glue_app.data_collection) == 0
    boxes = _boxes()
    assert boxes and not boxes[-1].isModal()
    assert "Could not measure the night" in boxes[-1].text()
    assert "Traceback" not in boxes[-1].text()
    for box in boxes:
        box.close()


def test_cancel_stops_the_night_and_adds_nothing(glue_app, raw_night, tmp_path):
    from glue_zeropoint.qt.night_action import measure_night_in_app

    base, _ = raw_night
    done = []
    task = measure_night_in_app(glue_app, base / "raw", None, out=tmp_path / "out",
                                on_done=done.append)
    task.cancel()  # stops at the night's next progress report
    task.wait(600000)
    assert done == [None] and len(glue_app.data_collection) == 0
    assert "cancelled" in glue_app.statusBar().currentMessage()
    assert not (tmp_path / "out" / "night.ecsv").exists()
