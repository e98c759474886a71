"""The stars measured on an image, as ONE glue table dataset per image (glue-core only).

Public API
----------
``stars_for(dc, image_data) -> Data | None``
    The stars dataset of an image (``meta['zp_stars_for'] == image.uuid``), or ``None``.
``add_stars(dc, image_data, positions, *, fwhm=None, recenter=True) -> Data``
    Measure stars at pixel ``positions`` (``(N, 2)`` array of x, y, or a table with ``x``/``y``)
    and append them; a star whose recentred position is within :data:`DUPLICATE_RADIUS` pixels
    of one already listed is not added twice. Creates and links the dataset when needed.
``remove_stars(dc, image_data, star_ids) -> Data | None``
``detect_stars(dc, image_data, *, fwhm=None, threshold=5.0, progress=None) -> Data``
    Find all stars and add those not yet in the table (picked stars stay).
``find_positions(image_data, ...) -> Table``
    Detection alone (safe in a worker thread); ``merge_stars(dc, image_data, positions)
    -> (Data, added_ids)`` then measures and adds them (main thread).
``adopt_stars(dc, image_data, table) -> Data``
    A finished measurement (``measure_stars`` output) as the image's stars, as it is.
``measure_positions(image_data, positions, ...) -> Table``
    A standalone measurement that touches no dataset.
``star_at(stars_data, x, y) -> star_id | None``
    The star whose aperture holds pixel ``(x, y)``.

``remeasure_stars(dc, image_data) -> Data``
    Re-measure every listed star together.
``update_sky(dc, image_data) -> Data``
    After a new WCS was attached to the image: recompute ``ra``/``dec``, add missing sky links.

Measurements use the photometry layer's ``measure_stars``. One FWHM per table (set by the
first measurement, or by a detection, which measures it from many stars), hence one aperture
for all stars. While a table has fewer than :data:`MIN_STARS_FOR_CORRECTION` stars every change
re-measures it whole (the aperture correction comes from all its stars); beyond that a click
measures only the new star, with the table's aperture correction and the listed stars masked
from its sky annulus, so a click stays fast with hundreds of stars on a 4k image. A detection
re-measures the whole table.

The dataset
-----------
Label ``'Stars: <image label>'``; components in this order: ``star_id`` (int, unique within the
table, never reused), ``x``, ``y`` (0-based pixels, glue's convention), ``ra``, ``dec`` (deg, from
the image WCS; NaN without one), ``flux``, ``flux_err`` (e-), ``sky`` (e-/pixel), ``mag_inst``,
``mag_inst_err`` (``-2.5 log10(flux / exptime)``), ``flags`` (int bit mask of the photometry
layer). ``meta``: ``zp_kind='stars'``, ``zp_stars_for`` (image uuid), ``zp_image_label``,
``zp_next_star_id``, ``zp_aperture`` (``r``, ``r_in``, ``r_out`` pixels for drawing, ``fwhm``,
``aperture_correction``), ``zp_warnings`` (the photometry layer's warnings of the last
measurement, e.g. an aperture correction resting on too few stars).

Changes are made in place with ``Data.update_values_from_data``: component ids, links, subsets
and viewers survive. The dataset is linked to the image by pixels (``x`` -> pixel axis 1,
``y`` -> pixel axis 0) and, when the image has an equatorial WCS, by sky (``ra``/``dec`` -> the
image's RA/Dec world ids).

Subsets: ROI/range subset states follow the values; row selections (``ElementSubsetState``,
what a table viewer makes) are re-indexed on every change so they stay on the same stars.
"""

import logging
import warnings

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack

from ..exceptions import InputError, PhotometryError
from .links import link_pixels, link_sky
from .loader import WCS_META_KEY, data_to_ccd

__all__ = ["STAR_COLUMNS", "DUPLICATE_RADIUS", "stars_for", "stars_label", "add_stars",
           "remove_stars", "detect_stars", "remeasure_stars", "measure_positions",
           "find_positions", "merge_stars", "stars_table", "star_at", "update_sky",
           "MIN_STARS_FOR_CORRECTION", "add_stars_from_regions", "adopt_stars", "is_measured", "region_positions",
           "write_star_regions", "peak_within",
           "register"]

