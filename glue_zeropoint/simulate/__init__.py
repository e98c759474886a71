"""Realistic synthetic raw nights with known truth, for the demo, the tests and the benchmarks.

- :func:`make_field`: stars on the sky (magnitudes, colours, proper motions) with a true WCS;
- :func:`simulate_night`: a raw night on disk (bias/dark/flat/light FITS in a chosen header
  style) and its :class:`NightTruth` (gain, read noise, bias, dark, flats, expected images);
- :func:`simulate_image`: a calibrated-like image in electrons, fast, for many-seed tests;
- :func:`reference_catalog`: the field's catalog with realistic errors, VizieR-style columns.

Nothing here imports Qt or glue.
"""

from .camera import Camera, DetectorMaps, make_detector_maps
from .catalog import catalog_errors, reference_catalog
from .field import FilterTruth, StarField, make_field, make_wcs, moffat_alpha, render_stars
from .image import simulate_image
from .night import DEFAULT_FILTERS, FrameTruth, NightTruth, simulate_night

__all__ = ["Camera", "DetectorMaps", "make_detector_maps", "catalog_errors",
           "reference_catalog", "FilterTruth", "StarField", "make_field", "make_wcs",
           "moffat_alpha", "render_stars", "simulate_image", "DEFAULT_FILTERS", "FrameTruth",
           "NightTruth", "simulate_night"]
