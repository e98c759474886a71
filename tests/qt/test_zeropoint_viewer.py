"""The zero-point viewer in a real (offscreen) GlueApplication."""

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from qt_mouse import drag_rectangle
from qtpy import QtWidgets

from glue_zeropoint.glue.catalog_data import catalog_to_data, link_catalog
from glue_zeropoint.glue.loader import ccd_to_data
from glue_zeropoint.glue.stars import detect_stars
from glue_zeropoint.qt.zeropoint_viewer import N_LABELS, ZeroPointViewer
from glue_zeropoint.simulate import make_field, reference_catalog, simulate_image

TRUE_ZP = 21.5
OUTPUT = Path(__file__).parents[1] / "_output"


def load_scene(dc, *, seed=4, shape=(384, 384), n_stars=110, outlier=1.0):
    """Image + stars + catalog in ``dc``; the brightest star's catalog mags off by ``outlier``."""
    field = make_field(shape, n_stars=n_stars, seed=seed, sip_coeff=1.5)
    ccd, _truth = simulate_image(field, seed=seed)
    table = reference_catalog(field, style="normalised", seed=seed)
    x, y = np.asarray(field.stars["x"]), np.asarray(field.stars["y"])
    index = int(np.nonzero((x > 30) & (x < shape[1] - 30) & (y > 30) & (y < shape[0] - 30))[0][0])
    table["mag_V"][index] += outlier
    table["mag_B"][index] += outlier
    image = ccd_to_data(ccd, "M13 V")
    dc.append(image)
    stars = detect_stars(dc, image)
    catalog = catalog_to_data(table, "sim catalog")
    link_catalog(dc, catalog, image)
    return image, stars, catalog, table["id"][index]


def screenshot(app, name):
    OUTPUT.mkdir(exist_ok=True)
    app.resize(1500, 950)
    QtWidgets.QApplication.processEvents()
    app.screenshot(str(OUTPUT / name))


@pytest.fixture
def zp_app(glue_app):
    image, stars, catalog, cat_id = load_scene(glue_app.data_collection)
    viewer = glue_app.new_data_viewer(ZeroPointViewer, data=image)
    viewer.state.clip_sigma = 1000.0  # no clipping: only the user removes the bad star
    glue_app.show()
    yield glue_app, viewer, image, stars, catalog, cat_id
    viewer.close(warn=False)


def test_viewer_is_registered_and_shows_the_fit(zp_app):
    from glue_qt.config import qt_client

    app, viewer, image, stars, catalog, _ = zp_app
    assert ZeroPointViewer in qt_client.members
    assert "Zero point" in ZeroPointViewer.LABEL
    state = viewer.state
    assert (state.image, state.stars, state.catalog, state.band) == (image, stars, catalog, "V")
    options = viewer.options_widget()
    assert options.combosel_image.currentText() == "M13 V"
    assert options.combosel_band.currentText() == "V"
    assert options.combosel_color.currentText() == "B-V"
    # the options widget drives the state
    options.bool_fit_color_term.setChecked(True)
    assert state.fit_color_term and state.result.color_term is not None
    assert "ZP(V) =" in viewer.panel.label_result.text()
    assert viewer.panel.table_model.rowCount() == len(state.star_table())