log = logging.getLogger(__name__)

STAR_COLUMNS = ("star_id", "x", "y", "ra", "dec", "flux", "flux_err", "sky", "mag_inst",
                "mag_inst_err", "flags")
DUPLICATE_RADIUS = 2.0  # pixels: a new star this close to a listed one is the same star


# ---------------------------------------------------------------------------------------------
# photometry layer (glue_zeropoint.photometry does the science; this only feeds it)

def _as_positions(positions):
    if isinstance(positions, Table):
        return np.column_stack([np.asarray(positions["x"], float),
                                np.asarray(positions["y"], float)])
    xy = np.asarray(positions, dtype=float)
    if xy.size == 0:
        return xy.reshape(0, 2)
    xy = np.atleast_2d(xy)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise PhotometryError(f"positions must be (N, 2) pixel x, y pairs, got shape {xy.shape}")
    return xy


def _empty():
    return _normalise(Table({name: [] for name in STAR_COLUMNS}))


def _normalise(table):
    """A table with exactly :data:`STAR_COLUMNS` (float64 except star_id/flags int64)."""
    n = len(table)
    out = Table()
    for name in STAR_COLUMNS:
        integer = name in ("star_id", "flags")
        if name in table.colnames:
            col = table[name]
            values = np.ma.filled(np.ma.asarray(getattr(col, "value", col)),
                                  -1 if integer else np.nan)
        else:
            values = np.full(n, (-1 if name == "star_id" else 0) if integer else np.nan)
        out[name] = np.asarray(values).astype(np.int64 if integer else np.float64)
    out.meta.update(table.meta)
    return out


_PREPARED = {}  # image uuid -> (flux array, PreparedImage); the last few images only
_PREPARED_MAX = 4


def _prepare(image_data):
    """The image as the photometry layer's PreparedImage, cached while pixels and WCS are unchanged."""
    from ..photometry import prepare_image

    key = (image_data.get_component("flux").data, image_data.get_component("mask").data,
           image_data.coords, image_data.meta.get(WCS_META_KEY))
    cached = _PREPARED.get(image_data.uuid)
    if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
        return cached[1]
    prepared = prepare_image(data_to_ccd(image_data), name=image_data.label)
    _PREPARED.pop(image_data.uuid, None)
    while len(_PREPARED) >= _PREPARED_MAX:
        _PREPARED.pop(next(iter(_PREPARED)))
    _PREPARED[image_data.uuid] = (key, prepared)
    return prepared


def _measure(prepared, xy, ids, *, fwhm, recenter, aperture_correction=None,
             mask_positions=None):
    """``measure_stars`` on positions; its warnings go to ``meta['zp_warnings']`` and the log."""
    from ..photometry import measure_stars

    positions = Table({"x": xy[:, 0], "y": xy[:, 1], "star_id": np.asarray(ids, np.int64)})
    extra = {}
    if aperture_correction is not None:
        extra["aperture_correction"] = aperture_correction
    if mask_positions is not None and len(mask_positions):
        extra["mask_positions"] = mask_positions
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = measure_stars(prepared, positions, fwhm=fwhm, recenter=recenter, **extra)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    for message in messages:
        log.info("%s: %s", getattr(prepared, "name", "image"), message)
    table.meta["zp_warnings"] = messages
    return table


def measure_positions(image_data, positions, *, fwhm=None, recenter=True):
    """Measure stars at pixel positions on an image dataset; returns a normalised Table.

    (Standalone: the aperture correction comes from these stars alone. The dataset functions
    below re-measure the whole table so that every star shares one aperture and correction.)
    """
    xy = _as_positions(positions)
    if len(xy) == 0:
        return _empty()
    table = _measure(_prepare(image_data), xy, np.arange(len(xy)), fwhm=fwhm, recenter=recenter)
    return _normalise(table)


