"""Match to sky, the glue-core side: pairs of (star on an image dataset, star of a catalog
dataset) and the WCS they give, attached to the image.

:class:`SkyMatcher` holds the pairs and the fit without any Qt, so scripts and tests can drive
it directly; the science is :mod:`glue_zeropoint.astrometry.pairs`; the Qt tool that feeds it
clicks is :class:`glue_zeropoint.qt.match_sky.MatchSkyTool`.
"""

import numpy as np

from ..astrometry import detect_sources
from ..astrometry.pairs import nearest_star, snap_to_star, wcs_from_pairs
from ..exceptions import InputError
from .wcs_update import attach_wcs

__all__ = ["SkyMatcher", "catalog_radec_ids"]

_RA_NAMES = ("ra", "ra_icrs", "raj2000", "right ascension")
_DEC_NAMES = ("dec", "de_icrs", "dej2000", "declination")


def catalog_radec_ids(data):
    """``(ra_cid, dec_cid)`` of a glue table dataset with RA/Dec columns, or ``(None, None)``."""
    ra = dec = None
    for cid in data.main_components:
        low = cid.label.lower()
        if ra is None and low in _RA_NAMES:
            ra = cid
        if dec is None and low in _DEC_NAMES:
            dec = cid
    return ra, dec


def _image_array(data):
    labels = {cid.label: cid for cid in data.main_components}
    cid = labels.get("flux") or data.main_components[0]
    return np.asarray(data.get_data(cid), dtype=np.float32)


class SkyMatcher:
    """Pairs of (star on the image, catalog star) and the WCS they give.

    Parameters
    ----------
    image : `glue.core.data.Data`
        The 2-D image dataset.
    snap_radius : float
        A click snaps to the brightest star within this many pixels.
    """

    def __init__(self, image, snap_radius=8.0):
        if image.ndim != 2:
            raise InputError(f"{image.label}: match to sky needs a 2-D image")
        self.image = image
        self.snap_radius = float(snap_radius)
        self.pixels = []  # (x, y) of paired stars
        self.sky = []  # (ra, dec) of their catalog counterparts
        self.pending = None  # (x, y) waiting for its counterpart
        self.catalog = None  # the catalog dataset the counterparts were taken from
        self.wcs = None
        self.report = ""
        self._array = None
        self._sources = None

    # ------------------------------------------------------------------ pairs
    @property
    def array(self):
        if self._array is None:
            self._array = _image_array(self.image)
        return self._array

    def snap(self, x, y):
        """Centroid of the star nearest to a click at pixel (x, y)
        (:func:`~glue_zeropoint.astrometry.pairs.snap_to_star`)."""
        return snap_to_star(self.array, x, y, self.snap_radius)

    def add_pixel(self, x, y, snap=True):
        """Start a pair with the star at (x, y) (snapped to its centroid); returns it."""
        self.pending = self.snap(x, y) if snap else (float(x), float(y))
        return self.pending

    def add_sky(self, catalog, x, y, x_cid=None, y_cid=None):
        """Finish the pending pair with the catalog star nearest to (x, y) in a RA/Dec view.

        ``x``, ``y`` are in the units of the view's axes ``x_cid``, ``y_cid`` (RA and Dec in
        degrees by default). Returns the catalog row index, or None when no pair was pending.
        """
        if self.pending is None:
            return None
        ra_id, dec_id = catalog_radec_ids(catalog)
        if ra_id is None or dec_id is None:
            raise InputError(f"{catalog.label}: the catalog has no ra/dec columns")
        ra = np.asarray(catalog.get_data(ra_id), float)
        dec = np.asarray(catalog.get_data(dec_id), float)
        vx = None if x_cid is None else np.asarray(catalog.get_data(x_cid), float)
        vy = None if y_cid is None else np.asarray(catalog.get_data(y_cid), float)
        try:
            row = nearest_star(ra, dec, x, y, vx, vy,
                               ra_axis=x_cid is None or x_cid is ra_id)
        except InputError as err:
            raise InputError(f"{catalog.label}: {err}") from None
        self.pixels.append(self.pending)
        self.sky.append((float(ra[row]), float(dec[row])))
        self.pending = None
        self.catalog = catalog
        return row

    def undo(self):
        """Drop the pending star, or else the last pair."""
        if self.pending is not None:
            self.pending = None
        elif self.pixels:
            self.pixels.pop()
            self.sky.pop()

    # ------------------------------------------------------------------ fit
    def sources(self):
        if self._sources is None:
            self._sources = detect_sources(self.array, max_sources=3000)
        return self._sources

    def fit(self, refine=True):
        """Fit the WCS from the pairs (>= 3), refined with all stars when possible
        (:func:`~glue_zeropoint.astrometry.pairs.wcs_from_pairs`).

        Returns the WCS (also in :attr:`wcs`); :attr:`report` says what was done.
        """
        from astropy.coordinates import SkyCoord

        n = len(self.pixels)
        if n < 3:
            raise InputError(f"{n} pair(s) so far: match at least 3 stars to fit a WCS")
        sky = np.array(self.sky)
        sky = SkyCoord(sky[:, 0], sky[:, 1], unit="deg")
        refine = refine and self.catalog is not None
        self.wcs, self.report = wcs_from_pairs(
            np.array(self.pixels), sky, self.image.shape,
            catalog=self.catalog_table() if refine else None,
            sources=self.sources() if refine else None)
        return self.wcs

    def catalog_table(self):
        from astropy.table import Table

        ra_id, dec_id = catalog_radec_ids(self.catalog)
        return Table({"ra": np.asarray(self.catalog.get_data(ra_id), float),
                      "dec": np.asarray(self.catalog.get_data(dec_id), float)})

    def apply(self, data_collection=None, save_product=True):
        """Fit (if needed) and attach the WCS to the image; returns it.

        With ``save_product``, the WCS is also written into the calibrated product the image
        was loaded from (``meta['zp_product']``), when there is one.
        """
        from pathlib import Path

        from ..astrometry import update_fits_wcs

        wcs = self.wcs if self.wcs is not None else self.fit()
        attach_wcs(self.image, wcs, data_collection=data_collection)
        product = self.image.meta.get("zp_product") if save_product else None
        if product and Path(product).is_file():
            update_fits_wcs(product, wcs, history="WCS from match to sky (glue-zeropoint)")
            self.report += f"; saved in {Path(product).name}"
        return wcs
