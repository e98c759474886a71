from pathlib import Path

import numpy as np
import pytest
from glue.core.subset import RangeSubsetState
from helpers import isolated_bright_stars
from qt_mouse import canvas_point, click, drag, drag_rectangle
from qtpy import QtCore

from glue_zeropoint.glue.stars import stars_for

OUTPUT = Path(__file__).parents[1] / "_output"


def test_tools_are_in_the_stock_image_viewer(image_viewer):
    viewer, _light, _truth = image_viewer
    for tool_id in ("zp:star", "zp:detect", "zp:catalog", "zp:regions"):
        assert tool_id in viewer.toolbar.tools


def test_star_tool_click_drag_and_remove_with_real_mouse_events(glue_app, image_viewer, qtbot):
    viewer, light, truth = image_viewer
    dc = glue_app.data_collection
    (x1, y1, f1), (x2, y2, f2) = isolated_bright_stars(truth, margin=25, n=2)
    viewer.toolbar.active_tool = "zp:star"

    click(qtbot, viewer, x1 + 1.3, y1 - 1.0)  # a little off the star: the aperture recentres
    stars = stars_for(dc, light)
    assert stars is not None and stars.size == 1
    assert abs(stars["x"][0] - x1) < 0.25 and abs(stars["y"][0] - y1) < 0.25
    assert stars["flux"][0] == pytest.approx(f1, rel=0.06)
    assert any(layer.layer is stars for layer in viewer.state.layers)
    overlay = viewer._zp_aperture_overlay
    assert overlay.n_apertures == 1
    np.testing.assert_allclose(overlay.collection.get_offsets()[0], [stars["x"][0], stars["y"][0]])

    # drag a circle around the second star, starting off-centre
    drag(qtbot, viewer, (x2 - 3.0, y2 + 2.0), (x2 + 6.0, y2 + 5.0))
    assert stars.size == 2
    assert abs(stars["x"][1] - x2) < 0.25 and abs(stars["y"][1] - y2) < 0.25
    assert stars["flux"][1] == pytest.approx(f2, rel=0.06)
    assert overlay.n_apertures == 2

    OUTPUT.mkdir(exist_ok=True)
    glue_app.screenshot(str(OUTPUT / "star_tool_two_stars.png"))

    # a click inside the first aperture removes that star
    click(qtbot, viewer, stars["x"][0] + 1.0, stars["y"][0])
    assert stars.size == 1 and stars["star_id"][0] == 1
    assert overlay.n_apertures == 1