def find_positions(image_data, *, fwhm=None, threshold=5.0, progress=None):
    """Detect the stars of an image dataset: a Table ``x``, ``y`` (meta ``fwhm``). Thread-safe."""
    from ..photometry import find_stars

    if progress is not None:
        progress(0, 1, "finding stars")
    found = find_stars(data_to_ccd(image_data), fwhm=fwhm, threshold=threshold)
    if progress is not None:
        progress(1, 1, f"{len(found)} stars found")
    result = Table({"x": np.asarray(found["x"], float), "y": np.asarray(found["y"], float)})
    result.meta["fwhm"] = found.meta.get("fwhm")
    return result


# ---------------------------------------------------------------------------------------------
# the dataset

def stars_label(image_data):
    return f"Stars: {image_data.label}"


def stars_for(dc, image_data):
    """The stars dataset of ``image_data`` in ``dc``, or ``None``."""
    for data in dc:
        if data.meta.get("zp_kind") == "stars" and data.meta.get("zp_stars_for") == image_data.uuid:
            return data
    label = stars_label(image_data)
    for data in dc:
        if data.meta.get("zp_kind") == "stars" and data.label == label:
            return data
    return None


def stars_table(stars_data):
    """The rows of a stars dataset as an astropy Table (copies)."""
    if stars_data is None:
        return _empty()
    return Table({name: np.array(stars_data[name]) for name in STAR_COLUMNS})


def _build(table, label):
    from glue.core import Data
    from glue.core.component import Component

    data = Data(label=label)
    for name in STAR_COLUMNS:
        data.add_component(Component(np.asarray(table[name])), name)
    return data


def _aperture_meta(meta, previous=None):
    result = dict(previous or {})
    for key, name in (("r", "aperture_radius"), ("r_in", "annulus_in"), ("r_out", "annulus_out"),
                      ("fwhm", "fwhm"), ("aperture_correction", "aperture_correction"),
                      ("aperture_correction_err", "aperture_correction_err")):
        try:
            value = float(meta[name])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(value):
            result[key] = value
    result.setdefault("r", 5.0)
    return result


def _measurement_meta(meta):
    """The measured PSF (scalars) and the measurement's assumptions, for the viewers (plain
    numbers and strings, so that they survive a saved session)."""
    psf = meta.get("psf") if isinstance(meta.get("psf"), dict) else {}
    keep = {}
    for key in ("fwhm", "fwhm_scatter", "ellipticity", "theta"):
        value = psf.get(key)
        if value is not None and np.isfinite(value):
            keep[key] = float(value)
    if keep:
        keep["n_stars"] = int(psf.get("n_stars") or 0)
    return {"zp_psf": keep, "zp_assumptions": [str(a) for a in meta.get("assumptions") or []]}


def _write(dc, image_data, table, next_id):
    """Put ``table`` (normalised, final star ids) into the image's stars dataset, in place."""
    stars = stars_for(dc, image_data)
    aperture = _aperture_meta(table.meta, None if stars is None else stars.meta.get("zp_aperture"))
    if stars is None:
        stars = _build(table, stars_label(image_data))
        stars.meta.update({"zp_kind": "stars", "zp_stars_for": image_data.uuid,
                           "zp_image_label": image_data.label, "zp_next_star_id": int(next_id),
                           "zp_aperture": aperture,
                           "zp_warnings": list(table.meta.get("zp_warnings", []))})
        stars.meta.update(_measurement_meta(table.meta))
        dc.append(stars)
        link_pixels(dc, stars, image_data)
        link_sky(dc, stars, image_data)
        for catalog in dc:  # catalogs fetched before the first star was measured
            if (catalog.meta.get("zp_kind") == "catalog"
                    and catalog.meta.get("zp_catalog_for") == image_data.uuid):
                link_sky(dc, catalog, stars)
        return stars
    stars.meta["zp_aperture"] = aperture
    stars.meta["zp_next_star_id"] = int(next_id)
    stars.meta["zp_warnings"] = list(table.meta.get("zp_warnings", []))
    stars.meta.update(_measurement_meta(table.meta))
    _remap_row_selections(dc, stars, np.asarray(stars["star_id"]), np.asarray(table["star_id"]))
    new = _build(table, stars.label)
    _carry_extra_components(stars, new, np.asarray(table["star_id"]))
    stars.update_values_from_data(new)
    return stars


