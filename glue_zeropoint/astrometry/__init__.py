"""Astrometry: a WCS good to a fraction of a pixel for every frame.

- :func:`wcs_from_header`: the WCS of a header, a FITS image or a plate solver's solution file
  (checked to be celestial and to fit the image size);
- :func:`rough_pointing`: approximate centre and pixel scale from header keywords;
- :func:`wcs_quality`: rms of detected stars matched to a catalog through a WCS;
- :func:`solve`: blind-ish plate solving against a catalog (asterism match, significance test,
  TAN or TAN-SIP fit refined with all stars);
- :func:`fit_wcs_from_pairs`, :func:`refine_wcs`: fit from a few matched pairs, then refine
  with every star (the Glue "match to sky" tool);
- :func:`write_wcs`: a header-only FITS file with the WCS, written atomically;
  :func:`update_fits_wcs`: replace the WCS of an existing FITS file (e.g. a calibrated product).

Nothing here imports Qt or glue.
"""

from .detect import detect_sources
from .fit import TanSipFit, fit_tan_sip, fit_wcs_from_pairs, refine_wcs
from .header import rough_pointing, update_fits_wcs, wcs_from_header, write_wcs
from .quality import WCSQuality, wcs_quality
from .solve import Solution, SolveSettings, solve

__all__ = ["wcs_from_header", "rough_pointing", "write_wcs", "wcs_quality", "WCSQuality",
           "solve", "Solution", "SolveSettings", "fit_wcs_from_pairs", "refine_wcs", "fit_tan_sip", "TanSipFit",
           "detect_sources", "update_fits_wcs"]