def test_detect_tool_and_selection_shows_on_the_image(glue_app, image_viewer, qtbot):
    viewer, light, _truth = image_viewer
    dc = glue_app.data_collection
    task = viewer.toolbar.tools["zp:detect"].activate()
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert task.finished and task.error is None
    stars = stars_for(dc, light)
    assert stars.size >= 25
    assert viewer._zp_aperture_overlay.n_apertures == stars.size

    # select the brightest stars in the stars table: the image shows that subset
    cut = np.sort(np.asarray(stars["flux"]))[-5]
    dc.new_subset_group("bright stars", RangeSubsetState(cut, np.inf, stars.id["flux"]))
    subset = stars.subsets[0]
    assert subset.to_mask().sum() == 5
    layer = next(la for la in viewer.layers if la.layer is subset)
    assert layer.enabled and layer.visible
    # and a region drawn on the image selects the stars inside it
    ny, nx = light.shape
    glue_app.session.edit_subset_mode.edit_subset = []  # a new subset, not a replacement
    # by hand with glue's own tool, from inside the shown part of the image to its middle
    x0, y0 = max(1.0, viewer.state.x_min + 1), max(1.0, viewer.state.y_min + 1)
    roi = drag_rectangle(qtbot, viewer, x0, nx / 2, y0, ny / 2)
    assert (roi.xmin, roi.xmax, roi.ymin, roi.ymax) == pytest.approx((x0, nx / 2, y0, ny / 2),
                                                                     abs=0.6)
    region = next(s for s in stars.subsets if s.label != "bright stars")
    x, y = np.asarray(stars["x"]), np.asarray(stars["y"])
    inside = (x > roi.xmin) & (x < roi.xmax) & (y > roi.ymin) & (y < roi.ymax)
    assert 0 < inside.sum() < stars.size
    assert region.to_mask().tolist() == inside.tolist()
    image_layer = next(la for la in viewer.layers if la.layer is light.subsets[-1])
    on_image = light.subsets[-1].to_mask()
    assert image_layer.enabled and on_image[int(y0) + 1: ny // 2 - 1, int(x0) + 1: nx // 2 - 1].all()
    assert not on_image[ny // 2 + 1:, :].any() and not on_image[:, nx // 2 + 1:].any()
    OUTPUT.mkdir(exist_ok=True)
    viewer.figure.canvas.draw()
    glue_app.screenshot(str(OUTPUT / "detect_and_select.png"))


def test_star_tool_on_a_non_plugin_image_says_so_without_a_modal(glue_app, qtbot):
    from glue.core import Data
    from glue_qt.viewers.image import ImageViewer
    from qtpy import QtWidgets

    data = Data(x=np.random.default_rng(0).random((20, 20)), label="plain")
    glue_app.add_data(data)
    viewer = glue_app.new_data_viewer(ImageViewer, data=data)
    tool = viewer.toolbar.tools["zp:star"]
    assert tool.act(5.0, 5.0) == (None, None)
    boxes = [w for w in QtWidgets.QApplication.topLevelWidgets()
             if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()]
    assert boxes and not boxes[-1].isModal()
    for box in boxes:
        box.close()


def test_rows_selected_in_a_table_viewer_show_on_the_image(glue_app, image_viewer, qtbot):
    from glue_qt.viewers.table import TableViewer

    from glue_zeropoint.glue.stars import add_stars
    from glue_zeropoint.qt.tools import show_stars_layer

    viewer, light, truth = image_viewer
    dc = glue_app.data_collection
    picks = isolated_bright_stars(truth, margin=25, n=3)
    stars = add_stars(dc, light, [p[:2] for p in picks])
    show_stars_layer(viewer, stars)
    table = glue_app.new_data_viewer(TableViewer, data=stars)
    table.toolbar.active_tool = "table:rowselect"
    selection = table.ui.table.selectionModel()
    flags = (QtCore.QItemSelectionModel.SelectionFlag.Select
             | QtCore.QItemSelectionModel.SelectionFlag.Rows)
    for row in (1, 2):
        selection.select(table.model.index(row, 0), flags)
    qtbot.keyClick(table, QtCore.Qt.Key.Key_Return)  # what a user presses to make the subset
    subset = stars.subsets[-1]
    assert stars["star_id"][subset.to_mask()].tolist() == [1, 2]
    layer = next(la for la in viewer.layers if la.layer is subset)
    assert layer.enabled and layer.visible
    # removing star 0 with the star tool keeps the selection on stars 1 and 2
    viewer.toolbar.active_tool = "zp:star"
    click(qtbot, viewer, stars["x"][0], stars["y"][0])
    assert stars.size == 2
    assert stars["star_id"][subset.to_mask()].tolist() == [1, 2]


def _menu_action(viewer, tool_id, text):
    """The entry ``text...`` of a toolbar drop-down button, as the user sees it."""
    button = viewer.toolbar.widgetForAction(viewer.toolbar.actions[tool_id])
    return next(a for a in button.menu().actions() if a.text().startswith(text))


@pytest.mark.filterwarnings("ignore:.*unable to parse line")  # the junk file, on purpose
def test_ds9_regions_in_and_out_through_the_toolbar_menu(glue_app, image_viewer, qtbot,
                                                         tmp_path, monkeypatch):
    from astropy.coordinates import SkyCoord
    from qtpy import QtWidgets
    from regions import CirclePixelRegion, PixCoord, Regions

    from glue_zeropoint.glue.loader import wcs_from_meta

    viewer, light, truth = image_viewer
    dc = glue_app.data_collection
    picked = isolated_bright_stars(truth, margin=25, n=3)
    wcs = wcs_from_meta(light)
    # marked in ds9 on the sky, each a pixel off its star
    regs = [CirclePixelRegion(PixCoord(x + 0.8, y - 0.7), 5.0).to_sky(wcs) for x, y, _f in picked]
    reg_in = tmp_path / "marked in ds9 é.reg"
    Regions(regs).write(str(reg_in), format="ds9")
    before = reg_in.read_bytes()

    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(reg_in), "")))
    _menu_action(viewer, "zp:regions", "Add stars from").trigger()
    qtbot.waitUntil(lambda: stars_for(dc, light) is not None, timeout=10000)  # read in a thread
    stars = stars_for(dc, light)
    assert stars.size == 3
    for (x, y, flux), sx, sy, sf in zip(picked, stars["x"], stars["y"], stars["flux"],
                                        strict=True):
        assert abs(sx - x) < 0.25 and abs(sy - y) < 0.25  # recentred onto the star
        assert sf == pytest.approx(flux, rel=0.06)
    assert viewer._zp_aperture_overlay.n_apertures == 3
    OUTPUT.mkdir(exist_ok=True)
    viewer.figure.canvas.draw()
    glue_app.screenshot(str(OUTPUT / "stars_from_ds9_regions.png"))
    assert reg_in.read_bytes() == before  # the user's file is never touched

    reg_out = tmp_path / "apertures.reg"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(reg_out), "")))
    _menu_action(viewer, "zp:regions", "Save apertures").trigger()
    back = Regions.read(str(reg_out), format="ds9")
    assert len(back) == 3 and all(isinstance(r.center, SkyCoord) for r in back)
    bx, by = wcs.world_to_pixel(SkyCoord([r.center for r in back]))
    np.testing.assert_allclose(bx, stars["x"], atol=1e-3)
    np.testing.assert_allclose(by, stars["y"], atol=1e-3)
    r_pix = back[0].radius.to_value("arcsec") / (wcs.proj_plane_pixel_scales()[0].to_value("arcsec"))
    # the aperture radius, in arcsec through the local scale (SIP: within a per cent)
    assert r_pix == pytest.approx(stars.meta["zp_aperture"]["r"], rel=0.01)

    # a file that is not a region file: a non-modal message, nothing added
    junk = tmp_path / "junk.reg"
    junk.write_text("not regions (((")
    from glue_zeropoint.qt.tools import import_regions_file

    task = import_regions_file(viewer, str(junk))
    task.wait(120000)  # returns when done; the bound only stops a hang
    assert task.finished and task.error is not None and task.added_ids is None
    boxes = [w for w in QtWidgets.QApplication.topLevelWidgets()
             if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()]
    assert boxes and not boxes[-1].isModal() and "junk.reg" in boxes[-1].text()
    for box in boxes:
        box.close()
    assert stars.size == 3


