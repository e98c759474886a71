"""Star positions from, and apertures to, ds9 region files (through astropy-regions).

:func:`read_positions` takes the stars an observer marked in ds9 (or any tool writing ds9
regions: circles, points, ellipses, boxes; pixel or sky coordinates) and gives positions that
:func:`~glue_zeropoint.photometry.measure_stars` accepts. :func:`write_apertures` writes the
measured apertures back as ds9 circles, so the result can be overlaid on the frame in ds9.
Nothing here imports Qt or glue.
"""

import re
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..exceptions import InputError
from ..io import atomic_path
from ..stats import pixel_scale_arcsec

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
    from regions import Regions, TextPixelRegion, TextSkyRegion

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such region file") from err
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror or err})") from err
    try:
        # no warnings.catch_warnings here: it swaps process-wide state and this may run in a
        # worker thread (Glue); lines regions cannot parse are warned about by regions itself
        regions = Regions.parse(text, format="ds9")
    except Exception as err:  # noqa: BLE001 - regions raises many kinds for a bad file
        raise InputError(f"{path}: not a ds9 region file ({err})") from err
    pixel, sky = [], []
    for region in regions:
        center = getattr(region, "center", None)
        if center is None or isinstance(region, (TextPixelRegion, TextSkyRegion)):
            continue  # lines, polygons, text labels
        if region.meta.get("include", True) in (False, 0):
            continue  # an excluded region (ds9 "-circle"): not a star
        if region.meta.get("source", True) in (False, 0):
            continue  # a background region (ds9 "source=0")
        (sky if isinstance(center, SkyCoord) else pixel).append(center)
    if not pixel and not sky:
        n_lines = len(_SHAPE_LINE.findall(text))
        raise InputError(f"{path}: no region with a centre (circle, point, ellipse, box) in "
                         f"its {len(regions)} region(s) ({n_lines} shape line(s) found); is it "
                         "a ds9 region file?")
    if sky:
        try:  # one frame for all (a file may mix fk5, icrs, galactic...)
            sky = _to_icrs(sky)
        except Exception as err:  # noqa: BLE001
            raise InputError(f"{path}: cannot use its sky regions ({err})") from err
    if not pixel:
        return sky
    xy = np.array([(float(c.x), float(c.y)) for c in pixel], dtype=float).reshape(-1, 2)
    if len(sky):
        if wcs is None or not getattr(wcs, "has_celestial", False):
            raise InputError(f"{path}: mixes image and sky regions; give the image a WCS (or "
                             "save the regions in one coordinate system)")
        sx, sy = wcs.world_to_pixel(sky)
        xy = np.vstack([xy, np.column_stack([np.atleast_1d(sx), np.atleast_1d(sy)])])
    t = Table()
    t["star_id"] = np.arange(1, len(xy) + 1)
    t["x"] = xy[:, 0]
    t["y"] = xy[:, 1]
    return t


_SHAPE_LINE = re.compile(r"^\s*[-+]?\s*[a-z]+\s*\(", re.IGNORECASE | re.MULTILINE)


def _to_icrs(centers):
    """Scalar sky centres (any frames) -> one ICRS ``SkyCoord``, in order: one transform per
    frame (converting each region alone took seconds for 2,000 fk5 circles)."""
    groups = {}
    for i, c in enumerate(centers):
        frame = c.frame
        key = (frame.name, str(getattr(frame, "equinox", "")), str(getattr(frame, "obstime", "")))
        groups.setdefault(key, []).append(i)
    ra = np.empty(len(centers))
    dec = np.empty(len(centers))
    for rows in groups.values():
        icrs = SkyCoord([centers[i] for i in rows]).icrs
        ra[rows] = icrs.ra.deg
        dec[rows] = icrs.dec.deg
    return SkyCoord(ra, dec, unit="deg", frame="icrs")


