"""How good is a WCS? Match detected stars to a catalog through it and measure the residuals."""

import logging
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..exceptions import InputError
from .fit import match_xy

__all__ = ["WCSQuality", "wcs_quality", "catalog_radec", "pixel_positions"]

log = logging.getLogger(__name__)


@dataclass
class WCSQuality:
    """Quality of a WCS measured against a catalog.

    Attributes
    ----------
    rms_arcsec, rms_pix : float
        Root-mean-square distance between the detected stars and their matched catalog stars
        (after 3-sigma clipping), in arcsec and in pixels. NaN when nothing matched.
    n_matched : int
        Stars matched within ``radius_arcsec`` (one-to-one, nearest neighbour).
    n_used : int
        Matches kept by the clipping (those the rms is computed from).
    n_sources : int
        Detected stars considered.
    n_catalog : int
        Catalog stars that fall on the image according to the WCS.
    radius_arcsec : float
        Match radius.
    offset_arcsec : tuple
        Median offset (east, north) of the detected stars from the catalog positions as the
        WCS projects them: a large value with a small rms means a shifted WCS (a star found
        2 arcsec east of its catalog position gives +2 in the first element).
    pixel_scale : float
        Arcsec per pixel at the image centre.
    """

    rms_arcsec: float
    rms_pix: float
    n_matched: int
    n_used: int
    n_sources: int
    n_catalog: int
    radius_arcsec: float
    offset_arcsec: tuple
    pixel_scale: float

    def to_dict(self):
        d = asdict(self)
        d["offset_arcsec"] = [float(v) for v in self.offset_arcsec]
        return d

    def to_table(self):
        return Table(rows=[[k, v] for k, v in self.to_dict().items()], names=["key", "value"],
                     dtype=[str, object])

    def __str__(self):
        return (f"{self.n_used} stars matched (of {self.n_sources} detected, {self.n_catalog} "
                f"catalog stars on the image): rms {self.rms_arcsec:.3f} arcsec = "
                f"{self.rms_pix:.3f} pixel")


def catalog_radec(catalog):
    """Float arrays ``ra``, ``dec`` (degrees) of a normalised catalog table or a SkyCoord."""
    if hasattr(catalog, "ra") and hasattr(catalog, "dec") and not isinstance(catalog, Table):
        sky = catalog.icrs
        return np.asarray(sky.ra.deg, float), np.asarray(sky.dec.deg, float)
    if not isinstance(catalog, Table):
        raise InputError(f"catalog must be a table with 'ra'/'dec' columns or a SkyCoord, not "
                         f"{type(catalog).__name__}")
    missing = [c for c in ("ra", "dec") if c not in catalog.colnames]
    if missing:
        raise InputError(f"catalog has no {', '.join(missing)} column (has "
                         f"{', '.join(catalog.colnames[:12])}); normalise it with "
                         "glue_zeropoint.catalogs first")

    def col(name):
        c = catalog[name]
        if hasattr(c, "unit") and c.unit is not None and c.unit != u.deg:
            try:
                c = u.Quantity(c).to_value(u.deg)
            except u.UnitsError:
                pass
        a = np.ma.filled(np.ma.asarray(c, dtype=float), np.nan)
        return np.asarray(a, float)

    return col("ra"), col("dec")


def pixel_positions(sources):
    """(N, 2) array of 0-based pixel positions from a table with x/y columns or an array."""
    if isinstance(sources, Table):
        for xn, yn in (("x", "y"), ("xcentroid", "ycentroid"), ("x_centroid", "y_centroid")):
            if xn in sources.colnames and yn in sources.colnames:
                return np.column_stack([np.asarray(sources[xn], float),
                                        np.asarray(sources[yn], float)])
        raise InputError(f"the sources table has no x/y columns (has "
                         f"{', '.join(sources.colnames[:12])})")
    arr = np.asarray(sources, float)
    if arr.ndim != 2 or 2 not in arr.shape:
        raise InputError(f"sources must be an (N, 2) array of pixel positions; got shape "
                         f"{arr.shape}")
    return arr if arr.shape[1] == 2 else arr.T


def _as_arcsec(radius):
    if isinstance(radius, u.Quantity):
        return float(radius.to_value(u.arcsec))
    return float(radius)


def wcs_quality(wcs, sources_xy, catalog, radius=2.0 * u.arcsec, *, shape=None, clip=3.0):
    """Measure a WCS: match the detected stars to the catalog through it.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the image.
    sources_xy : (N, 2) array or table with ``x``, ``y``
        Detected star positions, 0-based pixels.
    catalog : table with ``ra``, ``dec`` (degrees) or SkyCoord
    radius : `~astropy.units.Quantity` or float
        Match radius (angle; a float is arcsec).
    shape : tuple, optional
        ``(ny, nx)`` to count the catalog stars on the image (default ``wcs.pixel_shape``).
    clip : float
        Matches further than ``clip`` robust standard deviations (per axis) are left out of
        the rms (None: keep all).

    Returns
    -------
    WCSQuality
    """
    xy = pixel_positions(sources_xy)
    ra, dec = catalog_radec(catalog)
    r_arcsec = _as_arcsec(radius)
    if not r_arcsec > 0:
        raise InputError(f"radius must be positive; got {radius!r}")
    scale = float(np.sqrt(abs(np.linalg.det(wcs.celestial.pixel_scale_matrix))) * 3600.0)
    good = np.isfinite(ra) & np.isfinite(dec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cx = np.full(ra.size, np.nan)
        cy = np.full(ra.size, np.nan)
        if good.any():
            if wcs.sip is not None:
                cx[good], cy[good] = wcs.all_world2pix(ra[good], dec[good], 0, quiet=True)
            else:
                cx[good], cy[good] = wcs.wcs_world2pix(ra[good], dec[good], 0)
    if shape is None and wcs.pixel_shape is not None:
        shape = (wcs.pixel_shape[1], wcs.pixel_shape[0])
    if shape is not None:
        ny, nx = shape
        on = (cx > -0.5) & (cx < nx - 0.5) & (cy > -0.5) & (cy < ny - 0.5)
        n_cat = int(on.sum())
    else:
        n_cat = int(good.sum())
    i_s, i_c, d = match_xy(xy, np.column_stack([cx, cy]), r_arcsec / scale)
    nan = float("nan")
    if i_s.size == 0:
        return WCSQuality(nan, nan, 0, 0, len(xy), n_cat, r_arcsec, (nan, nan), scale)
    keep = np.ones(i_s.size, bool)
    if clip is not None and i_s.size >= 5:
        # one pass on a robust scale: the median of a 2-D Gaussian's radial distance is
        # 1.1774 sigma; mismatches and blends fall outside clip * sigma
        sigma = float(np.median(d)) / 1.1774
        keep = d <= max(clip * sigma, 1e-9)
    rms_pix = float(np.sqrt(np.mean(d[keep] ** 2)))
    # offset of stars from catalog on the sky (east, north) via the local Jacobian
    dx = xy[i_s[keep], 0] - cx[i_c[keep]]
    dy = xy[i_s[keep], 1] - cy[i_c[keep]]
    m = wcs.celestial.pixel_scale_matrix * 3600.0
    east, north = m @ np.array([np.median(dx), np.median(dy)])
    return WCSQuality(rms_pix * scale, rms_pix, int(i_s.size), int(keep.sum()), len(xy), n_cat,
                      r_arcsec, (float(east), float(north)), scale)