# -- fast redraws: the stars' artists are blitted over a cached background ----------------------

APERTURE_RGB = np.array([0x00, 0xD5, 0xFF])


def _buffer(viewer):
    return np.array(viewer.figure.canvas.buffer_rgba())[..., :3].copy()


def _aperture_pixels(viewer, buffer, x, y, r):
    """How many pixels near image pixel (x, y) have the aperture colour."""
    canvas = viewer.figure.canvas
    (dx, dy), (ex, _ey) = viewer.axes.transData.transform([(x, y), (x + 2 * r, y)])
    half = int(abs(ex - dx)) + 3
    height = buffer.shape[0]
    row, col = int(round(height - dy)), int(round(dx))
    box = buffer[max(row - half, 0):row + half, max(col - half, 0):col + half].astype(int)
    assert canvas is not None and box.size
    return int((np.abs(box - APERTURE_RGB).sum(axis=-1) < 60).sum())


def _settle(qtbot, viewer):
    """Let the window's first resizes be done before counting draws: glue's image and density
    artists (mpl-scatter-density) draw the whole canvas themselves 500 ms after a resize."""
    qtbot.wait(50)
    timers = [getattr(getattr(artist, "_timer", None), "_timer", None)
              for artist in viewer.axes.get_children()]
    timers = [timer for timer in timers if timer is not None]
    qtbot.waitUntil(lambda: not any(timer.isActive() for timer in timers), timeout=5000)


