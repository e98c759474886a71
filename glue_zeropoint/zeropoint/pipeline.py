"""The whole measurement of one image: stars -> matches -> zero point -> sky brightness.

:func:`measure_image` is a plain function used by the command line, the demo and the Glue
layer. It checks the inputs first and stops with a one-line reason (an
:class:`~glue_zeropoint.exceptions.InputError`, ``PhotometryError``, ``CatalogError`` or
``FitError``) for: no exposure time, no WCS, no stars found, every star saturated, a catalog
without the band, no catalog star on the image, no match.
"""

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..exceptions import CatalogError, InputError, PhotometryError
from ..photometry import FLAG_SATURATED, find_stars, measure_stars, prepare_image
from ..photometry.detection import estimate_background
from ..progress import report
from .fit import ZeroPoint, fit_zeropoint
from .sky import sky_surface_brightness

__all__ = ["measure_image", "Measurement"]

log = logging.getLogger(__name__)


@dataclass
class Measurement:
    """Everything :func:`measure_image` found.

    Attributes
    ----------
    stars : Table
        :func:`~glue_zeropoint.photometry.measure_stars` output.
    matches : Table
        :func:`~glue_zeropoint.catalogs.crossmatch.crossmatch` output.
    zeropoint : ZeroPoint
        With ``sky_sb`` and ``sky_sb_err`` filled.
    sky_sb, sky_sb_err : float
    notes : list of str
        Guesses and warnings worth showing to the user.
    image : ndarray or None
        The image in electrons (for the summary figure).
    """

    stars: Table
    matches: Table
    zeropoint: ZeroPoint
    sky_sb: float | None = None
    sky_sb_err: float | None = None
    notes: list = field(default_factory=list)
    image: object = field(default=None, repr=False)

    def star_table(self):
        """Every measured star with its catalog match and fit columns (``zp_y``, ``y_err``,
        ``residual``, ``used``, ``reason``, ``colour``), with ECSV-safe meta."""
        from ..io import to_jsonable

        t = self.matches.copy(copy_data=True)
        st = self.zeropoint.stars
        for name in ("y", "y_err", "residual", "used", "reason", "colour"):
            if name in st.colnames:
                t["zp_y" if name == "y" else name] = st[name]
        for name in t.colnames:
            if t[name].dtype.kind == "O":
                t[name] = np.asarray(t[name]).astype(str)
        t.meta = to_jsonable(dict(t.meta))
        return t

    def write(self, out_dir, *, plot=True, title=None, extra=None):
        """Write ``zeropoint.json``, ``stars.ecsv`` and (``plot``) ``zeropoint.png`` into
        ``out_dir`` atomically; returns the paths written. ``extra`` entries are added to the
        JSON."""
        from pathlib import Path

        from ..io import atomic_path, ensure_output_dir, write_json

        out = ensure_output_dir(Path(out_dir))
        d = self.to_dict()
        if extra:
            d.update(extra)
        paths = [write_json(out / "zeropoint.json", d)]
        table = self.star_table()
        with atomic_path(out / "stars.ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        paths.append(out / "stars.ecsv")
        if plot:
            from .plot import save_summary_png

            paths.append(save_summary_png(self, out / "zeropoint.png", image=self.image,
                                          title=title))
        return paths

    def to_dict(self):
        """The zero point's JSON dictionary (DESIGN section 4) plus photometry facts."""
        d = self.zeropoint.to_dict()
        meta = self.stars.meta
        d.update({"fwhm": meta.get("fwhm"), "aperture_radius": meta.get("aperture_radius"),
                  "annulus": [meta.get("annulus_in"), meta.get("annulus_out")],
                  "n_stars": len(self.stars),
                  "match_radius_arcsec": self.matches.meta.get("crossmatch", {}).get(
                      "radius_arcsec"),
                  "notes": list(self.notes)})
        return d


def _catalog_table(catalog, band, im, offline):
    """A normalised catalog table from a Table, a path or a spec string."""
    if isinstance(catalog, Table):
        if "ra" in catalog.colnames and any(c.startswith("mag_") for c in catalog.colnames):
            return catalog
        from ..catalogs import normalize_catalog

        return normalize_catalog(catalog)
    from ..catalogs import field_of, get_catalog

    center = radius = None
    if im.wcs is not None and getattr(im.wcs, "has_celestial", False):
        center, radius = field_of(im.wcs, im.shape)
    return get_catalog(catalog, center, radius, band=band, offline=offline)


def _in_image(catalog, wcs, shape):
    ra = np.asarray(catalog["ra"], float)
    dec = np.asarray(catalog["dec"], float)
    ok = np.isfinite(ra) & np.isfinite(dec)
    inside = np.zeros(ra.size, bool)
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, y = wcs.world_to_pixel(SkyCoord(ra[ok] * u.deg, dec[ok] * u.deg))
        ny, nx = shape
        inside[ok] = ((x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5))
    return inside


def measure_image(ccd, catalog, band, *, color=None, color_ref=None, positions=None,
                  progress=None,
                  fwhm=None, threshold=5.0, aperture_radius=None, annulus=None, gain=None,
                  read_noise=None, saturation=None, exptime=None, radius=None, exclude=None,
                  clip_sigma=3.0, floor=0.01, fit_color=None, catalog_systematic=None,
                  pixel_scale=None, offline=False, max_stars=None):
    """Measure the zero point (and sky brightness) of one image against a catalog.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        Calibrated image in electrons (or a plain image in ADU: give ``gain``), with a
        celestial WCS.
    catalog : Table, str or Path
        A normalised catalog table, a raw table (normalised here), or a spec for
        :func:`glue_zeropoint.catalogs.get_catalog` (``'vizier:II/336/apass9'``, ``'simbad'``,
        a local file path).
    band : str
        Catalog band the image is tied to.
    color : str, optional
        ``'B-V'``-style colour for the colour term.
    color_ref : float, optional
        Reference colour of the ZP (default: the stars' weighted mean colour); the sky
        brightness refers to the ZP at this colour.
    positions : Table, array or SkyCoord, optional
        Stars to measure; default: detected with :func:`~glue_zeropoint.photometry.find_stars`.
    progress : callable, optional
        ``progress(done, total, message)``; may raise ``Cancelled``.
    fwhm, threshold, aperture_radius, annulus, gain, read_noise, saturation, exptime
        Passed to the photometry.
    radius : Quantity or float (arcsec), optional
        Match radius (default measured, see :mod:`glue_zeropoint.catalogs.crossmatch`).
    exclude, clip_sigma, floor, fit_color, catalog_systematic
        Passed to :func:`~glue_zeropoint.zeropoint.fit_zeropoint`.
    pixel_scale : float, optional
        Arcsec/pixel for the sky brightness (default from the WCS).
    offline : bool
        Catalog layer: only cache and local files.
    max_stars : int, optional
        Measure at most the brightest ``max_stars`` detections.

    Returns
    -------
    Measurement

    Examples
    --------
    >>> from glue_zeropoint.simulate import simulate_image, reference_catalog
    >>> ccd, truth = simulate_image(shape=(512, 512), n_stars=150, seed=1)
    >>> cat = reference_catalog(truth['field'], style='normalised')
    >>> m = measure_image(ccd, cat, 'V')
    >>> abs(m.zeropoint.zp - truth['filter'].zp) < 0.05
    True
    """
    steps = 5
    report(progress, 0, steps, "preparing the image")
    im = prepare_image(ccd, gain=gain, read_noise=read_noise, saturation=saturation,
                       exptime=exptime)
    notes = list(im.notes)
    t = im.require_exptime()
    if im.wcs is None or not getattr(im.wcs, "has_celestial", False):
        raise InputError(f"{im.name}: no celestial WCS in the header; pass --wcs FILE (e.g. a "
                         "plate solver's solution) or solve the image first")
    frac_bad = float(im.bad.mean())
    if frac_bad > 0.5:
        notes.append(f"{im.name}: {100 * frac_bad:.0f}% of the pixels are masked or NaN")
        warnings.warn(notes[-1], stacklevel=2)
    date = im.meta.get("DATE-OBS") if im.meta is not None else None

    report(progress, 1, steps, "reading the catalog")
    cat = _catalog_table(catalog, band, im, offline)
    name = str(cat.meta.get("catalog", "catalog"))
    if f"mag_{band}" not in cat.colnames:
        bands = sorted(c[4:] for c in cat.colnames if c.startswith("mag_"))
        raise CatalogError(f"catalog {name} has no band {band!r}; it has: "
                           f"{', '.join(bands) or 'none'}")
    mags = np.asarray(cat[f"mag_{band}"], float)
    if not np.isfinite(mags).any():
        raise CatalogError(f"catalog {name}: no star has a {band} magnitude (all NaN/empty)")
    inside = _in_image(cat, im.wcs, im.shape)
    if not inside.any():
        c = im.wcs.pixel_to_world((im.shape[1] - 1) / 2, (im.shape[0] - 1) / 2)
        ra = np.asarray(cat["ra"], float)
        dec = np.asarray(cat["dec"], float)
        ok = np.isfinite(ra) & np.isfinite(dec)
        far = (SkyCoord(np.nanmedian(ra[ok]) * u.deg, np.nanmedian(dec[ok]) * u.deg)
               .separation(c).deg if ok.any() else float("nan"))
        raise CatalogError(f"none of the {len(cat)} stars of catalog {name} falls on the image "
                           f"(catalog centre {far:.3g} deg from the image centre): wrong field, "
                           "or the WCS is wrong (--wcs FILE)")

    report(progress, 2, steps, "measuring stars")
    bkg = None
    if positions is None:
        bkg = estimate_background(im.data, im.bad)
        positions = find_stars(im, fwhm=fwhm, threshold=threshold, background=bkg,
                               max_stars=max_stars)
    stars = measure_stars(im, positions, fwhm=fwhm, aperture_radius=aperture_radius,
                          annulus=annulus)
    if np.all(stars["flags"] & FLAG_SATURATED):
        raise PhotometryError(f"{im.name}: all {len(stars)} stars are saturated (level "
                              f"{im.saturation:g} e-); use a shorter exposure or fainter stars")
    stars.meta["date_obs"] = date
    stars.meta["pixel_scale"] = math.sqrt(_pixel_area(im.wcs))

    report(progress, 3, steps, "matching to the catalog")
    from ..catalogs.crossmatch import crossmatch

    matches = crossmatch(stars, cat, radius=radius, obstime=date)
    xm = matches.meta["crossmatch"]
    if xm["n_ok"] == 0:
        raise CatalogError(
            f"no star of {im.name} matches catalog {name} within {xm['radius_arcsec']:.2g} "
            f"arcsec ({len(stars)} stars, {int(inside.sum())} catalog stars on the image; "
            f"median nearest separation {xm['median_sep_arcsec']:.3g} arcsec): the WCS is "
            "probably off (--wcs FILE) or the match radius too small")
    matches.meta["catalog"] = name
    if "zp_systematic" in cat.meta and "zp_systematic" not in matches.meta:
        matches.meta["zp_systematic"] = cat.meta["zp_systematic"]

    report(progress, 4, steps, "fitting the zero point")
    zp = fit_zeropoint(matches, band, color=color, color_ref=color_ref, clip_sigma=clip_sigma, floor=floor,
                       fit_color=fit_color, exclude=exclude,
                       catalog_systematic=catalog_systematic, exptime=t, catalog=name)
    if zp.color is not None and zp.color_term is None:
        notes.append(f"colour term not fitted: {zp.color_term_reason}")
    # sky: mask the measured stars generously, plus photutils segmentation
    try:
        mask = _star_mask(im, stars)
        mu, mu_err = sky_surface_brightness(im, zp.zp, zp_err=zp.zp_err_total,
                                            pixel_scale=pixel_scale, mask_sources=mask,
                                            exptime=t)
    except PhotometryError as err:
        notes.append(str(err))
        warnings.warn(str(err), stacklevel=2)
        mu = mu_err = None
    zp.sky_sb, zp.sky_sb_err = mu, mu_err
    report(progress, 5, steps, "done")
    return Measurement(stars=stars, matches=matches, zeropoint=zp, sky_sb=mu,
                       sky_sb_err=mu_err, notes=notes, image=im.data)


def _pixel_area(wcs):
    from astropy.wcs.utils import proj_plane_pixel_area

    return float(proj_plane_pixel_area(wcs.celestial)) * 3600.0 ** 2


def _star_mask(im, stars):
    """Sources to leave out of the sky level: photutils segmentation of the image, plus a
    disk of 4 FWHM (more for bright stars) around every measured star."""
    from ..photometry import _kernels as K
    from .sky import source_mask

    fwhm = float(stars.meta["fwhm"])
    x = np.asarray(stars["x"], float)
    y = np.asarray(stars["y"], float)
    flux = np.asarray(stars["flux_aper"], float)
    sky_std = np.nanmedian(np.asarray(stars["sky_std"], float))
    # radius where a Moffat(beta 3.5) wing drops below 0.5 sigma of the sky, at least 4 FWHM
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / 3.5) - 1.0))
    peak = np.clip(flux, 0, None) * 2.5 / (math.pi * alpha ** 2)
    ratio = np.clip(peak / (0.5 * max(sky_std, 1e-9)), 1.0, None)
    r = alpha * np.sqrt(ratio ** (1.0 / 3.5) - 1.0)
    r = np.clip(np.nan_to_num(r, nan=4 * fwhm), 4 * fwhm, 30 * fwhm)
    good = np.isfinite(x) & np.isfinite(y)
    mask = K.paint_disks(im.shape[0], im.shape[1], x[good], y[good], r[good])
    return mask | source_mask(im.data, im.bad)
