"""Zero point: the fit (weighted, clipped, intrinsic scatter, colour term), the result object,
the sky surface brightness, and the whole-image pipeline (docs/architecture.md sections 4 and 5).

Public API
----------
- :func:`fit_zeropoint` (crossmatched stars) and :func:`fit_zeropoint_arrays` (plain arrays, fast,
  for the Glue viewer), returning :class:`ZeroPoint` / :class:`ArrayFit`;
- :func:`sky_surface_brightness`, :func:`sky_level`;
- :func:`measure_image` -> :class:`Measurement`: stars -> matches -> zero point -> sky;
- :class:`MeasureSettings` (and its groups :class:`FitSettings`, :class:`PhotometrySettings`,
  :class:`ImageSettings`, :class:`WCSSettings`): the settings, serialisable, shared by the
  command line, the Glue panel and saved sessions.
"""

from .fit import (
                  JSON_KEYS,
                  MIN_COLOR_RANGE,
                  MIN_STARS,
                  MIN_STARS_COLOR,
                  ArrayFit,
                  ZeroPoint,
                  fit_zeropoint,
                  fit_zeropoint_arrays,
                  parse_color,
)
from .pipeline import Measurement, measure_image
from .settings import (
    FitSettings,
    ImageSettings,
    MeasureSettings,
    PhotometrySettings,
    WCSSettings,
)
from .sky import pixel_area_arcsec2, sky_level, sky_surface_brightness, source_mask

__all__ = ["fit_zeropoint", "fit_zeropoint_arrays", "ZeroPoint", "ArrayFit", "parse_color",
           "JSON_KEYS", "MIN_STARS", "MIN_STARS_COLOR", "MIN_COLOR_RANGE",
           "sky_surface_brightness", "sky_level", "source_mask", "pixel_area_arcsec2",
           "measure_image", "Measurement", "MeasureSettings", "FitSettings", "ImageSettings",
           "PhotometrySettings", "WCSSettings"]