def _stock_draw(viewer):
    """The canvas as glue draws it without the blitting (nothing animated), then our full
    draw again (so the next request blits over a fresh background)."""
    canvas = viewer.figure.canvas
    animated = [a for ax in viewer.figure.axes for a in ax.get_children() if a.get_animated()]
    for artist in animated:
        artist.set_animated(False)
    try:
        type(canvas).draw(canvas)
        stock = _buffer(viewer)
    finally:
        for artist in animated:
            artist.set_animated(True)
    fast = viewer._zp_fast_redraw
    fast._dirty, fast._pending = True, False
    canvas.draw()
    return stock


def test_star_changes_blit_and_look_like_a_full_redraw(glue_app, image_viewer, qtbot):
    viewer, light, truth = image_viewer
    dc = glue_app.data_collection
    (x1, y1, _f1), (x2, y2, _f2), (x3, y3, _f3) = isolated_bright_stars(truth, margin=25, n=3)
    viewer.toolbar.active_tool = "zp:star"
    fast = viewer._zp_fast_redraw
    _settle(qtbot, viewer)
    click(qtbot, viewer, x1, y1)  # the first star adds the stars layer: a full draw
    qtbot.wait(50)
    stars = stars_for(dc, light)
    radius = stars.meta["zp_aperture"]["r"]
    full, blits = fast.full_draws, fast.fast_draws

    click(qtbot, viewer, x2, y2)
    qtbot.wait(50)
    assert stars.size == 2
    assert fast.full_draws == full and fast.fast_draws > blits  # only the overlays redrawn
    blitted = _buffer(viewer)
    assert _aperture_pixels(viewer, blitted, stars["x"][1], stars["y"][1], radius) > 10
    np.testing.assert_array_equal(blitted, _stock_draw(viewer))

    # a removed star disappears from the blitted canvas too
    click(qtbot, viewer, stars["x"][0], stars["y"][0])
    qtbot.wait(50)
    assert stars.size == 1
    blitted = _buffer(viewer)
    assert _aperture_pixels(viewer, blitted, x1, y1, radius) == 0
    np.testing.assert_array_equal(blitted, _stock_draw(viewer))

    # hiding the stars layer: whichever way glue redraws, the canvas is right
    layer = next(la for la in viewer.state.layers if la.layer is stars)
    shown = _buffer(viewer)
    layer.visible = False
    qtbot.wait(50)
    hidden = _buffer(viewer)
    assert not np.array_equal(hidden, shown)
    np.testing.assert_array_equal(hidden, _stock_draw(viewer))
    layer.visible = True

    # anything else that glue redraws (here the image's contrast) is a full draw
    image_layer = next(la for la in viewer.state.layers if la.layer is light)
    full = fast.full_draws
    image_layer.v_max = image_layer.v_max * 0.5
    qtbot.wait(50)
    assert fast.full_draws > full
    np.testing.assert_array_equal(_buffer(viewer), _stock_draw(viewer))

    # a zoom changes the view: the whole figure is drawn again, the apertures on top
    full = fast.full_draws
    viewer.state.x_min, viewer.state.x_max = x3 - 60, x3 + 60
    viewer.state.y_min, viewer.state.y_max = y3 - 45, y3 + 45
    qtbot.wait(50)
    assert fast.full_draws > full
    click(qtbot, viewer, x3, y3)
    qtbot.wait(50)
    assert stars.size == 2
    blitted = _buffer(viewer)
    assert _aperture_pixels(viewer, blitted, stars["x"][1], stars["y"][1], radius) > 10
    np.testing.assert_array_equal(blitted, _stock_draw(viewer))