def _carry_extra_components(old, new, new_ids):
    """Copy components added to a stars table (e.g. SIMBAD identifications) into its rewrite.

    glue's ``update_values_from_data`` drops components the new data lacks, so a star added,
    removed or re-measured would lose them. Values follow the stars by ``star_id``; new stars
    get ``''`` (text) or NaN / 0 (numbers).
    """
    from glue.core.component import CategoricalComponent, Component

    old_ids = np.asarray(old["star_id"]).astype(np.int64)
    rows = {int(k): i for i, k in enumerate(old_ids)}
    take = np.array([rows.get(int(k), -1) for k in new_ids], dtype=np.int64)
    have = take >= 0
    for cid in old.main_components:
        if cid.label in STAR_COLUMNS:
            continue
        comp = old.get_component(cid)
        if comp.categorical:
            values = np.array([""] * take.size, dtype=object)
            values[have] = np.asarray(comp.labels, dtype=object)[take[have]]
            new.add_component(CategoricalComponent(values.astype(str)), cid.label)
            continue
        src = np.asarray(comp.data)
        fill = np.nan if src.dtype.kind == "f" else 0
        values = np.full(take.size, fill, dtype=src.dtype if src.dtype.kind != "b" else bool)
        values[have] = src[take[have]]
        new.add_component(Component(values, units=comp.units), cid.label)


def _element_states(state):
    """The ElementSubsetStates inside a (possibly composite) subset state."""
    from glue.core.subset import CompositeSubsetState, ElementSubsetState

    if isinstance(state, ElementSubsetState):
        yield state
    elif isinstance(state, CompositeSubsetState):
        yield from _element_states(state.state1)
        if state.state2 is not None:
            yield from _element_states(state.state2)


def _remap_row_selections(dc, stars, old_ids, new_ids):
    """Keep row selections (e.g. rows picked in a table viewer) on the same stars.

    A table viewer's selection is an ``ElementSubsetState`` of row indices; when rows are
    removed, the indices are moved so that they still point at the same star ids.
    """
    if len(old_ids) == len(new_ids) and np.array_equal(old_ids, new_ids):
        return
    for group in dc.subset_groups:
        for state in _element_states(group.subset_state):
            if state.data != stars.uuid or state.indices is None:
                continue
            rows = np.asarray(state.indices)
            if rows.dtype == bool:
                rows = np.flatnonzero(rows)
            rows = rows[(rows >= 0) & (rows < len(old_ids))]
            state.indices = np.flatnonzero(np.isin(new_ids, old_ids[rows]))


MIN_STARS_FOR_CORRECTION = 5  # below this the whole table is re-measured at each change


def _remeasure(prepared, xy, ids, fwhm):
    """Measure all the listed stars together: one aperture and one aperture correction."""
    if len(xy) == 0:
        return _empty()
    return _normalise(_measure(prepared, np.asarray(xy, float), ids, fwhm=fwhm, recenter=False))


def _fwhm_of(stars):
    if stars is None:
        return None
    value = stars.meta.get("zp_aperture", {}).get("fwhm")
    return float(value) if value else None


def _fixed_correction(stars):
    """The table's aperture correction when it rests on enough stars to be kept as it is."""
    if stars is None or stars.size < MIN_STARS_FOR_CORRECTION:
        return None
    value = stars.meta.get("zp_aperture", {}).get("aperture_correction")
    return float(value) if value and np.isfinite(value) and value > 0 else None


def _xy(table):
    return np.column_stack([np.asarray(table["x"], float), np.asarray(table["y"], float)])


def _keep_new(new, old, radius):
    """Which rows of ``new`` are more than ``radius`` from ``old`` and from earlier new rows."""
    keep = np.all(np.isfinite(new), axis=1)
    r2 = radius ** 2
    for i in range(len(new)):
        if not keep[i]:
            continue
        if len(old) and np.any(np.sum((old - new[i]) ** 2, axis=1) < r2):
            keep[i] = False
        elif i and np.any(np.sum((new[:i][keep[:i]] - new[i]) ** 2, axis=1) < r2):
            keep[i] = False
    return keep


