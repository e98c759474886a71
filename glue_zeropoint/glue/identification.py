"""SIMBAD identification of a stars dataset, the glue-core side (no Qt).

:func:`stars_snapshot` is what the identification query needs of a stars dataset (a plain
Table, safe to hand to a worker thread); :func:`add_identification` puts the answer of
:func:`glue_zeropoint.catalogs.identify_field` back into the dataset, in place.
"""

import numpy as np

from ..stats import pixel_scale_arcsec
from .loader import wcs_from_meta

__all__ = ["IDENTIFICATION_COMPONENTS", "add_identification", "stars_snapshot",
           "image_pixel_scale"]

#: Components :func:`add_identification` adds to a stars dataset (strings, then numbers).
IDENTIFICATION_COMPONENTS = ("simbad_id", "simbad_otype", "simbad_sep_arcsec", "variable",
                             "nonstellar")


def add_identification(stars_data, table):
    """Put :func:`~glue_zeropoint.catalogs.identify` columns into a stars dataset, in place.

    ``table`` rows are matched to the dataset's rows by ``star_id``; stars it does not have
    (added while the query ran) get ``''``/NaN/0. Existing components are updated (their ids,
    hence subsets and links on them, stay); missing ones are added. Returns the number of
    stars identified.
    """
    from glue.core.component import CategoricalComponent, Component

    ids = np.asarray(stars_data["star_id"]).astype(np.int64)
    n = ids.size
    rows = {int(k): i for i, k in enumerate(np.asarray(table["star_id"]).astype(np.int64))}
    take = np.array([rows.get(int(k), -1) for k in ids], dtype=np.int64)
    have = take >= 0
    values = {}
    for name in IDENTIFICATION_COMPONENTS:
        src = np.asarray(table[name])
        if name in ("simbad_id", "simbad_otype"):
            column = np.array([""] * n, dtype=object)
            column[have] = src.astype(str)[take[have]]
            values[name] = np.array(column.tolist() if n else [], dtype=str)
        elif name == "simbad_sep_arcsec":
            column = np.full(n, np.nan)
            column[have] = src.astype(float)[take[have]]
            values[name] = column
        else:
            column = np.zeros(n, dtype=np.int8)
            column[have] = src.astype(bool)[take[have]]
            values[name] = column
    labels = {cid.label: cid for cid in stars_data.components}
    numeric = {}
    for name, column in values.items():
        categorical = column.dtype.kind == "U"
        new = (CategoricalComponent(column) if categorical
               else Component(column, units="arcsec" if name == "simbad_sep_arcsec" else ""))
        if name not in labels:
            stars_data.add_component(new, name)
        elif categorical:
            # update_components cannot set categorical values: swap the values as glue's
            # update_values_from_data does; the message below goes out with the numbers
            stars_data.get_component(labels[name])._data = new._data
        else:
            numeric[labels[name]] = column
    if numeric:
        stars_data.update_components(numeric)
    elif labels.keys() & set(IDENTIFICATION_COMPONENTS):
        stars_data.update_components({})
    return int(np.count_nonzero(values["simbad_id"] != "")) if n else 0


def image_pixel_scale(image):
    """Pixel scale (arcsec/pixel) of an image dataset's celestial WCS, or None."""
    wcs = wcs_from_meta(image)
    if wcs is None or not wcs.has_celestial:
        return None
    scale = pixel_scale_arcsec(wcs)
    return scale if np.isfinite(scale) and scale > 0 else None


def stars_snapshot(stars, image):
    """``star_id``, ``ra``, ``dec`` of a stars dataset as a Table (a copy), with the image's
    pixel scale in ``meta['pixel_scale']`` (it sets the crossmatch's smallest and search
    radius) when the image has a WCS."""
    from astropy.table import Table

    snapshot = Table({"star_id": np.asarray(stars["star_id"]).astype(np.int64),
                      "ra": np.asarray(stars["ra"], float),
                      "dec": np.asarray(stars["dec"], float)})
    scale = image_pixel_scale(image)
    if scale:
        snapshot.meta["pixel_scale"] = scale
    return snapshot