def write_apertures(stars, path, *, radius=None, used=None, wcs=None, labels=None, colors=None,
                    tags=None, comments=()):
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
        Write sky circles (ICRS, radius in arcsec) instead of image ones, so the file fits
        any frame of the field.
    labels : sequence of str, optional
        The text shown by each circle (default the ``star_id``).
    colors : sequence of str, optional
        A ds9 colour per star (``'green'``, ``'red'``, ``'cyan'``...); default green for the
        used stars, red for the others.
    tags : sequence of sequences of str, optional
        ds9 tags per star (each star's own list, e.g. its rejection reasons); the stars not
        used are also tagged ``rejected``. ds9 selects or hides regions by tag.
    comments : sequence of str
        Lines written as ``#`` comments after the header (e.g. what each colour means).

    Returns
    -------
    Path

    Notes
    -----
    The file is written here rather than by ``regions.Regions.write``: its ds9 serialiser
    takes ~0.4 ms a circle (0.74 s for the 2,000 stars of a 4k frame, a quarter of the whole
    ``measure`` step), this ~5 ms. What it writes is read back by ``regions`` to the same
    circles (tests/photometry/test_regions_io.py).
    """

    if radius is None:
        radius = float(stars.meta.get("aperture_radius") or 5.0)
    x = np.asarray(stars["x"], float)
    y = np.asarray(stars["y"], float)
    ids = np.asarray(stars["star_id"]) if "star_id" in stars.colnames else np.arange(1, x.size + 1)
    used = np.ones(x.size, bool) if used is None else np.asarray(used, bool)
    for name, values in (("labels", labels), ("colors", colors), ("tags", tags)):
        if values is not None and len(values) != x.size:
            raise InputError(f"write_apertures: {name} has {len(values)} entries for "
                             f"{x.size} stars")
    good = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    lines = ["# Region file format: DS9 version 4.1 (glue-zeropoint)"]
    # (a ';' would end the comment: ds9 and regions split lines on it)
    lines += [f"# {_ds9_text(c).replace(';', ',')}" for c in comments]
    lines.append("global color=green dashlist=8 3 width=1 select=1 highlite=1 dash=0 fixed=0 "
                 "edit=1 move=1 delete=1 include=1 source=1")
    if wcs is not None and getattr(wcs, "has_celestial", False):
        celestial = wcs.celestial
        centers = celestial.pixel_to_world(x[good], y[good]).icrs
        ra, dec = np.atleast_1d(centers.ra.deg), np.atleast_1d(centers.dec.deg)
        on_sky = np.isfinite(ra) & np.isfinite(dec)  # (outside a projection: no sky position)
        good, ra, dec = good[on_sky], ra[on_sky], dec[on_sky]
        r = f'{float(radius) * pixel_scale_arcsec(celestial):.4f}"'
        lines.append("icrs")
        shapes = [f"circle({a:.8f},{d:+.8f},{r})" for a, d in zip(ra, dec, strict=True)]
    else:
        lines.append("image")  # ds9 pixels are 1-based
        xl, yl, rad = (x[good] + 1).tolist(), (y[good] + 1).tolist(), float(radius)
        shapes = [f"circle({a:.4f},{b:.4f},{rad:.4f})" for a, b in zip(xl, yl, strict=True)]
    used = used.tolist()  # Python values: a night writes ~200,000 lines
    words = {}  # each colour's ds9 word, made once
    for shape, i in zip(shapes, good.tolist(), strict=True):
        text = _ds9_text(ids[i] if labels is None else labels[i])
        color = (None if used[i] else "red") if colors is None else str(colors[i])
        if color in (None, "green"):
            extra = ""
        else:
            if color not in words:
                words[color] = f" color={_ds9_word(color)}"
            extra = words[color]
        if tags is None:
            extra += "" if used[i] else " tag={rejected}"
        else:
            star_tags = ([] if used[i] else ["rejected"]) + list(tags[i])
            extra += "".join(f" tag={{{_ds9_text(tag)}}}" for tag in dict.fromkeys(star_tags))
        lines.append(f"{shape} # text={{{text}}}{extra}")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ds9_word(value):
    """A ds9 property value without spaces or braces (a colour name or ``#rrggbb``)."""
    return re.sub(r"[^A-Za-z0-9#]", "", str(value)) or "red"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f{}]")


def _ds9_text(value):
    """A label that cannot end the ds9 ``text={...}`` property (or its line) early."""
    text = str(value)
    if _UNSAFE.search(text) is None:  # most labels (a night writes ~400,000)
        return text
    return _CONTROL.sub(" ", text).replace("{", "(").replace("}", ")")
