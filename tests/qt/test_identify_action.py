"""'Identify stars in SIMBAD' and offline catalog work in Glue (real GlueApplication + CDS stub)."""

import numpy as np
import pytest
from astropy.table import Table
from qtpy import QtCore, QtWidgets
from zp_nights import write_products

from glue_zeropoint.glue.links import links_between
from glue_zeropoint.glue.stars import add_stars, stars_for
from glue_zeropoint.qt.catalog_action import (
    IDENTIFICATION_COMPONENTS,
    OFFLINE_SETTING,
    identify_stars,
    offline_default,
)

N_STARS = 8
NOT_IN_SIMBAD = 5  # the 6th star is unknown to SIMBAD


@pytest.fixture
def loaded(glue_app, qtbot, tmp_path):
    from glue_qt.viewers.image import ImageViewer

    folder, truths = write_products(tmp_path / "night")
    light = glue_app.load_data(str(folder))[0]
    viewer = glue_app.new_data_viewer(ImageViewer, data=light)
    glue_app.show()
    qtbot.waitExposed(glue_app)
    return viewer, light, truths[0]


@pytest.fixture
def glue_settings(glue_app):
    """glue's settings; the offline setting is put back as it was after the test."""
    from glue.config import settings

    was_default = settings.is_default(OFFLINE_SETTING)
    old = getattr(settings, OFFLINE_SETTING)
    yield settings
    setattr(settings, OFFLINE_SETTING, old)
    if was_default:
        settings._members.pop(OFFLINE_SETTING, None)


def isolated(truth, n=N_STARS, distance=12.0):
    """The first ``n`` simulated stars without a neighbour closer than ``distance`` pixels."""
    stars = truth["field"].stars
    x, y = np.asarray(stars["x"], float), np.asarray(stars["y"], float)
    d2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    np.fill_diagonal(d2, np.inf)
    chosen = np.nonzero(d2.min(axis=1) > distance ** 2)[0][:n]
    assert len(chosen) == n
    return chosen


def simbad_answer(truth):
    """SIMBAD objects at isolated stars of the field: an RR Lyrae, a galaxy, plain stars."""
    stars = truth["field"].stars
    keep = [k for i, k in enumerate(isolated(truth)) if i != NOT_IN_SIMBAD]
    table = Table()
    table["main_id"] = np.array([f"TYC 42-{i}-1" for i in range(N_STARS) if i != NOT_IN_SIMBAD])
    table["ra"] = np.asarray(stars["ra"], float)[keep]
    table["dec"] = np.asarray(stars["dec"], float)[keep]
    table["ra"].unit = table["dec"].unit = "deg"
    table["coo_err_maj"] = np.full(len(keep), 10.0, dtype=np.float32)
    table["otype"] = np.array(["RR*", "G"] + ["*"] * (len(keep) - 2), dtype="<U8")
    for band in "BVRI":
        table[band] = np.full(len(keep), 12.0, dtype=np.float32)
    return table


def measure(glue_app, light, truth):
    stars = truth["field"].stars
    chosen = isolated(truth)
    xy = np.column_stack([np.asarray(stars["x"], float)[chosen],
                          np.asarray(stars["y"], float)[chosen]])
    data = add_stars(glue_app.data_collection, light, xy)
    assert data.size == N_STARS
    # which chosen star each row is (rows follow the positions, but do not rely on it)
    x, y = np.asarray(data["x"]), np.asarray(data["y"])
    truth_index = [int(np.argmin((xy[:, 0] - a) ** 2 + (xy[:, 1] - b) ** 2))
                   for a, b in zip(x, y, strict=True)]
    return data, truth_index


def open_dialog(viewer):
    dialog = viewer.toolbar.tools["zp:catalog"].activate()
    assert dialog.isVisible() and not dialog.isModal()
    return dialog


def close_dialog(qtbot, viewer, dialog):
    dialog.close()  # deleted on close: the next one is made anew, with the current defaults
    qtbot.waitUntil(lambda: viewer.toolbar.tools["zp:catalog"].dialog is None, timeout=3000)


def identify(qtbot, dialog):
    qtbot.mouseClick(dialog.button_identify, QtCore.Qt.MouseButton.LeftButton)
    task = dialog.identify_task
    assert task is not None
    task.wait(20000)
    qtbot.waitUntil(lambda: task.finished, timeout=20000)
    return task


def message_boxes():
    return [w for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()]


def close_boxes():
    for box in message_boxes():
        box.close()


def cone_queries(stub):
    return [q for q in stub.simbad_queries() if "CONTAINS" in q]


