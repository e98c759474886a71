"""Realistic synthetic raw nights with known truth, for the demo, the tests and the benchmarks.

- :func:`make_field`: stars on the sky (magnitudes, colours, proper motions) with a true WCS;
- :func:`simulate_night`: a raw night on disk (bias/dark/flat/light FITS in a chosen header
  style) and its :class:`NightTruth` (gain, read noise, bias, dark, flats, expected images);
- :func:`simulate_image`: a calibrated-like image in electrons, fast, for many-seed tests;
- :func:`simulate_raw_image`: one raw frame in ADU (pedestal, unknown gain, hot pixels,
  cosmic rays, saturation at the ADC ceiling);
- :func:`reference_catalog`: the field's catalog with realistic errors, VizieR-style columns,
  optionally variables, missing, spurious and merged (blended) entries;
- :mod:`.psf`: PSF families (Gaussian, Moffat, elliptical, trailed, aureole) drawn
  pixel-integrated with exactly known flux; ``psf=`` of :func:`make_field` and
  :func:`simulate_image` takes one (default: the legacy Moffat beta 3.5 renderer, kept so
  that the demo and the tests written before the families get identical pixels; the
  benchmarks and the new tests pass ``psf=`` explicitly).

Nothing here imports Qt or glue, nor the measurement (photometry, zeropoint): the simulator
must not share its answers.

Nothing here imports Qt or glue.
"""

from .camera import Camera, DetectorMaps, make_detector_maps
from .catalog import CatalogSimSettings, catalog_errors, reference_catalog
from .field import (
                    FieldSettings,
                    FilterTruth,
                    SkyModel,
                    StarField,
                    make_field,
                    make_wcs,
                    moffat_alpha,
                    render_stars,
)
from .image import RawCameraSettings, simulate_image, simulate_raw_image
from .night import DEFAULT_FILTERS, FrameTruth, NightPlan, NightTruth, simulate_night
from .psf import PSF, Aureole, Gaussian, Moffat, Trailed, make_psf, render_psf

__all__ = ["Camera", "DetectorMaps", "make_detector_maps", "catalog_errors",
           "reference_catalog", "FilterTruth", "StarField", "make_field", "make_wcs",
           "moffat_alpha", "render_stars", "simulate_image", "DEFAULT_FILTERS", "FrameTruth",
           "NightTruth", "simulate_night", "SkyModel", "simulate_raw_image", "PSF", "Gaussian",
           "Moffat", "Trailed", "Aureole", "make_psf", "render_psf", "FieldSettings",
           "CatalogSimSettings", "RawCameraSettings", "NightPlan"]
