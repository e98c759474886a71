"""Settings of :func:`~glue_zeropoint.photometry.measure_stars`, in one serialisable object.

The strategies (``psf``, ``sky``, ``aperture_correction``, ``mask_positions``) stay
arguments of their own; the numbers and switches live here, so a caller passes one object
(or the same names as keywords) instead of a dozen parameters.

Examples
--------
>>> s = ApertureSettings.from_keywords(fwhm=3.0, recenter=False)
>>> s.fwhm, s.recenter, s.nonlinear
(3.0, False, 0.85)
>>> ApertureSettings.from_dict(s.to_dict()) == s
True
"""

from dataclasses import dataclass

from .._settings import Settings
from ..exceptions import InputError

__all__ = ["ApertureSettings"]


@dataclass
class ApertureSettings(Settings):
    """What :func:`~glue_zeropoint.photometry.measure_stars` may be told instead of measuring
    or reading from the header (None: measured, or from the header).

    Attributes
    ----------
    fwhm : float, optional
        Pixels (default: the PSF's, else measured).
    aperture_radius : float, optional
        Pixels (default: chosen from the curve of growth).
    annulus : (float, float), optional
        Sky annulus radii in pixels (default ``(3, 5) * fwhm``).
    recenter : bool
        Refine the positions with Gaussian-windowed centroids.
    gain, read_noise, saturation, exptime : float, optional
        Override the header (``saturation`` in the input's units).
    nonlinear : float
        Fraction of saturation above which a peak is flagged ``nonlinear``.
    crowding_limit : float
        Flag ``crowded`` when neighbours add more than this fraction of the star's flux.
    """

    fwhm: float | None = None
    aperture_radius: float | None = None
    annulus: tuple | None = None
    recenter: bool = True
    gain: float | None = None
    read_noise: float | None = None
    saturation: float | None = None
    exptime: float | None = None
    nonlinear: float = 0.85
    crowding_limit: float = 0.01

    def __post_init__(self):
        if not 0 < float(self.nonlinear) <= 1:
            raise InputError(f"nonlinear must be in (0, 1], got {self.nonlinear!r}")
        if not float(self.crowding_limit) > 0:
            raise InputError(f"crowding_limit must be > 0, got {self.crowding_limit!r}")
