"""The settings of a night (:func:`~glue_zeropoint.night.run.measure_night`), one object.

The command line (``glue-zeropoint night``), the Glue action and the archive build the same
:class:`NightSettings`; like the other settings (:mod:`glue_zeropoint.zeropoint.settings`) it
round-trips through plain JSON types.

Examples
--------
>>> s = NightSettings.from_keywords(site="46.87,-96.45,311", gain=1.5)
>>> s.site, s.gain, s.calibrate
('46.87,-96.45,311', 1.5, True)
>>> NightSettings.from_dict(s.to_dict()) == s
True
"""

from dataclasses import dataclass

from .._settings import Settings
from ..exceptions import InputError

__all__ = ["NightSettings"]


@dataclass
class NightSettings(Settings):
    """What a user sets for a night; None means "from the headers" or "the default".

    Attributes
    ----------
    site : str or EarthLocation, optional
        ``"lat,lon[,height]"``; overrides the headers.
    band_map : dict, optional
        FILTER value -> catalog band (default: the same name).
    colours : dict, optional
        Band -> colour of its colour term (default
        :data:`~glue_zeropoint.night.run_constants.DEFAULT_COLOURS`).
    calibrate : bool
        False: measure the raw lights as they are (no sky brightness then).
    gain : float, optional
        e-/ADU where the headers give none.
    read_noise : float, optional
        Read noise in electrons where the headers give none and the night has too few
        biases and flats to measure it (calibration only).
    offline : bool
        Catalogs only from the cache and local files.
    max_stars : int
        At most this many stars measured per frame (the brightest).
    aperture_radius : float, optional
        One aperture radius (pixels) for every frame of the night. None: each frame's own,
        from its curve of growth; the night then compares frames through each frame's own
        aperture correction, whose error (~0.02 mag on a real undersampled time series)
        adds to the frame-to-frame scatter. With one radius the night compares aperture
        magnitudes under the band's median correction.
    cfa : {'G', 'R', 'B', 'none'}
        The colour channel measured of a colour camera's lights (a Bayer pattern in their
        headers; :mod:`glue_zeropoint.calibration.cfa`): each 2x2 cell one pixel. 'none'
        measures the mosaic as one grey image. Monochrome frames are not affected.
    """

    site: object = None
    band_map: dict | None = None
    colours: dict | None = None
    calibrate: bool = True
    gain: float | None = None
    read_noise: float | None = None
    offline: bool = False
    max_stars: int = 300
    aperture_radius: float | None = None
    cfa: str = "G"

    def __post_init__(self):
        from ..calibration.night import _cfa_choice

        self.cfa = _cfa_choice(self.cfa)
        if self.aperture_radius is not None and not float(self.aperture_radius) > 0:
            raise InputError(f"aperture radius {self.aperture_radius}: give a radius in "
                             "pixels > 0 (or none: each frame's own)")
        if self.read_noise is not None and not float(self.read_noise) >= 0:
            raise InputError(f"read noise {self.read_noise}: give electrons >= 0")
        if not int(self.max_stars) >= 1:
            raise InputError(f"max_stars {self.max_stars}: give 1 or more")
