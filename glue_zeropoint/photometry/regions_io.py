"""Star positions from, and apertures to, ds9 region files (through astropy-regions).

:func:`read_positions` takes the stars an observer marked in ds9 (or any tool writing ds9
regions: circles, points, ellipses, boxes; pixel or sky coordinates) and gives positions that
:func:`~glue_zeropoint.photometry.measure_stars` accepts. :func:`write_apertures` writes the
measured apertures back as ds9 circles, so the result can be overlaid on the frame in ds9.
Nothing here imports Qt or glue.
"""

import warnings
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..exceptions import InputError
from ..io import atomic_path

__all__ = ["read_positions", "write_apertures"]


def read_positions(path, wcs=None):
    """Centres of the regions in a ds9 region file.

    Parameters
    ----------
    path : path
        A ds9 region file. Regions with a centre (circle, point, ellipse, box, annulus...)
        count; others (lines, polygons, text) are passed over.
    wcs : `~astropy.wcs.WCS`, optional
        Needed only when the file mixes pixel and sky regions (sky ones are then converted).

    Returns
    -------
    `~astropy.table.Table` or `~astropy.coordinates.SkyCoord`
        A table ``star_id``, ``x``, ``y`` (0-based pixels) when the regions are in image
        coordinates, a ``SkyCoord`` when they are all on the sky.

    Raises
    ------
    InputError
        The file cannot be read as ds9 regions, holds no region with a centre, or mixes
        pixel and sky regions without a ``wcs``.
    """
    from regions import Regions

    path = Path(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            regions = Regions.read(str(path), format="ds9")
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such region file") from err
    except Exception as err:  # noqa: BLE001 - regions raises many kinds for a bad file
        raise InputError(f"{path}: not a ds9 region file ({err})") from err
    pixel, sky = [], []
    for region in regions:
        center = getattr(region, "center", None)
        if center is None:
            continue
        (sky if isinstance(center, SkyCoord) else pixel).append(center)
    skipped = [str(w.message) for w in caught]
    if not pixel and not sky:
        why = f" ({skipped[0]})" if skipped else ""
        raise InputError(f"{path}: no region with a centre (circle, point, ellipse, box) in "
                         f"its {len(regions)} region(s){why}; is it a ds9 region file?")
    if skipped:
        warnings.warn(f"{path}: {len(skipped)} line(s) not understood and passed over, e.g. "
                      f"{skipped[0]}", stacklevel=2)
    if sky and not pixel:
        return SkyCoord(sky) if len(sky) > 1 else SkyCoord([sky[0]])
    xy = [(float(c.x), float(c.y)) for c in pixel]
    if sky:
        if wcs is None or not getattr(wcs, "has_celestial", False):
            raise InputError(f"{path}: mixes image and sky regions; give the image a WCS (or "
                             "save the regions in one coordinate system)")
        sx, sy = wcs.world_to_pixel(SkyCoord(sky))
        xy += list(zip(np.atleast_1d(sx).astype(float), np.atleast_1d(sy).astype(float),
                       strict=True))
    t = Table()
    t["star_id"] = np.arange(1, len(xy) + 1)
    t["x"] = np.array([p[0] for p in xy])
    t["y"] = np.array([p[1] for p in xy])
    return t


def write_apertures(stars, path, *, radius=None, used=None, wcs=None):
    """Write ``stars`` (``x``, ``y``, ``star_id``) as ds9 circles, atomically.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        Measured stars (pixel columns ``x``/``y``, 0-based).
    path : path
    radius : float, optional
        Circle radius in pixels; default ``stars.meta['aperture_radius']``, else 5.
    used : array of bool, optional
        Stars used by the zero-point fit: drawn green; the others red (and tagged
        ``rejected``).
    wcs : `~astropy.wcs.WCS`, optional
        Write sky circles (fk5/icrs) instead of image ones, so the file fits any frame of the
        field.

    Returns
    -------
    Path
    """
    from astropy import units as u
    from regions import CirclePixelRegion, PixCoord, Regions, RegionVisual

    if radius is None:
        radius = float(stars.meta.get("aperture_radius") or 5.0)
    x = np.asarray(stars["x"], float)
    y = np.asarray(stars["y"], float)
    ids = np.asarray(stars["star_id"]) if "star_id" in stars.colnames else np.arange(1, x.size + 1)
    used = np.ones(x.size, bool) if used is None else np.asarray(used, bool)
    out = []
    for i in np.flatnonzero(np.isfinite(x) & np.isfinite(y)):
        visual = RegionVisual(color="green" if used[i] else "red")
        region = CirclePixelRegion(PixCoord(x[i], y[i]), radius=float(radius),
                                   meta={"text": str(ids[i])} | (
                                       {} if used[i] else {"tag": ["rejected"]}),
                                   visual=visual)
        if wcs is not None and getattr(wcs, "has_celestial", False):
            region = region.to_sky(wcs)
            region.radius = region.radius.to(u.arcsec)
        out.append(region)
    path = Path(path)
    with atomic_path(path) as tmp:
        Regions(out).write(str(tmp), format="ds9", overwrite=True)
    return path