def merge_stars(dc, image_data, positions, *, fwhm=None, recenter=True,
                duplicate_radius=DUPLICATE_RADIUS, remeasure=None):
    """Measure stars at ``positions`` and add those not yet listed.

    The new positions are recentred on their stars; a centre within ``duplicate_radius``
    pixels of a listed star (or of another new one) is dropped. All stars share the table's
    FWHM (set by the first measurement or a detection) and so one aperture. While the table
    has fewer than :data:`MIN_STARS_FOR_CORRECTION` stars, or when ``remeasure`` is true, the
    whole table is re-measured together (a fresh aperture correction from all of them);
    otherwise only the new stars are measured, with the table's aperture correction and the
    listed stars masked from their sky (fast: a click on a 4k image with 500 stars listed).
    Call it in the GUI/main thread when the data are shown.

    Returns ``(stars_data or None, added_ids)``.
    """
    xy = _as_positions(positions)
    stars = stars_for(dc, image_data)
    current = stars_table(stars)
    if fwhm is None:
        fwhm = _fwhm_of(stars)
    if fwhm is None and isinstance(positions, Table) and positions.meta.get("fwhm"):
        fwhm = float(positions.meta["fwhm"])
    if len(xy) == 0:
        return stars, []
    prepared = _prepare(image_data)
    old = _xy(current)
    start = int(stars.meta.get("zp_next_star_id", 0)) if stars is not None else 0
    correction = None if remeasure else _fixed_correction(stars)
    first = _measure(prepared, xy, np.arange(start, start + len(xy)), fwhm=fwhm,
                     recenter=recenter, aperture_correction=correction if correction else False,
                     mask_positions=old if len(old) else None)
    if first.meta.get("fwhm"):
        fwhm = float(first.meta["fwhm"])
    keep = _keep_new(_xy(first), old, duplicate_radius)
    if not keep.any():
        return stars, []
    new_ids = np.arange(start, start + int(keep.sum()), dtype=np.int64)
    if correction is not None:
        added = _normalise(first[keep])
        added["star_id"] = new_ids
        table = vstack([current, added], metadata_conflicts="silent")
        table.meta.update(first.meta)
        table.meta["fwhm"] = fwhm
    else:
        all_xy = np.vstack([old, _xy(first)[keep]]) if len(old) else _xy(first)[keep]
        all_ids = np.concatenate([np.asarray(current["star_id"], np.int64), new_ids])
        table = _remeasure(prepared, all_xy, all_ids, fwhm)
    stars = _write(dc, image_data, table, start + len(new_ids))
    return stars, [int(i) for i in new_ids]


#: the columns that make a table a finished measurement (``measure_stars`` output), which
#: :func:`adopt_stars` takes as it is
MEASURED_COLUMNS = ("x", "y", "flux", "flux_err", "mag_inst", "mag_inst_err", "flags")


def is_measured(table):
    """Whether ``table`` is a finished measurement (:data:`MEASURED_COLUMNS` and the aperture
    it was measured in), not bare positions."""
    return (isinstance(table, Table) and len(table) > 0
            and all(c in table.colnames for c in MEASURED_COLUMNS)
            and table.meta.get("aperture_radius") is not None)


