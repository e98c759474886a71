"""Datasets of a measured night in a glue data collection (glue-core only, no Qt).

:func:`night_datasets` adds the images (products by path through the plugin's factory, so
sessions refer to the files), one stars table per image (given, or detected and measured) and
the reference catalog linked to them: everything :func:`glue_zeropoint.qt.app.build_app` then
opens viewers on.
"""

import os
from pathlib import Path

from ..exceptions import InputError

__all__ = ["image_datasets", "catalog_dataset", "night_datasets"]


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def image_datasets(dc, images):
    """Add images to ``dc`` and return their datasets.

    Each item is a glue ``Data`` (used as it is), a path to a calibrated product (loaded with
    glue's ``load_data`` and the plugin's product factory, so sessions refer to the file), or a
    ``CCDData`` (converted with :func:`~glue_zeropoint.glue.loader.ccd_to_data`, labelled
    ``OBJECT FILTER NNN``, numbered within each object and filter).
    """
    from astropy.nddata import CCDData
    from glue.core import Data
    from glue.core.data_factories import load_data

    from ..glue.loader import calibrated_product_factory, ccd_to_data, raising_load_errors

    result = []
    seen = {}  # images of one object and filter so far: numbered within their own run
    for i, item in enumerate(_as_list(images)):
        if isinstance(item, Data):
            data = item
        elif isinstance(item, (str, os.PathLike)):
            with raising_load_errors():  # a broken product is the caller's error, not a message
                loaded = load_data(str(item), factory=calibrated_product_factory)
            data = loaded[0] if isinstance(loaded, list) else loaded
        elif isinstance(item, CCDData):
            meta = item.meta or {}
            parts = [str(meta.get(k)).strip() for k in ("OBJECT", "FILTER") if meta.get(k)]
            key = tuple(parts) or ("image",)
            seen[key] = seen.get(key, 0) + 1
            label = " ".join([*key, f"{seen[key]:03d}"])
            data = ccd_to_data(item, label)
        else:
            raise InputError(f"image {i + 1}: expected a CCDData, a glue Data or a product "
                             f"path, got {type(item).__name__}")
        if data not in dc:
            dc.append(data)
        result.append(data)
    if not result:
        raise InputError("no image given")
    return result


def _primary_index(datasets, band):
    """The image the zero point is shown for: the first whose filter is the band."""
    for i, data in enumerate(datasets):
        if data.meta.get("band") == band:
            return i
    return 0


def _stars_for_image(stars, index, image, primary):
    """The stars table given for image ``index``: from a list (by position), a dict (by label
    or position), or a single table (which belongs to the ``primary`` image); else ``None``."""
    if stars is None:
        return None
    if isinstance(stars, dict):
        return stars.get(image.label, stars.get(index))
    if isinstance(stars, (list, tuple)):
        return stars[index] if index < len(stars) else None
    return stars if index == primary else None


def catalog_dataset(dc, catalog_table, images):
    """Add the reference catalog to ``dc`` (normalised if needed), linked to every image and
    its stars by RA/Dec; the first image ends as the catalog's own image."""
    from ..catalogs import normalize_catalog
    from ..glue.catalog_data import catalog_to_data, link_catalog

    table = catalog_table
    if "ra" not in table.colnames or "dec" not in table.colnames:
        table = normalize_catalog(table)
    label = str(table.meta.get("catalog") or "reference catalog")
    if os.sep in label or label.lower().endswith((".ecsv", ".csv", ".fits", ".xml", ".vot")):
        label = Path(label).name  # a local file: its name is label enough
    catalog = catalog_to_data(table, label)
    dc.append(catalog)
    for image in reversed(images):  # the first image ends as the catalog's own image
        link_catalog(dc, catalog, image)
    return catalog


def night_datasets(dc, images, catalog_table, band, *, stars=None, measure_all=True):
    """Add a night's images, stars and catalog to ``dc``.

    Returns ``(images, primary image, catalog dataset, stars dataset of the primary image)``;
    the primary image is the first taken in ``band`` (else the first). A given stars table
    that is a finished measurement (:func:`.stars.is_measured`) is taken as it is
    (:func:`.stars.adopt_stars`); one of bare positions is measured here. Images without a
    given stars table get their stars detected and measured (all of them with
    ``measure_all``, else only the primary one).
    """
    from .links import link_images
    from .stars import adopt_stars, detect_stars, is_measured, merge_stars, stars_for

    datasets = image_datasets(dc, images)
    link_images(dc)  # what glue's autolinker would ask about, settled (glue/links.py)
    primary = _primary_index(datasets, band)
    for i, image in enumerate(datasets):
        table = _stars_for_image(stars, i, image, primary)
        if table is not None and is_measured(table):
            adopt_stars(dc, image, table)
        elif table is not None:
            merge_stars(dc, image, table)
        elif i == primary or measure_all:
            detect_stars(dc, image)
    first = datasets[primary]
    catalog = catalog_dataset(dc, catalog_table, [first] + [d for d in datasets if d is not first])
    return datasets, first, catalog, stars_for(dc, first)