def test_rubber_band_is_blitted_and_saved_figures_keep_the_apertures(glue_app, image_viewer,
                                                                      qtbot, tmp_path):
    import matplotlib.image as mpimg

    viewer, light, truth = image_viewer
    (x1, y1, _f1), (x2, y2, _f2) = isolated_bright_stars(truth, margin=25, n=2)
    viewer.toolbar.active_tool = "zp:star"
    fast = viewer._zp_fast_redraw
    _settle(qtbot, viewer)
    click(qtbot, viewer, x1, y1)
    qtbot.wait(50)
    canvas = viewer.figure.canvas
    button = QtCore.Qt.MouseButton.LeftButton
    qtbot.mousePress(canvas, button, pos=canvas_point(viewer, x2 - 3, y2))
    qtbot.mouseMove(canvas, canvas_point(viewer, x2 + 4, y2))
    qtbot.wait(50)  # the first move adds the rubber band: a full draw
    full, blits = fast.full_draws, fast.fast_draws
    for dx in (5, 6, 7):
        qtbot.mouseMove(canvas, canvas_point(viewer, x2 + dx, y2 + 1))
        qtbot.wait(20)
    assert fast.full_draws == full and fast.fast_draws > blits
    qtbot.mouseRelease(canvas, button, pos=canvas_point(viewer, x2 + 7, y2 + 1))
    qtbot.wait(50)
    stars = stars_for(glue_app.data_collection, light)
    assert stars.size == 2

    # matplotlib draws animated artists when saving: the apertures are in the PNG
    path = tmp_path / "viewer.png"
    viewer.figure.savefig(path, dpi=viewer.figure.dpi)
    saved = (mpimg.imread(path)[..., :3] * 255).round().astype(int)
    radius = stars.meta["zp_aperture"]["r"]
    assert _aperture_pixels(viewer, saved, stars["x"][0], stars["y"][0], radius) > 10

    # closing the viewer gives the canvas its own draw back
    viewer.close(warn=False)
    assert "draw" not in canvas.__dict__


def _click_and_compare(qtbot, viewer, xy, stars, size, *, blitted=True):
    """Click a star; check the count of stars, whether the image viewer blitted, and that the
    canvas equals glue's own draw."""
    fast = viewer._zp_fast_redraw
    blits, full = fast.fast_draws, fast.full_draws
    click(qtbot, viewer, xy[0], xy[1])
    qtbot.wait(50)
    assert stars.size == size
    if blitted:
        assert fast.fast_draws > blits
    else:
        assert fast.fast_draws == blits and fast.full_draws > full
    np.testing.assert_array_equal(_buffer(viewer), _stock_draw(viewer))


