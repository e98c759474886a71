"""A star field on the sky with known truth: positions, magnitudes, colours, WCS, PSF.

The truth convention follows docs/architecture.md section 5: for a filter with zero point ``ZP`` and colour
term ``c`` on colour ``colour`` (e.g. B-V) with reference ``colour_ref``, a star of catalog
magnitude ``m`` gives ``m - m_inst = ZP + c (colour - colour_ref)`` with
``m_inst = -2.5 log10(F / t)``, F the *total* flux in electrons collected in ``t`` seconds (before
the flat-field response of the detector).
"""

from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS

from ._settings import SimSettings
from .psf import PSF, make_psf, render_psf

__all__ = ["FilterTruth", "StarField", "SkyModel", "make_field", "FieldSettings", "make_wcs", "moffat_alpha",
           "render_stars"]

#: the profile of the legacy renderer (``psf=None``): kept so that the demo and the tests
#: written before the PSF families draw the same pixels; pass ``psf=`` for anything else.
MOFFAT_BETA = 3.5


@dataclass
class FilterTruth:
    """What is true of one filter: the band it calibrates to, ZP, colour term and sky.

    Parameters
    ----------
    band : str
        Catalog band this filter is tied to (e.g. 'V' for a V or Clear filter).
    zp : float
        Zero point: the catalog magnitude that gives 1 e-/s at ``colour_ref``.
    color_term : float
        Coefficient ``c`` of ``(colour - colour_ref)``.
    color : tuple of str
        The two bands of the colour, e.g. ``('B', 'V')`` for B-V.
    color_ref : float
        Reference colour.
    sky_sb : float
        Sky surface brightness in mag/arcsec^2 (at ``colour_ref``: the sky rate per pixel is
        ``10**(-0.4 (sky_sb - zp)) * pixel_area_arcsec2`` e-/s).
    """

    band: str = "V"
    zp: float = 21.5
    color_term: float = 0.0
    color: tuple = ("B", "V")
    color_ref: float = 0.6
    sky_sb: float = 20.0

    def rate(self, mags, colors):
        """Electron rate (e-/s) of stars with catalog magnitude ``mags`` and colour ``colors``."""
        m_inst = np.asarray(mags) - self.zp - self.color_term * (np.asarray(colors) - self.color_ref)
        return 10.0 ** (-0.4 * m_inst)

    def sky_rate(self, pixel_area_arcsec2):
        """Sky electron rate per pixel (e-/s/pixel)."""
        return 10.0 ** (-0.4 * (self.sky_sb - self.zp)) * pixel_area_arcsec2


