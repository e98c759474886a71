import threading
from pathlib import Path

import numpy as np
import pytest
from qtpy import QtCore, QtWidgets
from zp_nights import FakeCalibration, fake_raw_dir

from glue_zeropoint.glue import loader
from glue_zeropoint.qt.menus import (
    OPEN_RAW_NIGHT_LABEL,
    BackgroundTask,
    open_raw_night,
    show_message,
)

OUTPUT = Path(__file__).parents[1] / "_output"


class GuiGatedCalibration(FakeCalibration):
    """A fake calibration that can only finish while the GUI thread's event loop runs.

    Each of its ``steps`` reports progress, then waits for the next tick of a timer living
    in the main thread: if the load blocked the event loop, no tick would come and the step
    fails (after a generous bound that only stops a hang). No sleeps, no clock assertions.
    """

    def __init__(self, steps=24):
        super().__init__()
        self.steps = steps
        self.ticked = threading.Event()
        self.waited = 0  # ticks of the GUI loop the calibration waited for and got

    def tick(self):
        self.ticked.set()

    def __call__(self, raw_dir, out_dir, progress):
        for i in range(self.steps):
            if progress is not None:
                progress(i, self.steps, f"step {i}")
            self.ticked.clear()
            if not self.ticked.wait(120):
                raise AssertionError("the GUI event loop stopped while the night loaded")
            self.waited += 1
        return super().__call__(raw_dir, out_dir, progress)


@pytest.fixture
def slow_calibration(monkeypatch, products_root, qapp):
    fake = GuiGatedCalibration()
    monkeypatch.setattr(loader, "_calibrate", fake)
    timer = QtCore.QTimer()  # main thread: ticks only while the event loop runs
    timer.timeout.connect(fake.tick)
    timer.start(20)
    yield fake
    timer.stop()


def visible_message_boxes():
    return [w for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()]


def test_menubar_entry_is_registered(glue_app):
    labels = [action.text() for action in glue_app._actions["plugins"]]
    assert OPEN_RAW_NIGHT_LABEL in labels


def test_glue_load_data_on_a_raw_folder_keeps_the_window_alive(glue_app, slow_calibration,
                                                                tmp_path):
    raw = fake_raw_dir(tmp_path / "raw night")
    datasets = glue_app.load_data(str(raw))  # glue's own path: factory -> qt task runner
    assert [d.label for d in datasets] == ["light_000", "light_001", "master bias"]
    # the calibration finished, so the event loop ticked at each of its steps meanwhile
    assert slow_calibration.waited == slow_calibration.steps
    assert len(glue_app.data_collection) == 3


def test_open_raw_night_is_asynchronous_with_progress(glue_app, slow_calibration, tmp_path,
                                                      qtbot):
    raw = fake_raw_dir(tmp_path / "raw")
    results = []
    task = open_raw_night(glue_app, raw, on_done=results.append)
    assert not task.finished  # returned at once, work goes on in a thread
    assert task.dialog is not None and not task.dialog.isModal()
    qtbot.waitUntil(lambda: task.dialog is None or task.dialog.value() > 0, timeout=60000)
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert task.finished and task.error is None
    assert [d.label for d in results[0]] == ["light_000", "light_001", "master bias"]
    assert len(glue_app.data_collection) == 3
    assert "Loaded 3 images" in glue_app.statusBar().currentMessage()


def test_cancel_stops_the_calibration_and_adds_nothing(glue_app, slow_calibration, tmp_path,
                                                       qtbot):
    raw = fake_raw_dir(tmp_path / "raw")
    slow_calibration.steps = 10 ** 6  # runs until cancelled
    results = []
    task = open_raw_night(glue_app, raw, on_done=results.append)
    qtbot.waitUntil(lambda: task.dialog is not None and task.dialog.isVisible(), timeout=60000)
    button = task.dialog.findChild(QtWidgets.QPushButton)
    assert button.text() == "Cancel"
    qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert results == [None]
    assert len(glue_app.data_collection) == 0
    assert not (loader.products_dir_for(raw) / loader.MANIFEST_NAME).exists()
    assert "cancelled" in glue_app.statusBar().currentMessage()


def test_bad_folder_gives_a_non_modal_message(glue_app, tmp_path, products_root):
    empty = tmp_path / "nothing here"
    empty.mkdir()
    results = []
    task = open_raw_night(glue_app, empty, on_done=results.append)
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert results == [None]
    boxes = visible_message_boxes()
    assert boxes and not boxes[-1].isModal()
    assert "no FITS frames" in boxes[-1].text() and "Traceback" not in boxes[-1].text()
    for box in boxes:
        box.close()


def test_background_task_reports_errors_of_any_kind(qapp):
    def boom(progress):
        raise KeyError("bug")

    task = BackgroundTask(boom, "boom", dialog=False).start()
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert isinstance(task.error, KeyError)
    box = show_message(None, "plain message", error=False)
    assert box.isVisible() and not box.isModal()
    box.close()

    # even a BaseException in the worker releases whoever waits (before, glue's Worker emitted
    # nothing and this wait ran to its timeout)
    def leave(progress):
        raise SystemExit(3)

    task = BackgroundTask(leave, "leave", dialog=False).start()
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert task.finished and isinstance(task.error, SystemExit)