def test_identify_adds_components_to_the_stars_in_place(glue_app, loaded, qtbot, cds_stub):
    viewer, light, truth = loaded
    dc = glue_app.data_collection
    cds_stub.set_simbad(simbad_answer(truth))
    dialog = open_dialog(viewer)
    assert not dialog.bool_offline.isChecked()

    # no stars yet: an information message, nothing queried
    done = []
    assert identify_stars(viewer, on_done=done.append) is None and done == [None]
    assert "no stars measured yet" in message_boxes()[-1].text()
    assert not message_boxes()[-1].isModal()
    close_boxes()
    assert cone_queries(cds_stub) == []

    stars, truth_index = measure(glue_app, light, truth)
    subset = dc.new_subset_group("bright", stars.id["star_id"] < 4)
    n_links = len(links_between(dc, stars, light))
    star_id_cid = stars.id["star_id"]

    task = identify(qtbot, dialog)
    assert task.error is None, task.error
    labels = [c.label for c in stars.components]
    assert set(IDENTIFICATION_COMPONENTS) <= set(labels)
    names = {k: f"TYC 42-{k}-1" for k in range(N_STARS) if k != NOT_IN_SIMBAD}
    simbad_id = np.asarray(stars["simbad_id"]).astype(str)
    otype = np.asarray(stars["simbad_otype"]).astype(str)
    assert [simbad_id[i] for i in range(stars.size)] == [names.get(k, "") for k in truth_index]
    row = {k: i for i, k in enumerate(truth_index)}
    assert otype[row[0]] == "RR*" and stars["variable"][row[0]] == 1
    assert otype[row[1]] == "G" and stars["nonstellar"][row[1]] == 1
    assert otype[row[NOT_IN_SIMBAD]] == "" and np.isnan(stars["simbad_sep_arcsec"][row[NOT_IN_SIMBAD]])
    assert int(np.sum(stars["variable"])) == 1 and int(np.sum(stars["nonstellar"])) == 1
    assert np.nanmax(stars["simbad_sep_arcsec"]) < 2.0
    # in place: same dataset, same ids, links and subsets survive
    assert stars_for(dc, light) is stars and stars.id["star_id"] is star_id_cid
    assert len(links_between(dc, stars, light)) == n_links
    assert subset in dc.subset_groups and stars.subsets[0].to_mask().sum() == 4
    assert "7 of 8 stars identified" in dialog.text_status.text()
    assert len(cone_queries(cds_stub)) == 1

    # again: answered by the cache, components updated (not duplicated)
    cid = stars.id["simbad_id"]
    identify(qtbot, dialog)
    assert [c.label for c in stars.components].count("simbad_id") == 1
    assert stars.id["simbad_id"] is cid
    assert len(cone_queries(cds_stub)) == 1
    dialog.close()


def test_offline_setting_and_checkbox_use_the_cache_only(glue_app, loaded, qtbot, cds_stub,
                                                         monkeypatch, tmp_path, glue_settings):
    settings = glue_settings
    viewer, light, truth = loaded
    cds_stub.set_simbad(simbad_answer(truth))
    stars, _ = measure(glue_app, light, truth)
    dialog = open_dialog(viewer)
    assert identify(qtbot, dialog).error is None  # online once: the answer is cached
    close_dialog(qtbot, viewer, dialog)
    cds_stub.stop()
    sent = len(cds_stub.requests)

    # the glue setting (registered by the plugin) makes the dialog offline by default
    assert OFFLINE_SETTING in settings and getattr(settings, OFFLINE_SETTING) is False
    setattr(settings, OFFLINE_SETTING, True)
    assert offline_default()
    dialog = open_dialog(viewer)
    assert dialog.bool_offline.isChecked()
    stars.update_components({stars.id["variable"]: np.zeros(stars.size, np.int8)})
    task = identify(qtbot, dialog)
    assert task.error is None, task.error
    assert int(np.sum(stars["variable"])) == 1
    # the catalog action offline: SIMBAD for the same field comes from the same cache entry
    dialog.set_source("simbad")
    qtbot.mouseClick(dialog.button_fetch, QtCore.Qt.MouseButton.LeftButton)
    dialog.task.wait(20000)
    qtbot.waitUntil(lambda: dialog.task.finished, timeout=20000)
    assert dialog.task.error is None, dialog.task.error
    assert dialog.result_data is not None and dialog.result_data.meta["from_cache"] is True
    assert len(cds_stub.requests) == sent  # nothing was sent
    close_dialog(qtbot, viewer, dialog)

    # an empty cache offline: a non-modal message that says what to do
    setattr(settings, OFFLINE_SETTING, False)
    assert not offline_default()
    monkeypatch.setenv("GLUE_ZEROPOINT_OFFLINE", "1")  # the environment variable also counts
    monkeypatch.setenv("GLUE_ZEROPOINT_CACHE_DIR", str(tmp_path / "empty cache"))
    dialog = open_dialog(viewer)
    assert dialog.bool_offline.isChecked()
    task = identify(qtbot, dialog)
    assert task.error is not None
    boxes = message_boxes()
    assert boxes and not boxes[-1].isModal()
    text = boxes[-1].text()
    assert "SIMBAD identification: offline: no cached answer of SIMBAD" in text
    assert "run the same query once online" in text
    assert "offline" in dialog.text_status.text()
    assert dialog.button_identify.isEnabled()
    close_boxes()
    close_dialog(qtbot, viewer, dialog)