def test_blits_keep_glue_layer_order_and_the_legend(glue_app, image_viewer, qtbot):
    from glue.core.roi import RectangularROI as Rect
    from glue.core.subset import RoiSubsetState

    from glue_zeropoint.glue.catalog_data import catalog_to_data, link_catalog
    from glue_zeropoint.simulate import reference_catalog

    viewer, light, truth = image_viewer
    dc = glue_app.data_collection
    stars_xyf = isolated_bright_stars(truth, margin=25, n=5)
    assert len(stars_xyf) == 5
    viewer.toolbar.active_tool = "zp:star"
    fast = viewer._zp_fast_redraw
    _settle(qtbot, viewer)
    for x, y, _f in stars_xyf[:2]:
        click(qtbot, viewer, x, y)
        qtbot.wait(50)
    stars = stars_for(dc, light)

    # catalog markers stacked above the stars: drawn in the blit too, in glue's order
    catalog = catalog_to_data(reference_catalog(truth["field"], style="normalised"), "cat")
    dc.append(catalog)
    link_catalog(dc, catalog, light)
    viewer.add_data(catalog)
    qtbot.wait(50)
    assert [la.layer for la in viewer.layers][-1] is catalog
    _click_and_compare(qtbot, viewer, stars_xyf[2], stars, 3)
    x, y, _f = stars_xyf[2]

    # the legend ('best' location moves away from the markers) is redrawn with them
    viewer.state.legend.location = "best"
    viewer.state.legend.visible = True
    qtbot.wait(50)
    box = viewer.axes.get_legend().get_window_extent()
    lx, ly = viewer.axes.transData.inverted().transform(((box.x0 + box.x1) / 2,
                                                          (box.y0 + box.y1) / 2))
    blits = fast.fast_draws
    from glue_zeropoint.glue.stars import add_stars

    add_stars(dc, light, [(lx, ly)])  # a star under the legend
    qtbot.wait(50)
    assert fast.fast_draws > blits
    np.testing.assert_array_equal(_buffer(viewer), _stock_draw(viewer))
    viewer.state.legend.visible = False

    # a subset drawn on the image lies above the stars: its layer is redrawn in the blit too
    dc.new_subset_group("box", RoiSubsetState(light.pixel_component_ids[1],
                                              light.pixel_component_ids[0],
                                              Rect(x - 30, x + 30, y - 30, y + 30)))
    qtbot.wait(50)
    _click_and_compare(qtbot, viewer, stars_xyf[3], stars, 5)

    # another image, even listed above the stars: glue draws its images as one composite at
    # the bottom, so it stays in the background and stars are still blitted
    from glue_zeropoint.glue.links import add_links_once

    flat = dc["master flat_V"]
    add_links_once(dc, [(flat.pixel_component_ids[i], light.pixel_component_ids[i])
                        for i in (0, 1)])
    viewer.add_data(flat)
    qtbot.wait(50)
    assert next(la for la in viewer.layers if la.layer is flat).enabled
    _click_and_compare(qtbot, viewer, stars_xyf[4], stars, 6)


def test_legend_and_subsets_stacked_before_the_stars(glue_app, image_viewer, qtbot):
    from glue.core.roi import RectangularROI as Rect
    from glue.core.subset import RoiSubsetState

    viewer, light, truth = image_viewer
    dc = glue_app.data_collection
    _settle(qtbot, viewer)
    ny, nx = light.shape
    for i in range(5):  # subsets of the whole image: layers above glue's legend (zorder 5)
        dc.new_subset_group(f"all {i}", RoiSubsetState(
            light.pixel_component_ids[1], light.pixel_component_ids[0],
            Rect(-1 - i, nx + i, -1 - i, ny + i)))
        qtbot.wait(20)
    viewer.state.legend.visible = True
    viewer.state.legend.location = "upper left"
    qtbot.wait(50)
    np.testing.assert_array_equal(_buffer(viewer), _stock_draw(viewer))  # no stars yet

    viewer.toolbar.active_tool = "zp:star"
    stars_xyf = isolated_bright_stars(truth, margin=25, n=3)
    click(qtbot, viewer, *stars_xyf[0][:2])  # the stars layer comes above the subsets
    qtbot.wait(50)
    stars = stars_for(dc, light)
    assert max(la.zorder for la in viewer.layers if la.layer is stars) > 5
    np.testing.assert_array_equal(_buffer(viewer), _stock_draw(viewer))
    _click_and_compare(qtbot, viewer, stars_xyf[1], stars, 2)


def test_a_subset_brushed_in_another_view_is_blitted_on_the_image(glue_app, image_viewer,
                                                                   qtbot):
    viewer, light, truth = image_viewer
    dc = glue_app.data_collection
    viewer.toolbar.active_tool = "zp:star"
    fast = viewer._zp_fast_redraw
    _settle(qtbot, viewer)
    for x, y, _f in isolated_bright_stars(truth, margin=25, n=4):
        click(qtbot, viewer, x, y)
        qtbot.wait(50)
    stars = stars_for(dc, light)
    flux = np.sort(np.asarray(stars["flux"]))
    # a selection on the stars' flux (as brushed in a histogram or table): new subset layers
    group = dc.new_subset_group("bright", RangeSubsetState(flux[-1] * 0.99, np.inf,
                                                           stars.id["flux"]))
    qtbot.wait(50)
    before = _buffer(viewer)
    blits, full = fast.fast_draws, fast.full_draws
    group.subset_state = RangeSubsetState(flux[0] * 0.99, flux[1] * 1.01, stars.id["flux"])
    qtbot.wait(50)
    assert fast.fast_draws > blits and fast.full_draws == full
    after = _buffer(viewer)
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, _stock_draw(viewer))