def adopt_stars(dc, image_data, table):
    """Make a finished measurement (e.g. ``glue-zeropoint measure``'s stars, whose flags know
    the catalog's undetected neighbours) the image's stars dataset as it is: the same fluxes,
    errors and flags, so that Glue's zero-point viewer fits the stars the measurement fitted.
    (Re-measuring the positions here lost those neighbours: 5 stars flagged crowded against
    the measurement's 12 on the demo night.) Star ids are kept when they are unique
    non-negative integers, else numbered from 0. Any stars listed before are replaced.

    Returns the stars dataset.
    """
    if not is_measured(table):
        raise InputError("adopt_stars needs a finished measurement (columns "
                         f"{', '.join(MEASURED_COLUMNS)} and meta['aperture_radius'])")
    out = _normalise(table)
    ids = np.asarray(out["star_id"], np.int64)
    if not (ids.size and ids.min() >= 0 and np.unique(ids).size == ids.size):
        ids = np.arange(len(out), dtype=np.int64)
        out["star_id"] = ids
    out.meta.setdefault("zp_warnings", [])
    return _write(dc, image_data, out, int(ids.max()) + 1 if ids.size else 0)


def add_stars(dc, image_data, positions, *, fwhm=None, recenter=True):
    """Measure and add stars at pixel ``positions``; returns the stars dataset."""
    stars, _added = merge_stars(dc, image_data, positions, fwhm=fwhm, recenter=recenter)
    return stars


def remeasure_stars(dc, image_data, *, fwhm=None):
    """Re-measure every listed star together (fresh aperture correction); returns the dataset."""
    stars = stars_for(dc, image_data)
    if stars is None or stars.size == 0:
        return stars
    current = stars_table(stars)
    fwhm = fwhm or _fwhm_of(stars)
    table = _remeasure(_prepare(image_data), _xy(current), current["star_id"], fwhm)
    return _write(dc, image_data, table, stars.meta.get("zp_next_star_id", 0))


def remove_stars(dc, image_data, star_ids):
    """Remove the stars with these ids; returns the stars dataset (``None`` if there is none).

    The other rows stay as measured, unless fewer than :data:`MIN_STARS_FOR_CORRECTION` stay:
    then they are re-measured together.
    """
    stars = stars_for(dc, image_data)
    if stars is None:
        return None
    current = stars_table(stars)
    drop = np.isin(np.asarray(current["star_id"]), np.asarray(list(star_ids), dtype=np.int64))
    if not drop.any():
        return stars
    rest = current[~drop]
    if len(rest) >= MIN_STARS_FOR_CORRECTION or len(rest) == 0:
        table = rest
        table.meta["zp_warnings"] = list(stars.meta.get("zp_warnings", []))
    else:
        table = _remeasure(_prepare(image_data), _xy(rest), np.asarray(rest["star_id"]),
                           _fwhm_of(stars))
    return _write(dc, image_data, table, stars.meta.get("zp_next_star_id", 0))


def detect_stars(dc, image_data, *, fwhm=None, threshold=5.0, progress=None):
    """Find all stars on the image and add the ones not listed yet; returns the stars dataset.

    The detection's FWHM becomes the table's (it is measured from many stars) and the whole
    table is re-measured with it.
    """
    found = find_positions(image_data, fwhm=fwhm, threshold=threshold, progress=progress)
    stars, _added = merge_stars(dc, image_data, found, fwhm=fwhm or found.meta.get("fwhm"),
                                recenter=True, remeasure=True)
    return stars


def update_sky(dc, image_data):
    """Recompute the stars' ``ra``/``dec`` from the image's current WCS; link them by sky.

    For after a new WCS was attached to the image (e.g. a plate solution): the positions in
    pixels stay, the sky positions follow, and the sky links (to the image and to the image's
    catalogs) are made if missing. Returns the stars dataset (or ``None``).
    """
    from .loader import wcs_from_meta

    stars = stars_for(dc, image_data)
    if stars is None:
        return None
    wcs = wcs_from_meta(image_data)
    if wcs is None or not wcs.has_celestial or stars.size == 0:
        return stars
    ra, dec = wcs.celestial.pixel_to_world_values(np.asarray(stars["x"], float),
                                                  np.asarray(stars["y"], float))
    stars.update_components({stars.id["ra"]: np.asarray(ra, float),
                             stars.id["dec"]: np.asarray(dec, float)})
    link_sky(dc, stars, image_data)
    for catalog in dc:
        if (catalog.meta.get("zp_kind") == "catalog"
                and catalog.meta.get("zp_catalog_for") == image_data.uuid):
            link_sky(dc, catalog, image_data)
            link_sky(dc, catalog, stars)
    return stars


