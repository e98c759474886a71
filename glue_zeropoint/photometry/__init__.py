"""Photometry: detection, centroids, apertures with a local sky, CCD-equation errors, flags and
the aperture correction (docs/architecture.md sections 2 and 5).

Public API
----------
- :func:`find_stars`, :func:`measure_fwhm`: detection (photutils) and the stars' FWHM;
- :func:`measure_psf`, :class:`PSF`: the frame's PSF (width, shape, empirical curve of growth);
- :func:`measure_stars`: the measurement of given or detected positions (compiled hot path),
  its numbers and switches in :class:`ApertureSettings`;
- :func:`aperture_fluxes`: the fast fixed-position core (photutils-equivalent numbers);
- strategies :class:`AnnulusSky`, :class:`CurveOfGrowth`; result :class:`ApertureCorrection`;
- flag constants ``FLAG_*`` and :func:`flag_text`;
- :func:`prepare_image`: an input image in electrons with its variance and bad pixels.
"""

from .aperture import (
                       MEDIAN_SKY_K,
                       AnnulusSky,
                       ApertureCorrection,
                       CurveOfGrowth,
                       aperture_fluxes,
                       concentration,
                       default_radii,
                       envelope_correction,
                       measure_stars,
                       phase_safe_radius,
)
from .detection import Background, estimate_background, find_stars, measure_fwhm
from .flags import (
                       EXCLUDE_FROM_FIT,
                       FLAG_BAD_SKY,
                       FLAG_CENTROID,
                       FLAG_CROWDED,
                       FLAG_EDGE,
                       FLAG_EXTENDED,
                       FLAG_MASKED,
                       FLAG_NAMES,
                       FLAG_NEGATIVE,
                       FLAG_NONLINEAR,
                       FLAG_SATURATED,
                       flag_text,
                       flag_texts,
)
from .image import PreparedImage, header_value, prepare_image
from .psf import PSF, UNDERSAMPLED_FWHM, measure_psf
from .settings import ApertureSettings

__all__ = ["find_stars", "measure_fwhm", "measure_psf", "PSF", "UNDERSAMPLED_FWHM",
           "phase_safe_radius", "envelope_correction", "measure_stars", "ApertureSettings", "aperture_fluxes", "default_radii",
           "AnnulusSky", "CurveOfGrowth", "ApertureCorrection", "MEDIAN_SKY_K",
           "Background", "estimate_background", "PreparedImage", "prepare_image",
           "header_value", "flag_text", "flag_texts", "FLAG_NAMES", "EXCLUDE_FROM_FIT",
           "FLAG_SATURATED", "FLAG_NONLINEAR", "FLAG_EDGE", "FLAG_CROWDED", "FLAG_MASKED",
           "FLAG_BAD_SKY", "FLAG_NEGATIVE", "FLAG_CENTROID", "FLAG_EXTENDED", "concentration"]
