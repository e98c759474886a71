"""Settings of a measurement, grouped in small serialisable objects.

The command line, the Glue panel and a saved session use the same objects: each is a
dataclass with :meth:`~Settings.to_dict` (plain JSON types) and :meth:`~Settings.from_dict`
(unknown keys are an :class:`~glue_zeropoint.exceptions.InputError` naming them).

- :class:`ImageSettings`: what the header may not say (gain, read noise, saturation, exposure).
- :class:`PhotometrySettings`: detection and apertures.
- :class:`WCSSettings`: whether and how to plate-solve.
- :class:`FitSettings`: the zero-point fit (:func:`~glue_zeropoint.zeropoint.fit_zeropoint`).
- :class:`MeasureSettings`: all of the above plus the match radius, the pixel scale of the sky
  brightness and the offline switch (:func:`~glue_zeropoint.zeropoint.measure_image`).

Examples
--------
>>> s = MeasureSettings.from_keywords(fwhm=3.5, clip_sigma=2.5)
>>> s.photometry.fwhm, s.fit.clip_sigma
(3.5, 2.5)
>>> MeasureSettings.from_dict(s.to_dict()) == s
True
"""

from dataclasses import dataclass, field, fields

from .._settings import _GROUPS, Settings
from ..exceptions import InputError
from .reasons import MAX_CAT_ERR

__all__ = ["Settings", "ImageSettings", "PhotometrySettings", "WCSSettings", "FitSettings",
           "MeasureSettings"]


@dataclass
class ImageSettings(Settings):
    """Facts about the image the header may lack; None means "from the header".

    Attributes
    ----------
    gain : float, optional
        e-/ADU (a plain image in ADU needs it).
    read_noise : float, optional
        e-.
    saturation : float, optional
        Saturation level in the image's units.
    exptime : float, optional
        Seconds.
    """

    gain: float | None = None
    read_noise: float | None = None
    saturation: float | None = None
    exptime: float | None = None


@dataclass
class PhotometrySettings(Settings):
    """Detection and apertures (:func:`~glue_zeropoint.photometry.find_stars`,
    :func:`~glue_zeropoint.photometry.measure_stars`); None means "measured from the frame".

    Attributes
    ----------
    fwhm : float, optional
        Pixels.
    threshold : float
        Detection threshold in sigma of the background.
    aperture_radius : float, optional
        Pixels.
    annulus : (float, float), optional
        Sky annulus radii in pixels.
    max_stars : int, optional
        Measure at most the brightest ``max_stars`` detections.
    """

    fwhm: float | None = None
    threshold: float = 5.0
    aperture_radius: float | None = None
    annulus: tuple | None = None
    max_stars: int | None = None


SOLVE_MODES = ("auto", "always", "never")


@dataclass
class WCSSettings(Settings):
    """Where the WCS comes from.

    Attributes
    ----------
    solve_wcs : {'auto', 'always', 'never'} or bool
        See :func:`~glue_zeropoint.zeropoint.measure_image`.
    center : SkyCoord or (ra, dec) degrees, optional
        Rough centre for solving.
    scale : float, optional
        Rough pixel scale (arcsec/pixel) for solving.
    wcs_source : str, optional
        Where the image's WCS came from, for the report (default ``'header'``).
    """

    solve_wcs: object = "auto"
    center: object = None
    scale: float | None = None
    wcs_source: str | None = None

    @property
    def mode(self):
        """``solve_wcs`` as one of :data:`SOLVE_MODES` (True -> 'always', False/None ->
        'never'); InputError for anything else."""
        if self.solve_wcs is True:
            return "always"
        if self.solve_wcs is False or self.solve_wcs is None:
            return "never"
        mode = str(self.solve_wcs).strip().lower()
        if mode not in SOLVE_MODES:
            raise InputError(f"solve_wcs must be one of {', '.join(SOLVE_MODES)} (or "
                             f"True/False); got {self.solve_wcs!r}")
        return mode


@dataclass
class FitSettings(Settings):
    """The zero-point fit (see :mod:`glue_zeropoint.zeropoint.fit`).

    Attributes
    ----------
    color_ref : float, optional
        Reference colour (default: the stars' weighted mean colour).
    clip_sigma : float or None
        Clip at this many MAD-scaled sigma; None or inf: no clipping.
    floor : float
        Minimum per-star error (mag).
    maxiter : int
        Fit-and-clip rounds at most.
    fit_color : bool, optional
        None: fit a colour term when a colour is given and the data support it.
    catalog_systematic : float, optional
        Catalog ZP systematic (mag) in ``zp_err_total``; default from the catalog's meta.
    max_cat_err : float or None
        Leave out stars whose catalog error is larger (mag).
    check_neighbours : bool
        Leave out stars with measured neighbours in the aperture or annulus.
    """

    color_ref: float | None = None
    clip_sigma: float | None = 3.0
    floor: float = 0.01
    maxiter: int = 10
    fit_color: bool | None = None
    catalog_systematic: float | None = None
    max_cat_err: float | None = MAX_CAT_ERR
    check_neighbours: bool = True


@dataclass
class MeasureSettings(Settings):
    """Every setting of :func:`~glue_zeropoint.zeropoint.measure_image`.

    Attributes
    ----------
    image : ImageSettings
    photometry : PhotometrySettings
    wcs : WCSSettings
    fit : FitSettings
    radius : float or Quantity, optional
        Match radius (arcsec when a float; default measured).
    pixel_scale : float, optional
        Arcsec/pixel for the sky brightness (default from the WCS).
    offline : bool
        Catalogs only from the cache and local files.
    """

    image: ImageSettings = field(default_factory=ImageSettings)
    photometry: PhotometrySettings = field(default_factory=PhotometrySettings)
    wcs: WCSSettings = field(default_factory=WCSSettings)
    fit: FitSettings = field(default_factory=FitSettings)
    radius: object = None
    pixel_scale: float | None = None
    offline: bool = False

    @classmethod
    def keywords(cls):
        """The flat keyword names :meth:`from_keywords` takes -> (group or None, field)."""
        out = {}
        for f in fields(cls):
            group = _GROUPS.get((cls.__name__, f.name))
            if group is None:
                out[f.name] = (None, f.name)
            else:
                out.update({g.name: (f.name, g.name) for g in fields(group)})
        return out

    @classmethod
    def from_keywords(cls, settings=None, **keywords):
        """``settings`` (default: the defaults) with flat keywords applied, e.g.
        ``fwhm=3.5`` -> ``photometry.fwhm``; a keyword that is no setting is a TypeError
        (as an unknown keyword argument would be)."""
        settings = cls() if settings is None else settings
        known = cls.keywords()
        unknown = sorted(set(keywords) - set(known))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        top, groups = {}, {}
        for name, value in keywords.items():
            group, attr = known[name]
            if group is None:
                top[attr] = value
            else:
                groups.setdefault(group, {})[attr] = value
        for group, changes in groups.items():
            top[group] = getattr(settings, group).replace(**changes)
        return settings.replace(**top) if top else settings


def fit_settings(settings=None, **keywords):
    """``settings`` (a FitSettings, default the defaults) with FitSettings keywords applied;
    an unknown keyword is a TypeError."""
    return FitSettings.from_keywords(settings, **keywords)


#: (settings class, field) -> the Settings class of a nested group
_GROUPS.update({("MeasureSettings", "image"): ImageSettings,
           ("MeasureSettings", "photometry"): PhotometrySettings,
           ("MeasureSettings", "wcs"): WCSSettings,
           ("MeasureSettings", "fit"): FitSettings})
