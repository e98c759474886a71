"""A WCS from a few hand-matched pairs (star on the image, catalog star): the science of the
Glue "match to sky" tool, without glue or Qt.

- :func:`snap_to_star`: a click on the image -> the centroid of the star under it;
- :func:`nearest_star`: a click in a plot of a catalog -> the nearest catalog row;
- :func:`wcs_from_pairs`: the WCS from >= 3 pairs (astropy's fit from points), refined with
  every detected star matched to the catalog when enough of them match.
"""

import numpy as np

from ..exceptions import InputError, ZeropointError
from ..stats import mad_std
from .detect import windowed_centroids
from .fit import fit_wcs_from_pairs, refine_wcs
from .quality import wcs_quality

__all__ = ["snap_to_star", "nearest_star", "wcs_from_pairs"]


def snap_to_star(image, x, y, radius):
    """Centroid ``(x, y)`` of the brightest star within ``radius`` pixels of a click.

    The box of ``4 radius`` around the click is background subtracted (its median); the peak
    must stand 5 robust sigma (MAD of the box) above it.

    Raises
    ------
    InputError
        The click is outside the image, the box has no valid pixel, or no star is near.
    """
    a = image
    ny, nx = a.shape
    r = int(np.ceil(radius))
    x0, x1 = max(int(round(x)) - 2 * r, 0), min(int(round(x)) + 2 * r + 1, nx)
    y0, y1 = max(int(round(y)) - 2 * r, 0), min(int(round(y)) + 2 * r + 1, ny)
    if x0 >= x1 or y0 >= y1:
        raise InputError(f"the click at ({x:.0f}, {y:.0f}) is outside the image")
    box = a[y0:y1, x0:x1].astype(float)
    finite = np.isfinite(box)
    if not finite.any():
        raise InputError(f"no valid pixels near ({x:.0f}, {y:.0f})")
    back = np.nanmedian(box)
    sub = np.where(finite, box - back, 0.0)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    near = np.hypot(xx - x, yy - y) <= radius
    k = np.argmax(np.where(near, sub, -np.inf))
    py, px = yy.ravel()[k], xx.ravel()[k]
    noise = mad_std(sub[finite])  # sub's median over the finite pixels is 0 by construction
    if sub.ravel()[k] < 5 * max(noise, 1e-12):
        raise InputError(f"no star near ({x:.0f}, {y:.0f}): click closer to a star")
    full = np.zeros_like(a, dtype=np.float32)
    full[y0:y1, x0:x1] = sub
    cx, cy = windowed_centroids(full, [px], [py], fwhm=3.0, half=min(r, 7))
    return float(cx[0]), float(cy[0])


def nearest_star(ra, dec, x, y, vx=None, vy=None, *, ra_axis=True):
    """Row of the catalog star nearest to a click at (x, y) in a plot of ``vx`` vs ``vy``
    (default RA, Dec in degrees; the RA axis is scaled by cos(Dec) when ``ra_axis``).

    Raises InputError when no star has a finite position."""
    ra = np.asarray(ra, float)
    dec = np.asarray(dec, float)
    vx = ra if vx is None else np.asarray(vx, float)
    vy = dec if vy is None else np.asarray(vy, float)
    if not np.any(np.isfinite(dec)):
        raise InputError("no catalog star with a finite position")
    cosd = np.cos(np.deg2rad(np.nanmedian(dec)))
    sx = cosd if ra_axis else 1.0
    d = np.hypot((vx - x) * sx, vy - y)
    if not np.isfinite(d).any():
        raise InputError("no catalog star with a finite position")
    return int(np.nanargmin(d))


def wcs_from_pairs(xy, sky, shape, *, catalog=None, sources=None):
    """The WCS from >= 3 pairs, refined with all stars when possible.

    Parameters
    ----------
    xy : array (n, 2)
        Pixel positions of the paired stars.
    sky : SkyCoord
        Their catalog positions.
    shape : (ny, nx)
    catalog : Table with ``ra``, ``dec`` (degrees), optional
        The catalog to refine with (every detected star matched to it).
    sources : Table with ``x``, ``y``, optional
        Detected stars (:func:`~glue_zeropoint.astrometry.detect_sources`).

    Returns
    -------
    (WCS, str)
        The WCS and a one-line report of what was done.
    """
    n = len(xy)
    if n < 3:
        raise InputError(f"{n} pair(s) so far: match at least 3 stars to fit a WCS")
    xy = np.asarray(xy, float)
    wcs = fit_wcs_from_pairs(xy, sky, shape=shape, sip_degree=None if n >= 17 else 1)
    px, py = wcs.world_to_pixel(sky)
    pair_rms = float(np.sqrt(np.mean((px - xy[:, 0]) ** 2 + (py - xy[:, 1]) ** 2)))
    report = f"WCS from {n} pairs (rms {pair_rms:.2f} pixel)"
    if catalog is None or sources is None:
        return wcs, report
    ra = np.asarray(catalog["ra"], float)
    dec = np.asarray(catalog["dec"], float)
    try:
        fit, i_src, _ = refine_wcs(wcs, sources["x"], sources["y"], ra, dec, shape=shape,
                                   radius=max(5.0, 4 * pair_rms))
    except ZeropointError as err:
        return wcs, report + f"; not refined ({err})"
    if len(i_src) < max(10, 2 * n):
        return wcs, report + (f"; only {len(i_src)} stars matched the catalog, kept the fit "
                              "from the pairs")
    q = wcs_quality(fit.wcs, sources, catalog, radius=max(3 * fit.rms_arcsec, 0.5))
    report = (f"WCS from {n} pairs refined with {len(i_src)} stars: rms "
              f"{q.rms_arcsec:.2f} arcsec = {q.rms_pix:.2f} pixel"
              + (f", SIP degree {fit.degree}" if fit.degree > 1 else ""))
    return fit.wcs, report
