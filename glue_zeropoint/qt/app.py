"""The demo's Glue part: a Glue application with a night loaded, measured, linked and fitted.

:func:`build_app` makes a :class:`~glue_qt.app.application.GlueApplication` holding

- the images, linked to each other by their WCS (calibrated products are loaded through the plugin's data factory, so a session
  saved by reference points at the product files; in-memory images are saved with the data),
- one stars table per image (given, or detected and measured),
- the reference catalog as a table linked to every image and its stars by RA/Dec,
- the per-star matches table of the first image (catalog vs instrumental magnitude), joined to
  the stars on ``star_id`` so that a region drawn on it selects the stars everywhere,

and opens four viewers: the first image with apertures and catalog markers, a scatter plot of
``delta = cat_mag - mag_inst`` against ``cat_mag``, a table of the stars, and the zero-point
viewer. :func:`save_outputs` writes the ``.glu`` session and screenshots.
"""

import logging
import warnings
from pathlib import Path

from ..glue.datasets import image_datasets  # noqa: F401 (API: moved to the glue layer)

__all__ = ["build_app", "save_outputs", "image_datasets", "VIEWER_LAYOUT"]

log = logging.getLogger(__name__)

#: (x, y, width, height) of the four viewers in the window's first tab
VIEWER_LAYOUT = {
    "image": (0, 0, 620, 520),
    "zeropoint": (620, 0, 740, 520),
    "scatter": (0, 520, 620, 380),
    "table": (620, 520, 740, 380),
}


def build_app(images, catalog_table, band, color=None, *, stars=None, measure_all=True,
              match_radius=None):
    """A Glue application with the images measured, the catalog linked and the viewers open.

    Parameters
    ----------
    images : list of CCDData, glue Data or product paths
        The calibrated images; the first one taken in ``band`` (else the first) is shown and
        fitted.
    catalog_table : `~astropy.table.Table`
        The reference catalog (normalised, or a VizieR-style table that is normalised here).
    band : str
        Catalog band of the zero point (e.g. ``'V'``).
    color : str, optional
        Colour for the colour term (e.g. ``'B-V'``); the colour term is fitted when given.
    stars : Table, list of Table or dict, optional
        Measured stars (``photometry.measure_stars`` output, taken as they are: the same
        fluxes and flags) or bare positions (``x``, ``y``: measured here): one table (for the
        image shown), a list (per image) or a dict (by image label); images without get their
        stars detected and measured (all of them with ``measure_all=True``, the default; else
        only the first image).
    match_radius : float, optional
        The zero-point viewer's crossmatch radius (arcsec), e.g. the one a headless
        measurement of the same stars used; default the viewer's 2 arcsec.

    Returns
    -------
    app : `~glue_qt.app.application.GlueApplication`
        Not yet shown (call ``app.start()`` or ``app.show()``). ``app.zp_viewers`` holds the
        four viewers by role (``'image'``, ``'scatter'``, ``'table'``, ``'zeropoint'``).
    """
    from glue_qt.app.application import GlueApplication
    from glue_qt.viewers.image import ImageViewer
    from glue_qt.viewers.scatter import ScatterViewer
    from glue_qt.viewers.table import TableViewer

    from ..glue.datasets import night_datasets
    from .catalog_action import show_catalog_layer
    from .tools import _overlay, show_stars_layer
    from .zeropoint_viewer import ZeroPointViewer

    app = GlueApplication()
    _datasets, first, catalog, star_data = night_datasets(
        app.data_collection, images, catalog_table, band, stars=stars, measure_all=measure_all)

    viewers = {}
    image_viewer = app.new_data_viewer(ImageViewer, data=first)
    for layer in image_viewer.layers:
        if layer.layer is first:
            # glue's Min/Max stretch puts cosmic rays at white and every star at black
            layer.state.percentile = 99.5
    show_stars_layer(image_viewer, star_data)
    show_catalog_layer(image_viewer, catalog)
    _overlay(image_viewer)
    viewers["image"] = image_viewer

    zp_viewer = app.new_data_viewer(ZeroPointViewer, data=first)
    state = zp_viewer.state
    if state.stars is not star_data and star_data is not None:
        state.stars = star_data
    state.catalog = catalog
    if match_radius is not None:
        state.match_radius = float(match_radius)
    state.band = band
    if color:
        state.color = color
        state.fit_color_term = True
    viewers["zeropoint"] = zp_viewer

    matches = state.add_matches_data()
    scatter = app.new_data_viewer(ScatterViewer, data=matches)
    scatter.state.x_att = matches.id["cat_mag"]
    scatter.state.y_att = matches.id["delta"]
    scatter.state.x_axislabel = f"catalog {band} (mag)"
    scatter.state.y_axislabel = f"{band} catalog − instrumental (mag)"
    viewers["scatter"] = scatter

    table = app.new_data_viewer(TableViewer, data=star_data)
    viewers["table"] = table

    for role, viewer in viewers.items():
        x, y, w, h = VIEWER_LAYOUT[role]
        viewer.viewer_size = (w, h)
        viewer.position = (x, y)
    app.resize(1700, 1000)
    app.zp_viewers = viewers
    return app


def save_outputs(app, out_dir):
    """Write ``demo.glu`` (data included, so it opens anywhere) and screenshots into
    ``out_dir``; returns the paths written.

    Screenshots: ``glue_window.png`` (the whole window) and ``zeropoint_residuals.png`` (the
    zero-point viewer's plots); ``zeropoint.json`` is the viewer's result.
    """
    from qtpy import QtWidgets

    from ..io import ensure_output_dir

    out = ensure_output_dir(out_dir)
    written = []
    if not app.isVisible():
        app.show()
    QtWidgets.QApplication.processEvents()
    for viewer in getattr(app, "zp_viewers", {}).values():
        draw = getattr(getattr(viewer, "figure", None), "canvas", None)
        if draw is not None:
            draw.draw()
    session = Path(out) / "demo.glu"
    with warnings.catch_warnings():
        # glue writes WCSs without SIP (and astropy warns); the plugin's session patch puts
        # the SIP terms back from meta['zp_wcs_header'] on load (glue/session.py)
        warnings.filterwarnings("ignore", message="Some non-standard WCS keywords")
        app.save_session(str(session), include_data=True)
    written.append(session)
    shot = Path(out) / "glue_window.png"
    app.screenshot(str(shot))
    written.append(shot)
    zp_viewer = getattr(app, "zp_viewers", {}).get("zeropoint")
    if zp_viewer is not None and zp_viewer.state.result is not None:
        written.append(zp_viewer.export_png(Path(out) / "zeropoint_residuals.png"))
        written.append(zp_viewer.export_json(Path(out) / "zeropoint_glue.json"))
    return written