def _plot_of_the_stars(glue_app, image_viewer, qtbot, viewer_class, setup):
    """Two stars picked, then a glue plot of the stars beside the image viewer (``setup``
    sets its state); returns ``(image viewer, stars, plot, the three stars still to pick)``."""
    viewer, light, truth = image_viewer
    viewer.toolbar.active_tool = "zp:star"
    _settle(qtbot, viewer)
    stars_xyf = isolated_bright_stars(truth, margin=25, n=5)
    for x, y, _f in stars_xyf[:2]:
        click(qtbot, viewer, x, y)
        qtbot.wait(50)
    stars = stars_for(glue_app.data_collection, light)
    plot = glue_app.new_data_viewer(viewer_class, data=stars)
    plot.viewer_size = (420, 320)
    plot.position = (860, 0)  # beside the image viewer, not over it
    setup(plot.state, stars, light)
    qtbot.wait(50)
    _settle(qtbot, plot)
    viewer.toolbar.active_tool = "zp:star"  # a new viewer took the focus (and the tool)
    return viewer, stars, plot, stars_xyf[2:]


@pytest.mark.parametrize("mode", ["rectilinear", "polar", "aitoff"])
def test_a_scatter_plot_of_the_stars_blits_too(glue_app, image_viewer, qtbot, mode):
    import gc
    import weakref

    from glue_qt.viewers.scatter import ScatterViewer

    def setup(state, stars, light):
        state.x_att = stars.id["x"]
        state.y_att = stars.id["y"]
        state.plot_mode = mode  # polar and full-sky plots draw grid and labels over the data
        if mode == "rectilinear":
            state.x_min, state.x_max = 0, light.shape[1]
            state.y_min, state.y_max = 0, light.shape[0]

    viewer, stars, scatter, to_pick = _plot_of_the_stars(glue_app, image_viewer, qtbot,
                                                          ScatterViewer, setup)
    click(qtbot, viewer, *to_pick[0][:2])  # the stars change: the plot gets the blitting
    qtbot.wait(50)
    fast = scatter._zp_fast_redraw
    for n, (x, y, _f) in enumerate(to_pick[1:], start=4):
        blits, full = fast.fast_draws, fast.full_draws
        before = _buffer(scatter)
        click(qtbot, viewer, x, y)
        qtbot.wait(50)
        assert stars.size == n
        assert fast.fast_draws > blits and fast.full_draws == full
        after = _buffer(scatter)
        if mode == "rectilinear":
            assert not np.array_equal(after, before)  # the new star is on the plot
        np.testing.assert_array_equal(after, _stock_draw(scatter))

    # a closed plot is freed (the canvas, which may outlive it, holds the blitting weakly)
    gone = weakref.ref(scatter)
    scatter.close(warn=False)
    del scatter, fast
    for _ in range(3):
        qtbot.wait(20)
        gc.collect()
    assert gone() is None


def test_a_histogram_of_the_stars_stays_right(glue_app, image_viewer, qtbot):
    """A histogram's bars are new artists at each change (so full draws), and they touch the
    axes' spines, which matplotlib draws over the data."""
    from glue_qt.viewers.histogram import HistogramViewer

    def setup(state, stars, light):
        state.x_att = stars.id["x"]

    viewer, stars, histogram, to_pick = _plot_of_the_stars(glue_app, image_viewer, qtbot,
                                                            HistogramViewer, setup)
    for x, y, _f in to_pick:
        click(qtbot, viewer, x, y)
        qtbot.wait(50)
        assert histogram._zp_fast_redraw.canvas is not None
        np.testing.assert_array_equal(_buffer(histogram), _stock_draw(histogram))
    assert stars.size == 5
    histogram.close(warn=False)