def region_positions(image_data, path):
    """Pixel positions ``(N, 2)`` of the regions in a ds9 region file, for ``image_data``.

    Sky regions go through the image's WCS. Reads only (safe in a worker thread).

    Raises
    ------
    InputError
        The file is not a usable region file, or holds sky regions and the image has no WCS.
    """
    from ..photometry.regions_io import read_positions
    from .loader import wcs_from_meta

    wcs = wcs_from_meta(image_data)
    positions = read_positions(path, wcs=wcs)
    if isinstance(positions, SkyCoord):
        if wcs is None or not wcs.has_celestial:
            raise InputError(f"{path}: the regions are on the sky and {image_data.label} has "
                             "no WCS; match it to the sky first (or save the regions in image "
                             "coordinates)")
        x, y = wcs.celestial.world_to_pixel(positions)
        return np.column_stack([np.atleast_1d(x), np.atleast_1d(y)]).astype(float)
    return _as_positions(positions)


def add_stars_from_regions(dc, image_data, path):
    """Measure the stars marked in a ds9 region file (image or sky coordinates) and add them.

    Positions are recentred and duplicates of listed stars dropped, as for drawn stars.
    Returns ``(stars_data, added_ids)``; errors as :func:`region_positions`.
    """
    return merge_stars(dc, image_data, region_positions(image_data, path), recenter=True)


def write_star_regions(dc, image_data, path):
    """Write the image's listed stars as ds9 circles of the measuring aperture (sky
    coordinates when the image has a WCS). Returns the path.

    Raises
    ------
    InputError
        No stars are listed for the image.
    """
    from ..photometry.regions_io import write_apertures
    from .loader import wcs_from_meta

    stars = stars_for(dc, image_data)
    if stars is None or stars.size == 0:
        raise InputError(f"{image_data.label}: no stars listed yet; pick or detect some first")
    table = stars_table(stars)
    radius = (stars.meta.get("zp_aperture") or {}).get("r")
    wcs = wcs_from_meta(image_data)
    return write_apertures(table, path, radius=radius,
                           wcs=wcs if wcs is not None and wcs.has_celestial else None)


def star_at(stars_data, x, y, radius=None):
    """The id of the listed star whose aperture contains pixel ``(x, y)``, or ``None``."""
    if stars_data is None or stars_data.size == 0:
        return None
    if radius is None:
        radius = float(stars_data.meta.get("zp_aperture", {}).get("r", 5.0))
    d2 = (np.asarray(stars_data["x"]) - x) ** 2 + (np.asarray(stars_data["y"]) - y) ** 2
    i = int(np.argmin(d2))
    return int(stars_data["star_id"][i]) if d2[i] <= radius ** 2 else None


def register():
    """Nothing to register: stars datasets are made by the tools and the API above."""


def peak_within(image, x, y, radius):
    """The brightest unmasked pixel of an image dataset within ``radius`` of ``(x, y)``
    (pixel units; the star tool's drag), or ``(x, y)`` when there is none."""
    ny, nx = image.shape
    x0, x1 = max(int(np.floor(x - radius)), 0), min(int(np.ceil(x + radius)) + 1, nx)
    y0, y1 = max(int(np.floor(y - radius)), 0), min(int(np.ceil(y + radius)) + 1, ny)
    if x1 <= x0 or y1 <= y0:
        return x, y
    view = (slice(y0, y1), slice(x0, x1))
    flux = np.asarray(image.get_data(image.id["flux"], view=view), float)
    bad = np.asarray(image.get_data(image.id["mask"], view=view)) != 0
    yy, xx = np.mgrid[y0:y1, x0:x1]
    outside = (xx - x) ** 2 + (yy - y) ** 2 > radius ** 2
    flux = np.where(bad | outside | ~np.isfinite(flux), -np.inf, flux)
    if not np.isfinite(flux.max()):
        return x, y
    iy, ix = np.unravel_index(int(np.argmax(flux)), flux.shape)
    return float(x0 + ix), float(y0 + iy)
