"""A star field on the sky with known truth: positions, magnitudes, colours, WCS, PSF.

The truth convention follows DESIGN.md section 5: for a filter with zero point ``ZP`` and colour
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

__all__ = ["FilterTruth", "StarField", "make_field", "make_wcs", "moffat_alpha", "render_stars"]

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
    fwhm : float
        PSF FWHM in pixels (Moffat, beta 3.5).
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

    @property
    def pixel_area_arcsec2(self):
        """Area of one pixel on the sky at the image centre (arcsec^2)."""
        return float(abs(np.linalg.det(self.wcs.pixel_scale_matrix)) * 3600.0 ** 2)

    def colors(self, color):
        """The colour ``color = (b1, b2)`` of every star (mag_b1 - mag_b2)."""
        return np.asarray(self.stars[f"mag_{color[0]}"]) - np.asarray(self.stars[f"mag_{color[1]}"])

    def rates(self, filt):
        """True electron rates (e-/s) of every star in filter ``filt`` (a FilterTruth)."""
        return filt.rate(self.stars[f"mag_{filt.band}"], self.colors(filt.color))

    def expected_electrons(self, filt, exptime, include_sky=True):
        """Noiseless electrons collected per pixel in ``exptime`` (before the flat response)."""
        image = render_stars(self.shape, self.stars["x"], self.stars["y"],
                             self.rates(filt) * exptime, self.fwhm)
        if include_sky:
            image += filt.sky_rate(self.pixel_area_arcsec2) * exptime
        return image


def make_field(shape=(1024, 1024), n_stars=300, seed=0, *, center=(250.4235, 36.4613),
               pixel_scale=1.0, rotation=0.0, flip=False, sip_coeff=0.0, fwhm=3.5,
               mag_range=(10.0, 18.0), color_range=(-0.1, 1.6), bands=("B", "V", "R", "I"),
               proper_motion=0.0, variable_fraction=0.0, edge_margin=20, obs_epoch=2024.5,
               catalog_epoch=2016.0):
    """Draw a random star field with known truth.

    Magnitudes follow a rising luminosity function (``dN/dm ~ 10**(0.3 m)``) between
    ``mag_range``; B-V is uniform in ``color_range`` and the other bands follow mean
    main-sequence-like colour relations. Stars are placed uniformly over the detector plus
    ``edge_margin`` pixels beyond each edge, so some fall partly off the image.

    ``proper_motion`` is the rms proper motion in mas/yr per axis; catalog positions
    (``ra_cat``, ``dec_cat``) are at ``catalog_epoch`` and image positions at ``obs_epoch``.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    wcs = make_wcs(shape, center, pixel_scale, rotation, flip, sip_coeff)
    x = rng.uniform(-edge_margin, nx - 1 + edge_margin, n_stars)
    y = rng.uniform(-edge_margin, ny - 1 + edge_margin, n_stars)
    # inverse-CDF draw from dN/dm ~ 10**(0.3 m)
    lo, hi = 10 ** (0.3 * np.array(mag_range))
    v = np.log10(rng.uniform(lo, hi, n_stars)) / 0.3
    bv = rng.uniform(*color_range, n_stars)
    mags = {"V": v, "B": v + bv, "R": v - (0.55 * bv + 0.02), "I": v - (1.1 * bv + 0.05),
            "g": v + 0.6 * bv - 0.12, "r": v - 0.46 * bv + 0.11, "i": v - 0.9 * bv + 0.25,
            "z": v - 1.15 * bv + 0.35}
    sky = wcs.pixel_to_world(x, y)
    pmra = rng.normal(0.0, proper_motion, n_stars) if proper_motion else np.zeros(n_stars)
    pmdec = rng.normal(0.0, proper_motion, n_stars) if proper_motion else np.zeros(n_stars)
    dt = catalog_epoch - obs_epoch
    cosd = np.cos(np.deg2rad(sky.dec.deg))
    ra_cat = sky.ra.deg + pmra * dt / 3.6e6 / cosd
    dec_cat = sky.dec.deg + pmdec * dt / 3.6e6
    stars = Table()
    stars["star_id"] = np.arange(n_stars)
    stars["x"] = x
    stars["y"] = y
    stars["ra"] = sky.ra.deg
    stars["dec"] = sky.dec.deg
    stars["ra_cat"] = ra_cat
    stars["dec_cat"] = dec_cat
    stars["pmra"] = pmra
    stars["pmdec"] = pmdec
    for band in bands:
        stars[f"mag_{band}"] = mags[band]
    stars["variable"] = rng.random(n_stars) < variable_fraction
    order = np.argsort(stars["mag_V"] if "mag_V" in stars.colnames else x)
    stars = stars[order]
    stars["star_id"] = np.arange(n_stars)
    return StarField(shape=tuple(shape), wcs=wcs, stars=stars, fwhm=fwhm, obs_epoch=obs_epoch,
                     catalog_epoch=catalog_epoch, bands=tuple(bands))


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
