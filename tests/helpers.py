"""Helpers shared by test modules (``from helpers import ...``; tests/ is on sys.path because
its conftest.py is)."""

import numpy as np


def isolated_bright_stars(truth, n=3, margin=20, isolation=14.0):
    """(x, y, true electrons) of the ``n`` brightest simulated stars at least ``margin`` px
    from the edges and ``isolation`` px from any other star."""
    stars = truth["field"].stars
    ny, nx = truth["field"].shape
    x, y = np.asarray(stars["x"]), np.asarray(stars["y"])
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(d, np.inf)
    ok = ((x > margin) & (x < nx - margin) & (y > margin) & (y < ny - margin)
          & (d.min(axis=1) > isolation))
    order = np.argsort(np.asarray(stars["mag_V"]))
    flux = truth["field"].rates(truth["filter"]) * truth["exptime"]
    return [(x[i], y[i], flux[i]) for i in order if ok[i]][:n]


def glue_application(monkeypatch, autolink, names=("Astronomy WCS", "Astronomy WCS (3D)")):
    """A real GlueApplication with the plugin loaded through glue's entry point, glue's
    autolink setting ``autolink`` for the autolinkers ``names``, and error reports that raise
    (an AssertionError) instead of showing glue's modal dialog. Close it after use."""
    from glue.config import settings
    from glue.main import load_plugins
    from glue_qt.app.application import GlueApplication

    load_plugins(require_qt_plugins=False)
    for name in names:
        monkeypatch.setitem(settings.AUTOLINK, name, autolink)
    app = GlueApplication()

    def report_error(message, detail):
        raise AssertionError(f"glue reported an error: {message}\n{detail}")

    app.report_error = report_error
    return app