def test_brushing_an_outlier_in_a_scatter_plot_moves_the_zero_point(zp_app, qtbot):
    from glue_qt.viewers.scatter import ScatterViewer

    app, viewer, image, stars, catalog, cat_id = zp_app
    state = viewer.state
    before = state.result
    assert before.zp > TRUE_ZP + 0.03  # dragged up by the bad catalog magnitude
    sid = int(before.stars["star_id"][np.asarray(before.stars["cat_id"]) == cat_id][0])
    matches = state.add_matches_data()
    scatter = app.new_data_viewer(ScatterViewer, data=matches)
    scatter.state.x_att = matches.id["cat_mag"]
    scatter.state.y_att = matches.id["delta"]
    row = np.nonzero(np.asarray(matches["star_id"]) == sid)[0][0]
    mag, delta = float(matches["cat_mag"][row]), float(matches["delta"][row])

    scatter.viewer_size = (560, 420)
    QtWidgets.QApplication.processEvents()
    # a first region, dragged by hand where no star is, makes the subset; the viewer then
    # excludes it
    s = scatter.state
    app.session.edit_subset_mode.edit_subset = []
    drag_rectangle(qtbot, scatter, s.x_min + 0.02 * (s.x_max - s.x_min),
                   s.x_min + 0.06 * (s.x_max - s.x_min), s.y_max - 0.06 * (s.y_max - s.y_min),
                   s.y_max - 0.02 * (s.y_max - s.y_min))
    group = app.data_collection.subset_groups[-1]
    viewer.options_widget().combosel_selection_mode.setCurrentIndex(1)  # exclude the subset
    state.subset = group
    assert state.selection_mode == "exclude"
    assert state.result.n_used == before.n_used

    # drawing the region on the outlier updates the fit through the subset message
    revision = state.revision
    app.session.edit_subset_mode.edit_subset = [group]
    top = min(delta + 0.3, s.y_max - 0.01 * (s.y_max - s.y_min))  # the outlier is near the top
    assert top > delta + 0.02
    roi = drag_rectangle(qtbot, scatter, mag - 0.08, mag + 0.08, delta - 0.3, top)
    assert roi.contains(mag, delta)
    after = state.result
    assert state.revision > revision
    assert after.n_used == before.n_used - 1
    assert abs(after.zp - TRUE_ZP) < abs(before.zp - TRUE_ZP)
    assert abs(after.zp - TRUE_ZP) < 3 * after.zp_err_total
    table = state.star_table()
    assert table["status"][table["star_id"] == sid][0] == "excluded"
    # the star is selected on the image side too (the stars are joined on star_id)
    assert stars.get_mask(group.subset_state).sum() == 1
    viewer.position, viewer.viewer_size = (0, 0), (760, 600)
    scatter.position, scatter.viewer_size = (760, 0), (560, 420)
    screenshot(app, "zeropoint_viewer_outlier_brushed.png")


def test_exclude_and_include_buttons(zp_app):
    app, viewer, image, stars, catalog, cat_id = zp_app
    state = viewer.state
    n0 = state.result.n_used
    # nothing selected: a message in the viewer, no dialog, no exception
    viewer.panel.button_exclude.click()
    assert "select stars first" in viewer.panel.label_status.text()
    # rows picked in the per-star table
    view = viewer.panel.table_view
    view.selectRow(0)
    sid = viewer.panel.table_model.star_id(0)
    viewer.panel.button_exclude.click()
    assert sid in state.excluded_ids
    assert state.result.n_used == n0 - 1
    # the active selection (a subset brushed anywhere) when no row is picked
    from glue.core.subset import RangeSubsetState

    view.clearSelection()
    group = app.data_collection.new_subset_group(
        "two", RangeSubsetState(10.5, 12.5, stars.id["star_id"]))
    app.session.edit_subset_mode.edit_subset = [group]
    ids = viewer.exclude_selected()
    assert ids == [11, 12]
    assert set(state.excluded_ids) == {sid, 11, 12}
    viewer.panel.button_include.click()
    assert list(state.excluded_ids) == [] and state.result.n_used == n0