def test_the_offline_setting_is_saved_and_read_by_glue(glue_settings, monkeypatch, tmp_path):
    import glue.config
    from glue._settings_helpers import load_settings, save_settings

    settings = glue_settings
    monkeypatch.setattr(glue.config, "CFG_DIR", str(tmp_path / "glue cfg"))
    monkeypatch.setattr(settings, "_save_to_disk", True, raising=False)
    setattr(settings, OFFLINE_SETTING, True)
    save_settings()
    cfg = tmp_path / "glue cfg" / "settings.cfg"
    assert "zeropoint_catalog_offline = true" in cfg.read_text()
    # read back (only this setting, so that the other settings of the session stay as they are)
    cfg.write_text("[main]\nzeropoint_catalog_offline = true\n")
    setattr(settings, OFFLINE_SETTING, False)
    load_settings(force=True)
    assert getattr(settings, OFFLINE_SETTING) is True


def test_add_identification_aligns_rows_by_star_id():
    from glue.core import Data

    from glue_zeropoint.qt.catalog_action import add_identification

    stars = Data(star_id=np.array([0, 1, 2]), ra=np.zeros(3), label="Stars: x")
    result = Table({"star_id": [2, 0], "simbad_id": ["B", "A"], "simbad_otype": ["G", "RR*"],
                    "simbad_sep_arcsec": [0.2, 0.1], "variable": [False, True],
                    "nonstellar": [True, False]})
    assert add_identification(stars, result) == 2
    assert list(np.asarray(stars["simbad_id"]).astype(str)) == ["A", "", "B"]
    assert list(stars["variable"]) == [1, 0, 0] and list(stars["nonstellar"]) == [0, 0, 1]
    assert np.isnan(stars["simbad_sep_arcsec"][1])
    # again: the components are updated in place (same ids)
    cid = stars.id["simbad_otype"]
    result["simbad_otype"][0] = "QSO"
    assert add_identification(stars, result) == 2
    assert stars.id["simbad_otype"] is cid
    assert list(np.asarray(stars["simbad_otype"]).astype(str)) == ["RR*", "", "QSO"]


def test_identifications_survive_star_edits(glue_app):
    """SIMBAD components follow their stars when stars are added or removed."""
    from astropy.table import Table

    from glue_zeropoint.glue.loader import ccd_to_data
    from glue_zeropoint.glue.stars import add_stars, remove_stars
    from glue_zeropoint.qt.catalog_action import add_identification
    from glue_zeropoint.simulate import simulate_image

    ccd, truth = simulate_image(seed=5, shape=(160, 160), n_stars=12, mag_range=(11, 13))
    dc = glue_app.data_collection
    image = ccd_to_data(ccd, "img")
    dc.append(image)
    field = truth["field"].stars
    inside = [(x, y) for x, y in zip(field["x"], field["y"], strict=True)
              if 10 < x < 150 and 10 < y < 150]
    stars = add_stars(dc, image, Table(rows=inside[:3], names=("x", "y")))
    ids = [int(i) for i in stars["star_id"]]
    ident = Table({"star_id": ids, "simbad_id": ["A", "B", "C"], "simbad_otype": ["*", "RR*", "*"],
                   "simbad_sep_arcsec": [0.1, 0.2, 0.3], "variable": [False, True, False],
                   "nonstellar": [False, False, False], "simbad_match": ["ok"] * 3})
    add_identification(stars, ident)
    add_stars(dc, image, Table(rows=inside[3:4], names=("x", "y")))
    remove_stars(dc, image, [ids[0]])
    kept = {int(i): (str(s), int(v)) for i, s, v in
            zip(stars["star_id"], stars.get_component("simbad_id").labels, stars["variable"],
                strict=True)}
    assert kept[ids[1]] == ("B", 1) and kept[ids[2]] == ("C", 0)
    assert ids[0] not in kept and len(kept) == 3
    new_id = (set(kept) - set(ids)).pop()
    assert kept[new_id] == ("", 0)