def make_wcs(shape, center=(250.4235, 36.4613), pixel_scale=1.0, rotation=0.0, flip=False,
             sip_coeff=0.0):
    """A TAN (optionally TAN-SIP) WCS centred on the image.

    Parameters
    ----------
    shape : tuple
        Image shape (ny, nx).
    center : tuple
        RA, Dec of the image centre in degrees (default: M13).
    pixel_scale : float
        Arcsec per pixel.
    rotation : float
        Position angle of the detector y axis east of north, degrees.
    flip : bool
        Mirror the x axis (as a diagonal mirror or a flipped camera would).
    sip_coeff : float
        Strength of a simple radial-ish SIP distortion: the x/y shift in pixels at the image
        corner. 0 gives a pure TAN WCS.
    """
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(center)
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    scale = pixel_scale / 3600.0
    theta = np.deg2rad(rotation)
    cd = scale * np.array([[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    if flip:
        cd[:, 0] *= -1
    w.wcs.cd = cd
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    if sip_coeff:
        from astropy.wcs import Sip

        hx, hy = nx / 2.0, ny / 2.0
        a = np.zeros((4, 4))
        b = np.zeros((4, 4))
        # quadratic and cubic terms, each moving a corner pixel by a fraction of sip_coeff
        a[2, 0] = 0.4 * sip_coeff / hx ** 2
        a[0, 2] = 0.2 * sip_coeff / hy ** 2
        a[3, 0] = 0.3 * sip_coeff / hx ** 3
        b[1, 1] = 0.3 * sip_coeff / (hx * hy)
        b[0, 2] = 0.4 * sip_coeff / hy ** 2
        b[0, 3] = 0.3 * sip_coeff / hy ** 3
        w.sip = Sip(a, b, None, None, w.wcs.crpix)
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    return w


def moffat_alpha(fwhm, beta=MOFFAT_BETA):
    """Moffat core width ``alpha`` for a given FWHM."""
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


@dataclass
class StarField:
    """Stars on the detector with their catalog magnitudes and true sky positions.

    Attributes
    ----------
    shape : tuple
        Image shape (ny, nx).
    wcs : `~astropy.wcs.WCS`
        The true WCS.
    stars : `~astropy.table.Table`
        One row per star: ``x``, ``y`` (0-based pixel centre), ``ra``, ``dec`` (degrees, at the
        observation epoch), ``ra_cat``, ``dec_cat`` (at ``catalog_epoch``), ``pmra``, ``pmdec``
        (mas/yr), ``mag_<band>`` for each band, ``variable`` (bool).
        ``dmag`` (magnitude of the star on this image minus its catalog magnitude: nonzero
        for variables), ``blend_of`` (``star_id`` of the star a blended companion was placed
        next to, else -1).
    fwhm : float
        PSF FWHM in pixels (``psf.fwhm`` when a ``psf`` is given).
    psf : PSF or None
        The PSF family (:mod:`glue_zeropoint.simulate.psf`); ``None`` is the legacy Moffat
        beta 3.5 renderer (:func:`render_stars`).
    obs_epoch, catalog_epoch : float
        Julian years.
    """

    shape: tuple
    wcs: WCS
    stars: Table
    fwhm: float = 3.5
    obs_epoch: float = 2024.5
    catalog_epoch: float = 2016.0
    bands: tuple = ("B", "V")
    extra: dict = field(default_factory=dict)
    psf: PSF | None = None

    @property
    def pixel_area_arcsec2(self):
        """Area of one pixel on the sky at the image centre (arcsec^2)."""
        return float(abs(np.linalg.det(self.wcs.pixel_scale_matrix)) * 3600.0 ** 2)

    def colors(self, color):
        """The colour ``color = (b1, b2)`` of every star (mag_b1 - mag_b2)."""
        return np.asarray(self.stars[f"mag_{color[0]}"]) - np.asarray(self.stars[f"mag_{color[1]}"])

    def rates(self, filt):
        """True electron rates (e-/s) of every star in filter ``filt`` (a FilterTruth), on this
        image (variables at their current ``dmag``)."""
        mags = np.asarray(self.stars[f"mag_{filt.band}"], float)
        if "dmag" in self.stars.colnames:
            mags = mags + np.asarray(self.stars["dmag"], float)
        return filt.rate(mags, self.colors(filt.color))

    def render(self, filt, exptime, include_sky=True, sky=None, rng=None):
        """Noiseless electrons per pixel and the truth of each star's light.

        Returns ``(image, fractions)``: ``fractions`` has ``stamp`` (fraction of each star's
        total flux drawn in its stamp), ``image`` (fraction landing on the image) and
        ``outside`` (lost beyond the stamp); for the legacy renderer (``psf=None``) ``stamp`` is
        the analytic fraction inside its stamp's circle, to which it scales each stamp. ``sky`` is a :class:`SkyModel` (a
        flat sky when None).
        """
        flux = self.rates(filt) * exptime
        if self.psf is None:
            image = render_stars(self.shape, self.stars["x"], self.stars["y"], flux, self.fwhm)
            with np.errstate(invalid="ignore", divide="ignore"):
                on = np.array([render_stars(self.shape, [xi], [yi], [1.0], self.fwhm).sum()
                               for xi, yi in zip(self.stars["x"], self.stars["y"], strict=True)])
            inside = _moffat_cdf(int(np.ceil(6 * self.fwhm)), moffat_alpha(self.fwhm))
            fractions = {"stamp": np.full(len(flux), inside), "image": on,
                         "outside": np.full(len(flux), 1.0 - inside)}
        else:
            image, fractions = render_psf(self.shape, self.stars["x"], self.stars["y"], flux,
                                          self.psf)
        if include_sky:
            level = filt.sky_rate(self.pixel_area_arcsec2) * exptime
            image += level if sky is None else sky.image(self.shape, level, rng)
        return image, fractions

    def expected_electrons(self, filt, exptime, include_sky=True):
        """Noiseless electrons collected per pixel in ``exptime`` (before the flat response)."""
        if self.psf is None:
            image = render_stars(self.shape, self.stars["x"], self.stars["y"],
                                 self.rates(filt) * exptime, self.fwhm)
            if include_sky:
                image += filt.sky_rate(self.pixel_area_arcsec2) * exptime
            return image
        return self.render(filt, exptime, include_sky)[0]


@dataclass
class SkyModel:
    """A sky that is not flat: a linear gradient and nebulous patches.

    Parameters
    ----------
    gradient : float
        Fractional change of the sky level across the image (0.3: +-15% from one edge to
        the other), along ``angle`` (degrees from +x).
    patches : int
        Number of nebulous patches (elongated 2-D Gaussians, random sizes and angles).
    patch_amplitude : float
        Peak of each patch as a fraction of the sky level (drawn uniformly up to it).
    patch_size : (float, float)
        Range of the patches' sigma (pixels).
    seed : int
        Random seed of the patches (and of the angle when ``angle`` is None).
    """

    gradient: float = 0.0
    angle: float | None = 30.0
    patches: int = 0
    patch_amplitude: float = 0.5
    patch_size: tuple = (8.0, 60.0)
    seed: int = 0

    def image(self, shape, level, rng=None):
        """Sky electrons per pixel for a mean level ``level``."""
        rng = np.random.default_rng([self.seed, 5]) if rng is None else rng
        ny, nx = shape
        yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
        angle = rng.uniform(0, 360) if self.angle is None else self.angle
        c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
        t = ((xx - (nx - 1) / 2) * c + (yy - (ny - 1) / 2) * s) / max(nx, ny)
        sky = level * (1.0 + self.gradient * t)
        for _ in range(int(self.patches)):
            x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
            sa = rng.uniform(*self.patch_size)
            sb = sa * rng.uniform(0.3, 1.0)
            th = np.deg2rad(rng.uniform(0, 180))
            u = (xx - x0) * np.cos(th) + (yy - y0) * np.sin(th)
            v = -(xx - x0) * np.sin(th) + (yy - y0) * np.cos(th)
            sky += level * rng.uniform(0.2, 1.0) * self.patch_amplitude * np.exp(
                -0.5 * ((u / sa) ** 2 + (v / sb) ** 2))
        return sky


@dataclass
class FieldSettings(SimSettings):
    """What :func:`make_field` draws (serialisable: :meth:`to_dict`/:meth:`from_dict`).

    Attributes
    ----------
    center : (ra, dec)
        Field centre in degrees.
    pixel_scale, rotation, flip, sip_coeff
        The WCS (:func:`make_wcs`): arcsec/pixel, degrees, mirrored, SIP distortion.
    fwhm : float
        Seeing FWHM in pixels (a ``psf`` spec may give its own).
    mag_range, color_range : (float, float)
        V magnitudes (rising luminosity function ``dN/dm ~ 10**(0.3 m)``) and B-V (uniform).
    bands : tuple of str
        Bands of the truth table.
    proper_motion : float
        rms proper motion in mas/yr per axis; catalog positions are at ``catalog_epoch``,
        image positions at ``obs_epoch``.
    variable_fraction, variable_amplitude
        Fraction of variables, ``dmag`` uniform in +-amplitude on the image.
    edge_margin : float
        Stars are placed up to this many pixels beyond each edge.
    obs_epoch, catalog_epoch : float
        Julian years.
    psf : PSF, str or dict, optional
        A PSF family (:class:`~glue_zeropoint.simulate.psf.PSF`, a spec such as
        ``'moffat:beta=2'`` or a dict); None keeps the legacy Moffat beta 3.5 renderer.
    blend_fraction, blend_separation, blend_dmag
        That fraction of the stars gets a companion ``blend_separation`` FWHM away (range)
        and ``blend_dmag`` magnitudes fainter (range), same colour.
    n_saturated, saturated_mag
        Add that many stars of V uniform in ``saturated_mag`` (a (bright, faint) range; by
        default 2 magnitudes brighter than ``mag_range``).
    cluster_stars, cluster_radius, cluster_mag_range
        A crowded star cluster: that many more stars around the image centre, their
        projected distances from a Plummer profile of scale ``cluster_radius`` pixels (half
        of them within one scale radius; the draw stops at 7 scale radii, 98% of the
        profile), V from the same rising luminosity function over ``cluster_mag_range``
        (default one magnitude fainter than ``mag_range``'s bright end to three beyond its
        faint end: the faintest stay unresolved and make a lumpy, raised sky in the core).
    """

    center: tuple = (250.4235, 36.4613)
    pixel_scale: float = 1.0
    rotation: float = 0.0
    flip: bool = False
    sip_coeff: float = 0.0
    fwhm: float = 3.5
    mag_range: tuple = (10.0, 18.0)
    color_range: tuple = (-0.1, 1.6)
    bands: tuple = ("B", "V", "R", "I")
    proper_motion: float = 0.0
    variable_fraction: float = 0.0
    edge_margin: float = 20
    obs_epoch: float = 2024.5
    catalog_epoch: float = 2016.0
    psf: object = None
    variable_amplitude: float = 0.0
    blend_fraction: float = 0.0
    blend_separation: tuple = (0.5, 2.0)
    blend_dmag: tuple = (0.0, 3.0)
    n_saturated: int = 0
    saturated_mag: tuple | None = None
    cluster_stars: int = 0
    cluster_radius: float = 25.0
    cluster_mag_range: tuple | None = None


def _band_mags(v, bv):
    """Magnitudes in every band from V and B-V (mean main-sequence-like colour relations)."""
    return {"V": v, "B": v + bv, "R": v - (0.55 * bv + 0.02), "I": v - (1.1 * bv + 0.05),
            "g": v + 0.6 * bv - 0.12, "r": v - 0.46 * bv + 0.11, "i": v - 0.9 * bv + 0.25,
            "z": v - 1.15 * bv + 0.35}


def _draw_stars(rng, rng2, wcs, shape, n_stars, s):
    """The main stars, sorted by V (``rng`` draws positions, magnitudes, colours, proper
    motions, variables; ``rng2`` the variables' amplitudes)."""
    ny, nx = shape
    x = rng.uniform(-s.edge_margin, nx - 1 + s.edge_margin, n_stars)
    y = rng.uniform(-s.edge_margin, ny - 1 + s.edge_margin, n_stars)
    # inverse-CDF draw from dN/dm ~ 10**(0.3 m)
    lo, hi = 10 ** (0.3 * np.array(s.mag_range))
    v = np.log10(rng.uniform(lo, hi, n_stars)) / 0.3
    bv = rng.uniform(*s.color_range, n_stars)
    mags = _band_mags(v, bv)
    sky = wcs.pixel_to_world(x, y)
    pm = s.proper_motion
    pmra = rng.normal(0.0, pm, n_stars) if pm else np.zeros(n_stars)
    pmdec = rng.normal(0.0, pm, n_stars) if pm else np.zeros(n_stars)
    dt = s.catalog_epoch - s.obs_epoch
    cosd = np.cos(np.deg2rad(sky.dec.deg))
    stars = Table()
    stars["star_id"] = np.arange(n_stars)
    stars["x"] = x
    stars["y"] = y
    stars["ra"] = sky.ra.deg
    stars["dec"] = sky.dec.deg
    stars["ra_cat"] = sky.ra.deg + pmra * dt / 3.6e6 / cosd
    stars["dec_cat"] = sky.dec.deg + pmdec * dt / 3.6e6
    stars["pmra"] = pmra
    stars["pmdec"] = pmdec
    for band in s.bands:
        stars[f"mag_{band}"] = mags[band]
    stars["variable"] = rng.random(n_stars) < s.variable_fraction
    stars["dmag"] = np.where(stars["variable"],
                             rng2.uniform(-1, 1, n_stars) * s.variable_amplitude, 0.0)
    stars["blend_of"] = np.full(n_stars, -1)
    order = np.argsort(stars["mag_V"] if "mag_V" in stars.colnames else x)
    stars = stars[order]
    stars["star_id"] = np.arange(n_stars)
    return stars


def _extra_stars(rng2, stars, shape, fwhm, s):
    """Saturated stars and blend companions: a list of (x, y, V, B-V, parent row)."""
    ny, nx = shape
    n_stars = len(stars)
    extra_rows = []
    if s.n_saturated:
        n_sat = int(s.n_saturated)
        bright = s.saturated_mag or (s.mag_range[0] - 2.0, s.mag_range[0])
        sv = rng2.uniform(*bright, n_sat)
        sbv = rng2.uniform(*s.color_range, n_sat)
        sx = rng2.uniform(2 * fwhm + 10, nx - 2 * fwhm - 10, n_sat)
        sy = rng2.uniform(2 * fwhm + 10, ny - 2 * fwhm - 10, n_sat)
        extra_rows.append((sx, sy, sv, sbv, np.full(n_sat, -1)))
    if s.blend_fraction:
        k = rng2.random(n_stars) < s.blend_fraction
        sep = rng2.uniform(*s.blend_separation, k.sum()) * fwhm
        ang = rng2.uniform(0, 2 * np.pi, k.sum())
        dm = rng2.uniform(*s.blend_dmag, k.sum())
        bvk = np.array(stars["mag_B"] - stars["mag_V"])[k] if "mag_B" in stars.colnames \
            else rng2.uniform(*s.color_range, k.sum())
        extra_rows.append((np.array(stars["x"])[k] + sep * np.cos(ang),
                           np.array(stars["y"])[k] + sep * np.sin(ang),
                           np.array(stars["mag_V"])[k] + dm, bvk, np.array(stars["star_id"])[k]))
    return extra_rows


def _cluster_stars(shape, s, seed):
    """A Plummer cluster at the image centre, from its own random stream ``[seed, 303]``."""
    rng = np.random.default_rng([seed, 303])
    n = int(s.cluster_stars)
    # Plummer surface density: the fraction within projected radius R is R^2 / (R^2 + a^2)
    f = rng.uniform(0.0, 0.98, n)
    r = s.cluster_radius * np.sqrt(f / (1.0 - f))
    ang = rng.uniform(0.0, 2.0 * np.pi, n)
    ny, nx = shape
    lo_m, hi_m = s.cluster_mag_range or (s.mag_range[0] + 1.0, s.mag_range[1] + 3.0)
    lo, hi = 10 ** (0.3 * np.array([lo_m, hi_m]))
    v = np.log10(rng.uniform(lo, hi, n)) / 0.3
    bv = rng.uniform(*s.color_range, n)
    return ((nx - 1) / 2.0 + r * np.cos(ang), (ny - 1) / 2.0 + r * np.sin(ang), v, bv,
            np.full(n, -1))


def _append_stars(stars, extra_rows, wcs, bands):
    """The stars with the extra rows appended (no proper motion, not variable)."""
    from astropy.table import vstack

    for ex, ey, ev, ebv, parent in extra_rows:
        esky = wcs.pixel_to_world(ex, ey)
        emags = _band_mags(ev, ebv)
        new = Table()
        new["star_id"] = np.arange(len(ex)) + len(stars)
        new["x"], new["y"] = ex, ey
        new["ra"], new["dec"] = esky.ra.deg, esky.dec.deg
        new["ra_cat"], new["dec_cat"] = esky.ra.deg, esky.dec.deg  # no proper motion
        new["pmra"] = np.zeros(len(ex))
        new["pmdec"] = np.zeros(len(ex))
        for band in bands:
            new[f"mag_{band}"] = emags[band]
        new["variable"] = np.zeros(len(ex), bool)
        new["dmag"] = np.zeros(len(ex))
        new["blend_of"] = parent
        stars = vstack([stars, new])
    return stars


def make_field(shape=(1024, 1024), n_stars=300, seed=0, *, settings=None, **keywords):
    """Draw a random star field with known truth.

    Magnitudes follow a rising luminosity function (``dN/dm ~ 10**(0.3 m)``) between
    ``mag_range``; B-V is uniform in ``color_range`` and the other bands follow mean
    main-sequence-like colour relations. Stars are placed uniformly over the detector plus
    ``edge_margin`` pixels beyond each edge, so some fall partly off the image.

    ``settings`` is a :class:`FieldSettings`; ``keywords`` are any of its fields (override
    it; the keywords this function always took: ``center``, ``pixel_scale``, ``fwhm``,
    ``mag_range``, ``proper_motion``, ``psf``, ``blend_fraction``, ``n_saturated``...).

    The options ``psf``, ``variable_amplitude``, ``blend_*``, ``n_saturated`` and
    ``cluster_*`` draw from their own random streams, so a field made without them is the
    same as before they existed.
    """
    s = FieldSettings.from_keywords(settings, **keywords)
    rng = np.random.default_rng(seed)
    rng2 = np.random.default_rng([seed, 101])
    wcs = make_wcs(shape, s.center, s.pixel_scale, s.rotation, s.flip, s.sip_coeff)
    stars = _draw_stars(rng, rng2, wcs, shape, n_stars, s)
    psf, fwhm = s.psf, s.fwhm
    if psf is not None:
        psf = make_psf(psf, fwhm=fwhm)
        fwhm = float(psf.fwhm)
    extra = _extra_stars(rng2, stars, shape, fwhm, s)
    if s.cluster_stars:
        extra.append(_cluster_stars(shape, s, seed))
    stars = _append_stars(stars, extra, wcs, s.bands)
    return StarField(shape=tuple(shape), wcs=wcs, stars=stars, fwhm=fwhm,
                     obs_epoch=s.obs_epoch, catalog_epoch=s.catalog_epoch,
                     bands=tuple(s.bands), psf=psf)


def _moffat_cdf(r, alpha, beta=MOFFAT_BETA):
    """Fraction of a Moffat profile's flux inside radius r."""
    return 1.0 - (1.0 + (r / alpha) ** 2) ** (1.0 - beta)


def render_stars(shape, x, y, flux, fwhm, beta=MOFFAT_BETA, subsample=3, radius=None):
    """Render Moffat stars of total ``flux`` at 0-based pixel centres (x, y).

    Each star is integrated over pixels by ``subsample`` x ``subsample`` sampling inside a
    stamp of ``radius`` pixels (default 6 FWHM); the stamp is scaled so that its sum equals the
    flux the analytic profile puts inside the stamp's circle, so the flux lost to the stamp edge
    is ~1e-4 of the total for beta = 3.5.
    """
    ny, nx = shape
    image = np.zeros(shape, dtype=np.float64)
    alpha = moffat_alpha(fwhm, beta)
    radius = int(np.ceil(6 * fwhm)) if radius is None else int(radius)
    off = (np.arange(subsample) + 0.5) / subsample - 0.5
    grid = np.arange(-radius, radius + 1)
    for xi, yi, fi in zip(np.asarray(x, float), np.asarray(y, float), np.asarray(flux, float),
                          strict=True):
        cx, cy = int(np.round(xi)), int(np.round(yi))
        x0, x1 = max(cx - radius, 0), min(cx + radius + 1, nx)
        y0, y1 = max(cy - radius, 0), min(cy + radius + 1, ny)
        if x0 >= x1 or y0 >= y1:
            continue
        px = grid + cx
        py = grid + cy
        sx = (px[:, None] + off[None, :]).ravel() - xi
        sy = (py[:, None] + off[None, :]).ravel() - yi
        r2 = sy[:, None] ** 2 + sx[None, :] ** 2
        prof = (1.0 + r2 / alpha ** 2) ** (-beta)
        n = grid.size
        prof = prof.reshape(n, subsample, n, subsample).sum(axis=(1, 3))
        inside = _moffat_cdf(radius, alpha, beta)
        prof *= fi * inside / prof.sum()
        image[y0:y1, x0:x1] += prof[y0 - (cy - radius):y1 - (cy - radius),
                                    x0 - (cx - radius):x1 - (cx - radius)]
    return image


def sky_coords(stars, epoch="obs"):
    """SkyCoord of the stars at the observation (``'obs'``) or catalog (``'cat'``) epoch."""
    if epoch == "obs":
        return SkyCoord(stars["ra"] * u.deg, stars["dec"] * u.deg)
    return SkyCoord(stars["ra_cat"] * u.deg, stars["dec_cat"] * u.deg)