def test_export_json_ecsv_png(zp_app, output_dir):
    app, viewer, *_ = zp_app
    r = viewer.state.result
    path = viewer.export_json(output_dir / "zp.json")
    saved = json.loads(path.read_text(encoding="utf-8"))
    for key in ("zp", "zp_err", "zp_err_total", "scatter", "n_matched", "n_used", "band",
                "color", "color_term", "color_term_err", "aperture_correction", "sky_sb",
                "sky_sb_err", "exptime", "catalog"):
        assert key in saved
    assert saved["zp"] == pytest.approx(r.zp) and saved["n_used"] == r.n_used
    table = Table.read(viewer.export_ecsv(output_dir / "stars.ecsv"), format="ascii.ecsv")
    assert len(table) == len(viewer.state.star_table())
    assert table.meta["zp"] == pytest.approx(r.zp)
    assert (np.asarray(table["status"]) == "used").sum() == r.n_used
    png = viewer.export_png(output_dir / "residuals.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the button opens a non-modal file dialog; choosing a file exports
    viewer.panel.button_json.click()
    dialog = viewer._dialog
    assert dialog.isVisible() and not dialog.isModal()
    dialog.selectFile(str(output_dir / "via dialog.json"))
    dialog.accept()
    assert json.loads((output_dir / "via dialog.json").read_text())["zp"] == pytest.approx(r.zp)
    assert "wrote" in viewer.panel.label_status.text()
    # a failed export is a message in the viewer, not an exception or a dialog
    assert viewer._export("json", str(output_dir / "missing folder" / "zp.json")) is None
    assert "export failed" in viewer.panel.label_status.text()


def test_unusable_choice_shows_a_message(zp_app):
    app, viewer, *_ = zp_app
    viewer.state.catalog = None
    assert viewer.state.result is None
    assert "catalog" in viewer.panel.label_status.text()
    assert "—" in viewer.panel.label_result.text()
    with pytest.raises(Exception, match="no zero point to export"):
        viewer.export_json("never.json")


def test_viewer_table_and_plot_show_why_stars_were_left_out(glue_app):
    """Real catalog trouble (variables, a poor magnitude, an outlier, a user's exclusion):
    each left-out star's row says why, with the reasons explained in its tooltip; the plot
    draws each group with its own marker and writes the reasons beside the points."""
    from qtpy import QtCore

    from glue_zeropoint.zeropoint.reasons import REASONS

    dc = glue_app.data_collection
    field = make_field((384, 384), n_stars=110, seed=4, sip_coeff=1.5)
    ccd, _truth = simulate_image(field, seed=4)
    table = reference_catalog(field, style="normalised", seed=4)
    image = ccd_to_data(ccd, "M13 V")
    dc.append(image)
    detect_stars(dc, image)
    # find matched, clean stars first, then give three of them catalog problems
    probe = catalog_to_data(table, "probe")
    link_catalog(dc, probe, image)
    viewer = glue_app.new_data_viewer(ZeroPointViewer, data=image)
    viewer.state.catalog = probe
    first = viewer.state.result
    used = np.asarray(first.stars["used"], bool)
    cat_ids = np.asarray(first.stars["cat_id"])[used]
    star_ids = np.asarray(first.stars["star_id"])[used]
    rows = {cid: int(np.nonzero(np.asarray(table["id"]) == cid)[0][0]) for cid in cat_ids}
    var_a, var_b, poor, off, mine = cat_ids[2], cat_ids[5], cat_ids[8], cat_ids[11], star_ids[14]
    table["variable"][[rows[var_a], rows[var_b]]] = True
    table["err_V"][rows[poor]] = 0.4
    table["mag_V"][rows[off]] += 0.6  # a wrong catalog magnitude: clipped
    table["mag_B"][rows[off]] += 0.6
    catalog = catalog_to_data(table, "APASS-like catalog")
    link_catalog(dc, catalog, image)
    viewer.state.catalog = catalog
    viewer.state.exclude_stars([int(mine)])
    glue_app.show()
    viewer.position, viewer.viewer_size = (0, 0), (1100, 820)
    QtWidgets.QApplication.processEvents()

    model = viewer.panel.table_model
    headers = [model.headerData(c, QtCore.Qt.Horizontal) for c in range(model.columnCount())]
    assert "why left out" in headers
    col_why = headers.index("why left out")
    col_status = headers.index("status")
    shown = {}
    for row in range(model.rowCount()):
        sid = model.star_id(row)
        why = model.data(model.index(row, col_why))
        tip = model.data(model.index(row, col_why), QtCore.Qt.ToolTipRole)
        status = model.data(model.index(row, col_status))
        shown[sid] = (why, tip, status)
        assert (why == "") == (status == "used")
        for code in filter(None, why.split(",")):
            assert code in REASONS and REASONS[code][1] in tip
    by_cat = dict(zip(np.asarray(viewer.state.star_table()["cat_id"]),
                      np.asarray(viewer.state.star_table()["star_id"]), strict=True))
    assert shown[by_cat[var_a]][0] == "variable" and shown[by_cat[var_b]][0] == "variable"
    assert shown[by_cat[poor]][0] == "cat_err"
    assert shown[by_cat[off]][0] == "clipped" and shown[by_cat[off]][2] == "clipped"
    assert shown[int(mine)][0] == "excluded" and shown[int(mine)][2] == "excluded"
    assert "variable" in shown[by_cat[var_a]][1]  # the tooltip explains the code
    # the summary counts the reasons
    summary = viewer.panel.label_result.text()
    assert "left out:" in summary and "2 variable" in summary and " clipped" in summary
    # the plot: each group its own artist, the reasons written beside the points
    offsets = {k: len(a.get_offsets()) for k, a in viewer._artists[0].items() if k != "band"}
    assert offsets["catalog"] >= 3 and offsets["fit"] >= 1 and offsets["user"] == 1
    labels = [t.get_text().strip() for t in viewer._labels if t.get_text()]
    assert {"variable", "cat_err", "clipped", "excluded"} <= set(labels)
    # what the user sees
    OUTPUT.mkdir(exist_ok=True)
    QtWidgets.QApplication.processEvents()
    viewer.panel.canvas.draw()
    QtWidgets.QApplication.processEvents()
    # the reasons do not pile up on each other (at most N_LABELS, mostly apart)
    renderer = viewer.panel.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in viewer._labels if t.get_text()]
    assert len(boxes) <= N_LABELS
    piled = sum(1 for i, a in enumerate(boxes) for b in boxes[i + 1:]
                if a.overlaps(b) and min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 * min(a.width, b.width)
                and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5 * min(a.height, b.height))
    assert piled == 0, piled
    assert viewer.grab().save(str(OUTPUT / "zeropoint_viewer_reasons.png"))
    screenshot(glue_app, "zeropoint_viewer_reasons_app.png")
    viewer.close(warn=False)


