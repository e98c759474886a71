"""The whole measurement of one image: stars -> matches -> zero point -> sky brightness.

:func:`measure_image` is a plain function used by the command line, the demo and the Glue
layer. It checks the inputs first and stops with a one-line reason (an
:class:`~glue_zeropoint.exceptions.InputError`, ``PhotometryError``, ``CatalogError``,
``AstrometryError`` or ``FitError``) for: no exposure time, no WCS and no pointing to solve
one from, no astrometric solution, no stars found, every star saturated, a catalog without the
band, no catalog star on the image, no match.

The WCS (``solve_wcs``): the WCS's quality is always measured against the catalog (rms of the
matched stars in arcsec and pixels). With ``'auto'``, a header WCS with too few matches
(:data:`MIN_WCS_MATCHES`, :data:`WCS_MIN_MATCH_FRACTION`) or an rms above
:data:`WCS_OFF_RMS_PIX` pixels (a mount's rough WCS) is used as the starting point of a
plate solve and the image is measured again with the solution, which the notes say; a WCS the
user gave (``--wcs``) or kept (``'never'``) is only reported as off (note and warning), since
the zero point may then rest on chance matches. An image without one is plate-solved first (:func:`glue_zeropoint.astrometry.solve`)
from a rough centre and pixel scale (given, or from the header: RA/DEC, OBJCTRA/OBJCTDEC,
PIXSCALE, FOCALLEN with the pixel size; see :func:`~glue_zeropoint.astrometry.rough_pointing`),
against the catalog queried around that centre (or the local catalog table). The result says
where the WCS came from in ``Measurement.astrometry`` (``wcs_source``, ``wcs_rms_arcsec``...).

The stars are measured twice: after the first match, the catalog stars that no measured star
matched (blended into a brighter one, or below the detection threshold) are given to
:func:`~glue_zeropoint.photometry.measure_stars` as neighbours with fluxes from a rough zero
point, so their light flags the stars it contaminates and keeps them out of the aperture
correction (:func:`_catalog_neighbours`; without it the zero point came out ~4 mmag high in
the injection-recovery runs).
"""

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..exceptions import (
    AstrometryError,
    AstrometryWarning,
    CatalogError,
    InputError,
    PhotometryError,
    ZeropointWarning,
)
from ..obstime import observation_time
from ..photometry import FLAG_SATURATED, find_stars, measure_stars, prepare_image
from ..photometry.detection import estimate_background
from ..progress import report
from ..stats import pixel_scale_arcsec
from .fit import ZeroPoint, fit_zeropoint
from .settings import SOLVE_MODES, MeasureSettings  # noqa: F401 (SOLVE_MODES: API)
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
    astrometry : dict
        Where the WCS came from and how good it is: ``wcs_source`` (``'header'``, ``'file'``,
        ``'solved'`` or what the caller said), ``wcs_rms_arcsec``, ``wcs_rms_pix``,
        ``wcs_n_matched`` (stars matched to the catalog through the WCS; the rms is over the
        ``wcs_n_used`` kept by a 3-sigma clip), ``wcs_pixel_scale`` (arcsec/pixel) and, for a
        solved WCS, ``wcs_solution`` (centre, scale, rotation, false-alarm probability...).
    solution : `~glue_zeropoint.astrometry.Solution` or None
        The plate solution when the WCS was solved here.
    wcs : `~astropy.wcs.WCS` or None
        The WCS the stars were measured with.
    """

    stars: Table
    matches: Table
    zeropoint: ZeroPoint
    sky_sb: float | None = None
    sky_sb_err: float | None = None
    notes: list = field(default_factory=list)
    image: object = field(default=None, repr=False)
    astrometry: dict = field(default_factory=dict)
    solution: object = field(default=None, repr=False)
    wcs: object = field(default=None, repr=False)

    def star_table(self):
        """Every measured star with its catalog match and fit columns (``zp_y``, ``y_err``,
        ``residual``, ``used``, ``reason``, ``colour``), with ECSV-safe meta.

        ``reason`` is ``''`` for a star the fit used, else the codes of
        :data:`~glue_zeropoint.zeropoint.reasons.REASONS` that apply, comma-separated; the
        meta's ``reasons`` says what each code means and ``rejected`` counts them."""
        from ..io import to_jsonable
        from .reasons import REASONS

        t = self.matches.copy(copy_data=True)
        st = self.zeropoint.stars
        for name in ("y", "y_err", "residual", "used", "reason", "colour"):
            if name in st.colnames:
                t["zp_y" if name == "y" else name] = st[name]
        for name in t.colnames:
            if t[name].dtype.kind == "O":
                t[name] = np.asarray(t[name]).astype(str)
        t.meta = to_jsonable(dict(t.meta))
        t.meta["rejected"] = dict(self.zeropoint.rejected or {})
        t.meta["reasons"] = {code: f"{group}: {text}" for code, (group, text) in REASONS.items()}
        return t

    def write(self, out_dir, *, plot=True, title=None, extra=None):
        """Write ``zeropoint.json``, ``stars.ecsv``, ``stars.reg`` (ds9 apertures, see
        :meth:`write_regions`) and (``plot``) ``zeropoint.png`` into
        ``out_dir`` atomically; returns the paths written. ``extra`` entries are added to the
        JSON."""
        from pathlib import Path

        from ..io import atomic_path, ensure_output_dir, write_json

        out = ensure_output_dir(Path(out_dir))
        d = self.to_dict()
        if extra:
            d.update(extra)
        paths = [write_json(out / "zeropoint.json", d)]
        from .table_units import with_star_units

        table = with_star_units(self.star_table())  # units on the measured columns
        with atomic_path(out / "stars.ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        paths.append(out / "stars.ecsv")
        paths.append(self.write_regions(out / "stars.reg"))
        if plot:
            from .plot import save_summary_png

            paths.append(save_summary_png(self, out / "zeropoint.png", image=self.image,
                                          title=title))
        return paths

    def write_regions(self, path):
        """Every measured star's aperture as a ds9 circle, coloured by why the fit left it
        out (:data:`~glue_zeropoint.zeropoint.reasons.REGION_COLOURS`: green used, red
        clipped, yellow excluded by the user, white match, magenta photometry, cyan catalog),
        labelled ``<star_id> <reasons>`` and tagged ``rejected`` plus each reason code (ds9
        can show or hide regions by tag); sky coordinates when the image has a WCS. The file
        starts with comment lines that give the colour key and the counts."""
        from ..photometry.regions_io import write_apertures
        from .reasons import REASONS, REGION_COLOURS, reason_groups, split_reasons

        zs = self.zeropoint.stars
        ids = np.asarray(self.stars["star_id"])
        by_id = dict(zip(np.asarray(zs["star_id"]).tolist(),
                         zip(np.asarray(zs["used"], bool).tolist(),
                             np.asarray(zs["reason"]).astype(str).tolist(), strict=True),
                         strict=True))
        used = np.array([by_id.get(i, (False, ""))[0] for i in ids.tolist()], bool)
        reason = np.array([by_id.get(i, (False, ""))[1] for i in ids.tolist()], dtype=object)
        unknown = ~used & (reason == "")  # a star the fit never saw (should not happen)
        reason[unknown] = "no_match"
        groups = reason_groups(reason.astype(str))
        colors = [REGION_COLOURS.get(g, "red") for g in groups]
        labels = [f"{i} {r}" if r else f"{i}" for i, r in zip(ids.tolist(), reason, strict=True)]
        tags = [split_reasons(r) for r in reason]
        comments = [f"{colour}: {group}" + (
            "" if group == "used" else " (" + ", ".join(
                c for c, (g, _) in REASONS.items() if g == group) + ")")
            for group, colour in REGION_COLOURS.items()]
        counts = self.zeropoint.rejected or {}
        comments.append(f"{int(used.sum())} used, left out: " + (
            ", ".join(f"{n} {code}" for code, n in counts.items()) or "none"))
        return write_apertures(self.stars, path, used=used, wcs=self.wcs, labels=labels,
                               colors=colors, tags=tags, comments=comments)

    def to_dict(self):
        """The zero point's JSON dictionary (docs/architecture.md section 4) plus photometry facts."""
        d = self.zeropoint.to_dict()
        meta = self.stars.meta
        psf = meta.get("psf") or {}
        d.update({"fwhm": meta.get("fwhm"), "aperture_radius": meta.get("aperture_radius"),
                  "aperture_radius_method": meta.get("aperture_radius_method"),
                  "aperture_correction_method": meta.get("aperture_correction_method"),
                  "psf": {k: psf.get(k) for k in ("fwhm", "fwhm_scatter", "fwhm_major",
                                                  "fwhm_minor", "ellipticity", "theta",
                                                  "n_stars", "undersampled", "tail_index",
                                                  "growth_stars")},
                  "error_model": meta.get("error_model"),
                  "assumptions": list(meta.get("assumptions") or []),
                  "annulus": [meta.get("annulus_in"), meta.get("annulus_out")],
                  "n_stars": len(self.stars),
                  "match_radius_arcsec": self.matches.meta.get("crossmatch", {}).get(
                      "radius_arcsec"),
                  "notes": list(self.notes)})
        d.update(self.astrometry)
        return d


def _catalog_table(catalog, band, im, offline, pointing=None):
    """A normalised catalog table from a Table, a path or a spec string.

    A query covers the image through its WCS (:func:`~glue_zeropoint.catalogs.field_of`), or,
    when the WCS is still to be solved, the cone of ``pointing`` (:class:`_Pointing`).
    """
    if isinstance(catalog, Table):
        if "ra" in catalog.colnames and any(c.startswith("mag_") for c in catalog.colnames):
            return catalog
        from ..catalogs import normalize_catalog

        return normalize_catalog(catalog)
    from ..catalogs import field_of, get_catalog

    center = radius = None
    if pointing is not None:
        center, radius = pointing.center, pointing.radius
    elif im.wcs is not None and getattr(im.wcs, "has_celestial", False):
        center, radius = field_of(im.wcs, im.shape)
    return get_catalog(catalog, center, radius, band=band, offline=offline)


# --------------------------------------------------------------------------- WCS

#: The solver looks for scales within scale * (0.8, 1.25) (astrometry.solve's default).
_SCALE_HI = 1.25

#: A WCS whose stars match the catalog with a larger rms (pixels) is reported as off.
WCS_OFF_RMS_PIX = 2.0
#: A header WCS is also taken to be off when fewer stars than this match the catalog...
MIN_WCS_MATCHES = 5
#: ... or fewer than this fraction of the stars that could (detected and in the catalog).
WCS_MIN_MATCH_FRACTION = 0.2


def _has_wcs(wcs):
    return wcs is not None and bool(getattr(wcs, "has_celestial", False))


def _header_without_wcs(meta):
    """The image header as a FITS header, without WCS keywords (stale once ``ccd.wcs`` is
    None: CCDData keeps the WCS in ``.wcs``, not in ``meta``)."""
    from astropy.io import fits

    from ..astrometry.header import strip_wcs_keywords

    if meta is None:
        return fits.Header()
    if isinstance(meta, fits.Header):
        return strip_wcs_keywords(meta)
    header = fits.Header()
    for key, value in dict(meta).items():
        try:
            header[key] = value
        except (ValueError, TypeError, KeyError):  # not representable as a FITS card
            continue
    return strip_wcs_keywords(header)


@dataclass
class _Pointing:
    """Rough centre and scale of an image to be solved, and the catalog cone for it."""

    center: SkyCoord
    scale: float | None
    radius: object  # Quantity (deg)
    hints: dict


def _pointing(im, center, scale):
    """Rough centre and pixel scale for the solver: given, else the image's (rough) WCS, else
    the header keywords (:func:`~glue_zeropoint.astrometry.rough_pointing`).

    Raises InputError when no centre is known (the one-line reason of the command line)."""
    from ..astrometry.header import as_pixel_scale, as_sky_center, rough_pointing

    center, scale = as_sky_center(center), as_pixel_scale(scale)
    hints = {}
    if center is not None:
        hints["center"] = "given"
    if scale is not None:
        hints["scale"] = "given"
    ny, nx = im.shape
    if (center is None or scale is None) and _has_wcs(im.wcs):
        if center is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c = im.wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
            if isinstance(c, SkyCoord) and np.isfinite(c.icrs.ra.deg):
                center, hints["center"] = c.icrs, "image WCS"
        if scale is None:
            scale, hints["scale"] = pixel_scale_arcsec(im.wcs), "image WCS"
    if center is None or scale is None:
        h_center, h_scale, how = rough_pointing(_header_without_wcs(im.meta))
        parts = [p for p in how.split(", ") if p]
        c_how = next((p for p in parts if "/" in p and "FOCALLEN" not in p), how)
        s_how = next((p for p in parts if p != c_how), how)
        if center is None and h_center is not None:
            center, hints["center"] = h_center, f"header {c_how}"
        if scale is None and h_scale is not None:
            scale, hints["scale"] = h_scale, f"header {s_how}"
    if center is None:
        raise InputError(
            f"{im.name}: no celestial WCS in the header and no rough pointing (RA/DEC or "
            "OBJCTRA/OBJCTDEC keywords) to solve one from; pass --center RA DEC and --scale "
            "ARCSEC_PER_PIX (center=, scale=) to solve it, or --wcs FILE with a plate "
            "solver's solution")
    if scale is not None:
        # the solver's search region: the field (at the largest scale tried) around a centre
        # that may be off by the field's size or 10 arcmin, whichever is larger
        half_diag = 0.5 * math.hypot(nx, ny) * scale * _SCALE_HI
        radius = (half_diag + max(half_diag, 600.0)) * u.arcsec
    else:
        hints["scale"] = "unknown (all scales tried)"
        radius = 1.0 * u.deg
    return _Pointing(center=center, scale=scale, radius=radius.to(u.deg), hints=hints)


def _solve_image(im, cat, band, pointing, fwhm):
    """Plate-solve the prepared image against the catalog; returns the Solution."""
    from astropy.nddata import CCDData

    from ..astrometry import solve

    header = _header_without_wcs(im.meta)
    if im.saturation is not None and np.isfinite(im.saturation):
        header["SATURATE"] = float(im.saturation)  # electrons, like the data
    image = CCDData(im.data, unit="electron", mask=im.bad, meta=header)
    sol = solve(image, cat, center=pointing.center, scale=pointing.scale, band=band,
                fwhm=fwhm, name=im.name)
    sol.hints.update(pointing.hints)  # where the "given" centre and scale came from
    return sol


def _wcs_quality(wcs, stars, cat, date, radius_arcsec, shape):
    """:func:`~glue_zeropoint.astrometry.wcs_quality` of the measured stars against the
    catalog (at the observation date), within the crossmatch radius."""
    from ..astrometry import wcs_quality
    from ..catalogs.crossmatch import propagate_proper_motion

    try:
        ra, dec = propagate_proper_motion(cat, date)
    except (ValueError, TypeError, InputError):
        ra, dec = np.asarray(cat["ra"], float), np.asarray(cat["dec"], float)
    xy = np.column_stack([np.asarray(stars["x"], float), np.asarray(stars["y"], float)])
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    radius = radius_arcsec if radius_arcsec and np.isfinite(radius_arcsec) else 2.0
    return wcs_quality(wcs, xy, Table({"ra": np.asarray(ra, float),
                                       "dec": np.asarray(dec, float)}),
                       radius=float(radius) * u.arcsec, shape=shape)


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


@dataclass
class _Run:
    """What one measurement has found so far (passed from step to step)."""

    im: object  # PreparedImage
    settings: MeasureSettings
    mode: str
    need_solve: bool
    notes: list
    exptime: float
    date: str | None = None
    pointing: object = None
    cat: Table | None = None
    name: str = "catalog"
    inside: np.ndarray | None = None
    source: str = "header"
    solution: object = None

    @property
    def retry(self):
        """A header WCS that fails its check is plate-solved (``'auto'`` only)."""
        return self.mode == "auto" and self.source == "header" and not self.need_solve


class _SolveAgain(Exception):
    """The header WCS looks off: measure again with a plate-solved WCS (``why``)."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


def _start(ccd, s):
    """Prepare the image and decide about the WCS (step 0)."""
    im = prepare_image(ccd, gain=s.image.gain, read_noise=s.image.read_noise,
                       saturation=s.image.saturation, exptime=s.image.exptime)
    notes = list(im.notes)
    t = im.require_exptime()
    mode = s.wcs.mode
    need_solve = mode == "always" or not _has_wcs(im.wcs)
    if need_solve and mode == "never":
        raise InputError(f"{im.name}: no celestial WCS in the header; pass --wcs FILE (e.g. a "
                         "plate solver's solution) or let it be plate-solved (--solve auto, "
                         "with --center/--scale when the header has no pointing)")
    run = _Run(im=im, settings=s, mode=mode, need_solve=need_solve, notes=notes, exptime=t,
               source=s.wcs.wcs_source or "header")
    center, scale = s.wcs.center, s.wcs.scale
    run.pointing = _pointing(im, center, scale) if need_solve else None
    if not need_solve and (center is not None or scale is not None):
        notes.append("the image has a WCS, so --center/--scale are not used (--solve always "
                     "solves from them)")
    frac_bad = float(im.bad.mean())
    if frac_bad > 0.5:
        notes.append(f"{im.name}: {100 * frac_bad:.0f}% of the pixels are masked or NaN")
        warnings.warn(notes[-1], ZeropointWarning, stacklevel=4)
    obstime = observation_time(im.meta, im.name)
    run.date = None if obstime is None else obstime.isot
    return run


def _read_catalog(run, catalog, band):
    """The catalog table, checked to have the band (step 1)."""
    cat = _catalog_table(catalog, band, run.im, run.settings.offline, pointing=run.pointing)
    name = str(cat.meta.get("catalog", "catalog"))
    if f"mag_{band}" not in cat.colnames:
        bands = sorted(c[4:] for c in cat.colnames if c.startswith("mag_"))
        raise CatalogError(f"catalog {name} has no band {band!r}; it has: "
                           f"{', '.join(bands) or 'none'}")
    mags = np.asarray(cat[f"mag_{band}"], float)
    if not np.isfinite(mags).any():
        raise CatalogError(f"catalog {name}: no star has a {band} magnitude (all NaN/empty)")
    run.cat, run.name = cat, name


def _solve_wcs(run, band):
    """Plate-solve the image when it needs it (step 1b)."""
    if not run.need_solve:
        return
    im = run.im
    run.solution = _solve_image(im, run.cat, band, run.pointing, run.settings.photometry.fwhm)
    im.wcs = run.solution.wcs
    run.source = "solved"
    how = "; ".join(f"{k} from {v}" for k, v in run.pointing.hints.items())
    run.notes.append(f"WCS plate-solved against the catalog ({how})")


def _require_catalog_on_image(run):
    im, cat = run.im, run.cat
    run.inside = _in_image(cat, im.wcs, im.shape)
    if run.inside.any():
        return
    c = im.wcs.pixel_to_world((im.shape[1] - 1) / 2, (im.shape[0] - 1) / 2)
    ra = np.asarray(cat["ra"], float)
    dec = np.asarray(cat["dec"], float)
    ok = np.isfinite(ra) & np.isfinite(dec)
    far = (SkyCoord(np.nanmedian(ra[ok]) * u.deg, np.nanmedian(dec[ok]) * u.deg)
           .separation(c).deg if ok.any() else float("nan"))
    raise CatalogError(f"none of the {len(cat)} stars of catalog {run.name} falls on the image "
                       f"(catalog centre {far:.3g} deg from the image centre): wrong field, "
                       "or the WCS is wrong (--wcs FILE)")


def _measure(run, positions, psf=None, neighbours=None):
    """Detect (unless ``positions`` are given) and measure the stars (step 2); returns
    (stars, positions)."""
    im, ph = run.im, run.settings.photometry
    if positions is None:
        bkg = estimate_background(im.data, im.bad)
        positions = find_stars(im, fwhm=ph.fwhm, threshold=ph.threshold, background=bkg,
                               max_stars=ph.max_stars)
        run.notes.extend(positions.meta.get("notes", []))
    if psf is None:
        stars = measure_stars(im, positions, fwhm=ph.fwhm, aperture_radius=ph.aperture_radius,
                              annulus=ph.annulus)
    else:
        stars = measure_stars(im, positions, psf=psf, aperture_radius=ph.aperture_radius,
                              annulus=ph.annulus, mask_positions=neighbours)
    stars.meta["date_obs"] = run.date
    stars.meta["pixel_scale"] = pixel_scale_arcsec(im.wcs)
    return stars, positions


def _require_unsaturated(im, stars):
    if np.all(stars["flags"] & FLAG_SATURATED):
        raise PhotometryError(f"{im.name}: all {len(stars)} stars are saturated (level "
                              f"{im.saturation:g} e-); use a shorter exposure or fainter stars")


def _match(run, stars, positions, band):
    """Crossmatch; then measure again with the unmatched catalog stars as neighbours (their
    light flags a star crowded and keeps it out of the aperture correction). Step 3; returns
    (stars, matches)."""
    from ..catalogs.crossmatch import add_fit_meta, crossmatch

    im, cat = run.im, run.cat
    matches = crossmatch(stars, cat, radius=run.settings.radius, obstime=run.date)
    xm = matches.meta["crossmatch"]
    if xm["n_ok"] == 0:
        if run.retry:
            raise _SolveAgain(f"no star matched the catalog within "
                              f"{xm['radius_arcsec']:.2g} arcsec")
        raise CatalogError(
            f"no star of {im.name} matches catalog {run.name} within "
            f"{xm['radius_arcsec']:.2g} arcsec ({len(stars)} stars, {int(run.inside.sum())} "
            f"catalog stars on the image; median nearest separation "
            f"{xm['median_sep_arcsec']:.3g} arcsec): the WCS is probably off (--wcs FILE, or "
            "--solve always to plate-solve the image) or the match radius too small")
    neighbours = _catalog_neighbours(im, matches, cat, band, run.date, run.exptime)
    if neighbours is not None:
        stars, _ = _measure(run, positions, psf=stars.meta["psf"], neighbours=neighbours)
        matches = crossmatch(stars, cat, radius=xm["radius_arcsec"], obstime=run.date)
        matches.meta["crossmatch"]["radius_method"] = xm.get("radius_method")
    add_fit_meta(matches, cat, name=run.name)
    return stars, matches


def _check_wcs(run, stars, matches):
    """The WCS's quality against the catalog (step 3b): (the ``astrometry`` dict, the
    quality, why a header WCS looks off in ``'auto'`` mode, else None)."""
    im = run.im
    xm = matches.meta["crossmatch"]
    quality = _wcs_quality(im.wcs, stars, run.cat, run.date, xm["radius_arcsec"], im.shape)
    astrometry = {"wcs_source": run.source, "wcs_rms_arcsec": quality.rms_arcsec,
                  "wcs_rms_pix": quality.rms_pix, "wcs_n_matched": quality.n_matched,
                  "wcs_n_used": quality.n_used, "wcs_pixel_scale": quality.pixel_scale}
    expected = min(len(stars), int(run.inside.sum()))
    too_few = quality.n_matched < max(MIN_WCS_MATCHES, WCS_MIN_MATCH_FRACTION * expected)
    why = None
    if run.retry and (too_few or not quality.rms_pix <= WCS_OFF_RMS_PIX):
        why = (f"{quality.n_matched} of about {expected} stars matched, rms "
               f"{quality.rms_pix:.1f} pixels")
    return astrometry, quality, why


def _report_wcs(run, quality, astrometry):
    """Say when the WCS looks off; add the plate solution to ``astrometry``."""
    if not quality.rms_pix <= WCS_OFF_RMS_PIX:
        run.notes.append(
            f"the {run.source} WCS looks off: {quality.n_matched} stars match the catalog "
            f"({run.name}) with rms {quality.rms_arcsec:.2f} arcsec = {quality.rms_pix:.1f} "
            "pixels; the zero point may rest on chance matches: plate-solve the image (--solve "
            "always) or give a better WCS (--wcs FILE)")
        warnings.warn(run.notes[-1], AstrometryWarning, stacklevel=4)
    if run.solution is not None:
        astrometry["wcs_solution"] = {k: v for k, v in run.solution.to_dict().items()
                                      if k != "quality"}


def _fit(run, matches, band, color, exclude):
    """The zero-point fit (step 4)."""
    zp = fit_zeropoint(matches, band, color=color, exclude=exclude, exptime=run.exptime,
                       catalog=run.name, settings=run.settings.fit)
    if zp.color is not None and zp.color_term is None:
        run.notes.append(f"colour term not fitted: {zp.color_term_reason}")
    if zp.stars.meta.get("relaxed"):
        run.notes.append(f"too few stars pass every check: "
                         f"{', '.join(zp.stars.meta['relaxed'])} not applied (see stars.ecsv)")
    return zp


def _sky(run, stars, zp):
    """The sky surface brightness (step 5): (mu, mu_err), None for a raw frame or when it
    cannot be measured (the notes say why)."""
    im = run.im
    if im.calibrated is False:
        # the sky level of a raw frame still holds the bias pedestal: no number beats a
        # wrong one
        run.notes.append(f"{im.name}: no sky surface brightness: the frame is raw (its sky "
                         "level includes the bias pedestal); calibrate it first "
                         "(glue-zeropoint calibrate) or subtract the bias")
        return None, None
    try:
        mask = _star_mask(im, stars)  # the measured stars generously, plus segmentation
        return sky_surface_brightness(im, zp.zp, zp_err=zp.zp_err_total,
                                      pixel_scale=run.settings.pixel_scale,
                                      mask_sources=mask, exptime=run.exptime)
    except PhotometryError as err:
        run.notes.append(str(err))
        warnings.warn(str(err), ZeropointWarning, stacklevel=4)
        return None, None


def _measure_once(ccd, catalog, band, color, positions, exclude, progress, s):
    """:func:`measure_image` with the settings resolved."""
    steps = 5
    again = (ccd, catalog, band, color, positions, exclude, progress, s)
    report(progress, 0, steps, "preparing the image")
    run = _start(ccd, s)
    report(progress, 1, steps, "reading the catalog")
    _read_catalog(run, catalog, band)
    if run.need_solve:
        report(progress, 1, steps, "solving the WCS")
    _solve_wcs(run, band)
    _require_catalog_on_image(run)
    report(progress, 2, steps, "measuring stars")
    stars, positions = _measure(run, positions)
    _require_unsaturated(run.im, stars)
    report(progress, 3, steps, "matching to the catalog")
    try:
        stars, matches = _match(run, stars, positions, band)
    except _SolveAgain as off:
        return _measure_with_solved_wcs(again, off.why)
    astrometry, quality, why = _check_wcs(run, stars, matches)
    if why is not None:
        try:
            return _measure_with_solved_wcs(again, why)
        except AstrometryError as err:
            run.notes.append(f"plate-solving from the header WCS failed too: {err}")
    _report_wcs(run, quality, astrometry)
    report(progress, 4, steps, "fitting the zero point")
    zp = _fit(run, matches, band, color, exclude)
    zp.sky_sb, zp.sky_sb_err = _sky(run, stars, zp)
    report(progress, 5, steps, "done")
    return Measurement(stars=stars, matches=matches, zeropoint=zp, sky_sb=zp.sky_sb,
                       sky_sb_err=zp.sky_sb_err, notes=run.notes, image=run.im.data,
                       astrometry=astrometry, solution=run.solution, wcs=run.im.wcs)


def _measure_with_solved_wcs(call, why):
    """Measure again, plate-solving from the header WCS that failed its quality check.

    A mount's rough WCS (arcseconds to arcminutes off) otherwise gives chance matches and a
    wrong zero point; the header WCS still gives the solver its centre and scale.
    """
    log.info("the header WCS looks off (%s); plate-solving from it", why)
    *args, s = call
    s = s.replace(wcs=s.wcs.replace(solve_wcs="always"))
    result = _measure_once(*args, s)
    result.notes.insert(0, f"the header WCS looked off ({why}); the image was plate-solved "
                           "from it instead (--solve never keeps the header WCS)")
    return result


def measure_image(ccd, catalog, band, *, color=None, positions=None, exclude=None,
                  progress=None, settings=None, **keywords):
    """Measure the zero point (and sky brightness) of one image against a catalog.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        Calibrated image in electrons (or a plain image in ADU: give ``gain``), with a
        celestial WCS, or without one (then it is solved, see ``solve_wcs``).
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
    exclude : array of bool or sequence of star ids, optional
        Stars the user excluded (see :func:`~glue_zeropoint.zeropoint.fit_zeropoint`).
    progress : callable, optional
        ``progress(done, total, message)``; may raise ``Cancelled``.
    settings : `~glue_zeropoint.zeropoint.settings.MeasureSettings`, optional
        Every other setting, grouped: ``image`` (gain, read_noise, saturation, exptime),
        ``photometry`` (fwhm, threshold, aperture_radius, annulus, max_stars), ``wcs``
        (solve_wcs, center, scale, wcs_source; see below), ``fit`` (color_ref, clip_sigma,
        floor, fit_color, catalog_systematic...; see
        :func:`~glue_zeropoint.zeropoint.fit_zeropoint`), ``radius`` (match radius, Quantity
        or arcsec; default measured, see :mod:`glue_zeropoint.catalogs.crossmatch`),
        ``pixel_scale`` (arcsec/pixel for the sky brightness; default from the WCS),
        ``offline`` (catalogs only from the cache and local files).
    **keywords
        Any field of those groups by its own name (``fwhm=3.5``, ``solve_wcs='never'``,
        ``radius=2.0``...), overriding ``settings``: the keywords this function always took.

    The WCS settings: ``solve_wcs`` ``'auto'`` uses the image's header WCS when it passes
    its quality check against the catalog, and plate-solves (starting from it) when it does
    not or when there is none; ``'always'`` (True) solves even when it has one (a mount's
    rough WCS then gives the starting point); ``'never'`` (False): an image without a WCS is
    an InputError. ``center`` (SkyCoord or (ra, dec) degrees) and ``scale`` (arcsec/pixel)
    are the rough pointing for solving (default: the image WCS, else the header's RA/DEC or
    OBJCTRA/OBJCTDEC, PIXSCALE, SECPIX..., FOCALLEN with XPIXSZ/PIXSIZE1; without a centre,
    an image that needs solving is an InputError; without a scale every scale is tried).
    ``wcs_source`` says where ``ccd.wcs`` came from, for the report (default ``'header'``;
    the command line says ``'file'`` for ``--wcs``); a solved WCS is reported as ``'solved'``.

    Returns
    -------
    Measurement
        With ``astrometry`` (WCS source and quality) and, when solved, ``solution``.

    Raises
    ------
    InputError, PhotometryError, CatalogError, FitError
        See the module docstring.
    AstrometryError
        The image had to be solved and no significant solution was found.

    Examples
    --------
    >>> from glue_zeropoint.simulate import simulate_image, reference_catalog
    >>> ccd, truth = simulate_image(shape=(512, 512), n_stars=150, seed=1)
    >>> cat = reference_catalog(truth['field'], style='normalised')
    >>> m = measure_image(ccd, cat, 'V')
    >>> abs(m.zeropoint.zp - truth['filter'].zp) < 0.05
    True
    """
    s = MeasureSettings.from_keywords(settings, **keywords)
    return _measure_once(ccd, catalog, band, color, positions, exclude, progress, s)


def _catalog_neighbours(im, matches, cat, band, date, exptime):
    """Catalog stars on the image (with a margin) not matched to a measured star, with their
    fluxes predicted from a rough zero point (median of the matched stars' ``m_cat - m_inst``):
    a Table ``x``, ``y``, ``flux`` for :func:`measure_stars`' ``mask_positions``, or None.

    A neighbour closer than the detection can separate (or below its threshold) is not among
    the measured stars, yet its light is in the star's aperture and in the large apertures of
    the curve of growth; only the catalog knows it is there. Over the injection-recovery
    seeds, such neighbours made the fitted stars ~3-13 mmag too bright on average (the zero
    point ~+2.5 mmag high) and the aperture correction ~0.3% too large
    (tests/benchmarks/diagnose_zp_bias.py)."""
    from ..catalogs.crossmatch import propagate_proper_motion
    from ..photometry.flags import EXCLUDE_FROM_FIT

    col = f"cat_mag_{band}"
    if col not in matches.colnames or "cat_index" not in matches.colnames:
        return None
    m_cat = np.ma.filled(np.ma.asarray(matches[col], float), np.nan)
    m_inst = np.asarray(matches["mag_inst"], float)
    ok = ((np.asarray(matches["match"]).astype(str) == "ok")
          & ((np.asarray(matches["flags"], np.int64) & EXCLUDE_FROM_FIT) == 0)
          & np.isfinite(m_cat) & np.isfinite(m_inst))
    if ok.sum() < 3:
        return None
    zp0 = float(np.median(m_cat[ok] - m_inst[ok]))
    try:
        ra, dec = propagate_proper_motion(cat, date)
    except (ValueError, TypeError, InputError):
        ra, dec = np.asarray(cat["ra"], float), np.asarray(cat["dec"], float)
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    mags = np.ma.filled(np.ma.asarray(cat[f"mag_{band}"], float), np.nan)
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mags)
    idx = np.asarray(matches["cat_index"])
    keep[idx[idx >= 0]] = False
    if not keep.any():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, y = im.wcs.world_to_pixel(SkyCoord(ra[keep] * u.deg, dec[keep] * u.deg))
    x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
    ny, nx = im.shape
    margin = 8.0 * float(matches.meta.get("fwhm") or 4.0)  # the curve of growth's reach
    on = (x > -margin) & (x < nx - 1 + margin) & (y > -margin) & (y < ny - 1 + margin)
    if not on.any():
        return None
    flux = 10.0 ** (-0.4 * (mags[keep][on] - zp0)) * exptime
    return Table({"x": x[on], "y": y[on], "flux": flux})


def _star_mask(im, stars):
    """Sources to leave out of the sky level: a segmentation of the image
    (:func:`.sky.source_mask`), plus a disk around every measured star out to where its wings
    (the frame's own PSF profile) fall below half the sky noise, at least 4 FWHM."""
    from ..photometry.aperture import as_psf
    from ..photometry.detection import disk_mask
    from .sky import source_mask

    psf = as_psf(stars.meta.get("psf") or float(stars.meta["fwhm"]))
    fwhm = psf.fwhm
    x = np.asarray(stars["x"], float)
    y = np.asarray(stars["y"], float)
    flux = np.clip(np.nan_to_num(np.asarray(stars["flux"], float)), 0, None)
    sky_std = float(np.nanmedian(np.asarray(stars["sky_std"], float)))
    peak = flux * float(psf.surface_brightness(0.0))
    r = psf.wing_radius(peak, 0.5 * max(sky_std, 1e-9), 30.0 * fwhm)
    r = np.clip(r, 4.0 * fwhm, 30.0 * fwhm)
    good = np.isfinite(x) & np.isfinite(y)
    mask = disk_mask(im.shape, x[good], y[good], r[good])
    return mask | source_mask(im.data, im.bad)
