"""Reference catalogs as glue table datasets, linked to images and stars (glue-core only).

Public API
----------
``catalog_to_data(table, label) -> glue.core.Data``
    A normalised catalog table (see :mod:`glue_zeropoint.catalogs`) as a glue table: numeric
    columns as numeric components (masked -> NaN), booleans as 0/1 integers, strings (``id``,
    ``otype``...) as categorical components; multi-dimensional columns are skipped. ``meta``
    keeps the JSON-safe entries of the table's meta (``catalog``, ``service``, ``retrieved``,
    ``from_cache``, ``bands``...) plus ``zp_kind='catalog'``.
``link_catalog(dc, catalog_data, image_data) -> list of links``
    ``LinkSame`` of the catalog's ``ra``/``dec`` to the image's RA/Dec world component ids
    (found from the WCS axis types, not by position) and to the image's stars table ``ra``/``dec``
    when there is one (a stars table made later is linked to the image's catalogs then).
    Sets ``meta['zp_catalog_for']`` to the image uuid.
``catalogs_for(dc, image_data) -> list of Data``
"""

import json

import numpy as np

from ..exceptions import CatalogError
from .links import link_sky

__all__ = ["catalog_to_data", "link_catalog", "catalogs_for", "json_safe_meta", "register",
           "catalog_field", "add_or_update_catalog"]


def json_safe_meta(meta):
    """The entries of ``meta`` that survive a JSON round trip unchanged (others dropped)."""
    result = {}
    for key, value in dict(meta or {}).items():
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.generic):
            value = value.item()
        try:
            if json.loads(json.dumps(value)) == value:
                result[str(key)] = value
        except (TypeError, ValueError):
            continue
    return result


def catalog_to_data(table, label):
    """Make a glue table dataset from a (normalised) catalog table."""
    from glue.core import Data
    from glue.core.component import CategoricalComponent, Component

    if "ra" not in table.colnames or "dec" not in table.colnames:
        raise CatalogError(f"{label}: the catalog has no 'ra'/'dec' columns (columns: "
                           f"{', '.join(table.colnames)}); normalise it first")
    data = Data(label=label)
    for name in table.colnames:
        col = table[name]
        if col.ndim > 1:
            continue
        unit = str(col.unit) if getattr(col, "unit", None) is not None else ""
        kind = col.dtype.kind
        if kind == "b":
            values = np.ma.filled(np.ma.asarray(col), False).astype(np.int8)
            comp = Component(np.asarray(values), units=unit)
        elif kind in "iuf":
            values = np.ma.filled(np.ma.asarray(col).astype(np.float64), np.nan)
            if kind in "iu" and not np.ma.is_masked(np.ma.asarray(col)):
                values = np.asarray(col).astype(np.int64)
            comp = Component(np.asarray(values), units=unit)
        else:
            strings = [("" if v is np.ma.masked else (v.decode() if isinstance(v, bytes)
                                                          else str(v))) for v in col]
            # a fixed-width unicode array: glue saves object arrays in sessions it cannot read
            comp = CategoricalComponent(np.array(strings, dtype=str))
        data.add_component(comp, name)
    meta = json_safe_meta(table.meta)
    meta.update({"zp_kind": "catalog", "zp_catalog": str(table.meta.get("catalog", label))})
    data.meta.update(meta)
    return data


def catalogs_for(dc, image_data):
    """The catalog datasets linked to ``image_data`` by :func:`link_catalog`."""
    return [d for d in dc if d.meta.get("zp_kind") == "catalog"
            and d.meta.get("zp_catalog_for") == image_data.uuid]


def link_catalog(dc, catalog_data, image_data):
    """Link a catalog dataset to an image (RA/Dec world ids) and to its stars table."""
    from .stars import stars_for

    if catalog_data not in dc:
        dc.append(catalog_data)
    catalog_data.meta["zp_catalog_for"] = image_data.uuid
    links = list(link_sky(dc, catalog_data, image_data))
    stars = stars_for(dc, image_data)
    if stars is not None:
        links += link_sky(dc, catalog_data, stars)
    return links


def register():
    """Nothing to register: catalog datasets are made by the catalog action."""


def catalog_field(image):
    """``(center, radius)`` of the cone covering an image dataset, or ``(None, None)`` without WCS."""
    from ..catalogs import field_of
    from .loader import wcs_from_meta

    wcs = wcs_from_meta(image)
    if wcs is None or not wcs.has_celestial:
        return None, None
    return field_of(wcs, image.shape)


def add_or_update_catalog(dc, image, table, label):
    """The catalog dataset ``label`` of ``image``: updated in place when it exists (links,
    subsets and viewers stay), else made, added to ``dc`` and linked to the image."""
    new = catalog_to_data(table, label)
    for data in catalogs_for(dc, image):
        if data.label == label:
            data.update_values_from_data(new)
            data.meta.update(new.meta)
            link_catalog(dc, data, image)
            return data
    dc.append(new)
    link_catalog(dc, new, image)
    return new