def test_viewer_shows_the_measured_psf_and_assumptions(zp_app):
    """Issue 10: the PSF the stars were measured with, and every assumption, in the Glue view."""
    import html

    app, viewer, image, stars, catalog, _ = zp_app
    text = viewer.panel.label_result.text()
    psf = stars.meta["zp_psf"]
    assert f"PSF FWHM {psf['fwhm']:.2f}" in text
    if psf["n_stars"]:
        assert f"({psf['n_stars']} stars)" in text
    else:  # the FWHM the detection measured, passed on
        assert "(given, not measured here)" in text
    assert 2.0 < psf["fwhm"] < 6.0 and "undersampled" not in text
    # the simulated frame's read noise comes from its header: an assumption the view must show
    assert stars.meta["zp_assumptions"]
    for note in stars.meta["zp_assumptions"]:
        assert html.escape(note) in text


def test_viewer_says_why_an_asked_colour_term_was_not_fitted(zp_app):
    """Asked for a colour term the stars cannot support, the viewer says why in its summary
    (the fit's reason was only a log warning on stderr, repeated at every brushing update,
    which a Glue user never sees)."""
    app, viewer, image, stars, catalog, _ = zp_app
    state = viewer.state
    state.fit_color_term = True
    assert state.result.color_term is not None
    used = [int(s) for s in np.asarray(state.star_table()["star_id"])]
    state.excluded_ids = used[:-5]  # five stars left: too few for a colour term
    assert state.result.color_term is None
    reason = state.result.color_term_reason
    assert "too few stars with a colour" in reason
    import html

    text = viewer.panel.label_result.text()
    assert f"colour term (B-V) not fitted: {html.escape(reason)}" in text, text
    state.fit_color_term = False  # not asked: nothing to explain
    assert "not fitted" not in viewer.panel.label_result.text()