def test_real_raw_night_in_the_real_app(glue_app, tmp_path, products_root, qtbot):
    from glue_qt.viewers.image import ImageViewer

    from glue_zeropoint.simulate import simulate_night

    raw = tmp_path / "raw night été"
    truth = simulate_night(raw, style="maxim", shape=(128, 128), n_bias=3, n_dark=3,
                           n_flat=3, lights=(("V", 20.0, 2),), field_kwargs={"n_stars": 60})
    datasets = glue_app.load_data(str(raw))
    lights = [d for d in datasets if d.meta["zp_kind"] == "light"]
    masters = [d for d in datasets if d.meta["zp_kind"] == "master"]
    assert len(lights) == 2 and {"master bias", "master flat_V"} <= {d.label for d in masters}
    for data in lights:
        assert [c.label for c in data.main_components] == ["flux", "uncertainty", "mask"]
        assert data.shape == (128, 128)
        assert data.world_component_ids[1].label == "Right Ascension"
        # the WCS is the simulator's: a star's pixel maps to its true sky position
        star = truth.field.stars[0]
        ra, dec = data.coords.pixel_to_world_values(star["x"], star["y"])
        assert ra == pytest.approx(star["ra"], abs=2e-4)
        assert dec == pytest.approx(star["dec"], abs=2e-4)
        assert np.nanmedian(data["uncertainty"]) > 0
    glue_app.resize(1100, 750)
    viewer = glue_app.new_data_viewer(ImageViewer, data=lights[0])
    viewer.viewer_size = (700, 600)
    viewer.position = (0, 0)
    glue_app.show()
    qtbot.waitExposed(glue_app)
    # the whole chain: detect stars on the calibrated light
    task = viewer.toolbar.tools["zp:detect"].activate()
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert task.error is None
    from glue_zeropoint.glue.stars import stars_for

    stars = stars_for(glue_app.data_collection, lights[0])
    assert stars.size >= 20 and np.all(np.isfinite(stars["ra"]))
    OUTPUT.mkdir(exist_ok=True)
    glue_app.screenshot(str(OUTPUT / "raw_night_loaded.png"))


def test_calibration_error_through_glue_load_data_is_a_non_modal_message(glue_app, tmp_path,
                                                                         monkeypatch,
                                                                         products_root):
    from glue_zeropoint.exceptions import CalibrationError

    def broken(raw_dir, out_dir, progress):
        raise CalibrationError("flat_15s_V003.FIT: the flat has zeros; take new flats")

    monkeypatch.setattr(loader, "_calibrate", broken)
    raw = fake_raw_dir(tmp_path / "raw")
    assert glue_app.load_data(str(raw)) == []
    assert len(glue_app.data_collection) == 0
    boxes = visible_message_boxes()
    assert boxes and not boxes[-1].isModal()
    assert "the flat has zeros" in boxes[-1].text()
    for box in boxes:
        box.close()


def test_file_import_data_entry(glue_app, fake_calibration, tmp_path):
    from glue_zeropoint.qt.menus import IMPORT_RAW_NIGHT_LABEL, import_raw_night

    labels = [action.text() for action in glue_app._actions["data_importers"]]
    assert IMPORT_RAW_NIGHT_LABEL in labels
    raw = fake_raw_dir(tmp_path / "raw")
    datasets = import_raw_night(raw)
    assert [d.label for d in datasets] == ["light_000", "light_001", "master bias"]


def test_broken_product_file_through_glue_load_data_is_a_non_modal_message(glue_app, tmp_path):
    from astropy.io import fits

    path = tmp_path / "M13_V_001_cal.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((20, 20), np.float32)),
                  fits.ImageHDU(np.zeros((10, 10), np.float32), name="UNCERT"),
                  fits.ImageHDU(np.zeros((20, 20), np.uint8), name="MASK")]).writeto(path)
    datasets = glue_app.load_data(str(path))  # glue_app's report_error raises: none is opened
    assert not datasets and len(glue_app.data_collection) == 0
    boxes = visible_message_boxes()
    assert boxes and not boxes[-1].isModal()
    assert "UNCERT extension is (10, 10) pixels but the image is (20, 20)" in boxes[-1].text()
    for box in boxes:
        box.close()


def test_background_task_outlives_its_closed_window(qapp, qtbot):
    """A viewer closed while its task runs: progress, the result and the messages must not
    touch the deleted widgets (a RuntimeError inside a Qt slot failed an unrelated test, and
    before done.emit() was in a finally, left a waiting event loop hanging)."""
    import threading

    window = QtWidgets.QMainWindow()
    window.show()
    release = threading.Event()

    def work(progress):
        progress(1, 3, "first")
        release.wait(120)  # released by the test
        progress(2, 3, "second")  # the window is gone by now
        return "result"

    task = BackgroundTask(work, "outlived", window, min_duration_ms=0).start()
    qtbot.waitUntil(lambda: task.dialog is not None and task.dialog.value() == 1, timeout=60000)
    window.deleteLater()  # takes the progress dialog (its child) with it
    qtbot.waitUntil(lambda: menus_live(window) is None, timeout=60000)
    release.set()
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert task.finished and task.result == "result" and task.error is None
    box = show_message(window, "the window is gone")  # falls back to no parent
    assert box.isVisible() and box.parent() is None
    box.close()


def menus_live(widget):
    from glue_zeropoint.qt.menus import live_widget

    return live_widget(widget)
