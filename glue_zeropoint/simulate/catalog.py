"""Reference catalogs for simulated fields, in the column style VizieR returns."""

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.table import Table

from ._settings import SimSettings

__all__ = ["reference_catalog", "catalog_errors", "CatalogSimSettings"]


def catalog_errors(mags, floor=0.01, m0=15.5):
    """Typical survey errors: a floor plus photon noise that grows to faint magnitudes."""
    return np.minimum(np.hypot(floor, 0.02 * 10 ** (0.4 * (np.asarray(mags) - m0))), 0.3)


@dataclass
class CatalogSimSettings(SimSettings):
    """How :func:`reference_catalog` writes and spoils the catalog (serialisable).

    Attributes
    ----------
    floor : float
        Error floor (mag) of :func:`catalog_errors`.
    style : {'apass', 'gaia', 'normalised'}
        Column style (see :func:`reference_catalog`).
    missing_fraction : float
        Fraction of magnitudes left empty (masked; not in the normalised style).
    extra_stars : int
        Catalog stars added around (outside) the image.
    faint_limit : float, optional
        Leave out the field's stars fainter than this V.
    drop_fraction : float
        That fraction of the image's stars is missing from the catalog.
    spurious : int
        That many entries inside the image where there is no star (V 12-17).
    flag_variables : float
        Fraction of the variables the catalog knows about (the others are unflagged).
    merge_blends : bool
        A blended companion (``blend_of`` >= 0) is not listed; its light is in its primary's
        magnitudes (a catalog that did not resolve the pair).
    error_scale : float
        Actual errors are this many times the stated ``e_`` errors (> 1: stated too small).
    truth_column : bool
        Add ``sim_star_id``: the field's ``star_id`` of each entry (-1 outside the image or
        spurious).
    """

    floor: float = 0.01
    style: str = "apass"
    missing_fraction: float = 0.0
    extra_stars: int = 50
    faint_limit: float | None = None
    drop_fraction: float = 0.0
    spurious: int = 0
    flag_variables: float = 1.0
    merge_blends: bool = False
    error_scale: float = 1.0
    truth_column: bool = False

    @property
    def spoils(self):
        """True when any imperfection (drawn from the second random stream) is asked for."""
        return bool(self.drop_fraction or self.spurious or self.flag_variables != 1.0
                    or self.merge_blends or self.error_scale != 1.0)


def _colour_mags(v, bv):
    return {"V": v, "B": v + bv, "R": v - 0.55 * bv, "I": v - 1.1 * bv,
            "g": v + 0.6 * bv - 0.12, "r": v - 0.46 * bv + 0.11, "i": v - 0.9 * bv + 0.25,
            "z": v - 1.15 * bv + 0.35}


@dataclass
class _Entries:
    """The catalog's entries while they are made: positions, true and observed magnitudes,
    errors, variability, proper motions and the field's star id (-1: none)."""

    ra: np.ndarray
    dec: np.ndarray
    mags: dict
    variable: np.ndarray
    pmra: np.ndarray
    pmdec: np.ndarray
    obs: dict = None
    errs: dict = None
    sim_id: np.ndarray = None

    def __len__(self):
        return len(self.ra)

    def add(self, ra, dec, mags, bands):
        """Append stars without proper motion, not variable (true magnitudes ``mags``)."""
        k = len(ra)
        self.ra = np.concatenate([self.ra, ra])
        self.dec = np.concatenate([self.dec, dec])
        self.mags = {b: np.concatenate([self.mags[b], mags[b]]) for b in bands}
        self.variable = np.concatenate([self.variable, np.zeros(k, bool)])
        self.pmra = np.concatenate([self.pmra, np.zeros(k)])
        self.pmdec = np.concatenate([self.pmdec, np.zeros(k)])

    def select(self, sel, bands):
        self.ra, self.dec, self.sim_id = self.ra[sel], self.dec[sel], self.sim_id[sel]
        self.variable, self.pmra, self.pmdec = self.variable[sel], self.pmra[sel], self.pmdec[sel]
        self.obs = {b: self.obs[b][sel] for b in bands}
        self.errs = {b: self.errs[b][sel] for b in bands}


def _field_entries(field, bands, faint_limit):
    s = field.stars
    keep = (np.array(s["mag_V"]) <= faint_limit if faint_limit is not None
            else np.ones(len(s), bool))
    return _Entries(ra=np.array(s["ra_cat"])[keep], dec=np.array(s["dec_cat"])[keep],
                    mags={b: np.array(s[f"mag_{b}"])[keep] for b in bands},
                    variable=np.array(s["variable"])[keep], pmra=np.array(s["pmra"])[keep],
                    pmdec=np.array(s["pmdec"])[keep]), keep


def _add_outside_stars(e, field, bands, n_extra, rng):
    """Stars just outside the image, for footprint and margin tests."""
    c = field.wcs.wcs.crval
    half = 0.6 * max(field.shape) * field.pixel_area_arcsec2 ** 0.5 / 3600.0
    ang = rng.uniform(0, 2 * np.pi, n_extra)
    rad = rng.uniform(half * 1.05, half * 1.4, n_extra)
    ra = c[0] + rad * np.cos(ang) / np.cos(np.deg2rad(c[1]))
    dec = c[1] + rad * np.sin(ang)
    v = rng.uniform(11, 17, n_extra)
    bv = rng.uniform(0, 1.5, n_extra)
    e.add(ra, dec, _colour_mags(v, bv), bands)


def _merge_blends(e, stars, bands, sel):
    """Put each listed companion's light into its primary and leave the companion out."""
    parent_of = dict(zip(np.array(stars["star_id"]), np.array(stars["blend_of"]), strict=True))
    row_of = {int(i): k for k, i in enumerate(e.sim_id) if i >= 0}
    for k, sid in enumerate(e.sim_id):
        p = parent_of.get(int(sid), -1) if sid >= 0 else -1
        if p >= 0 and p in row_of:
            j = row_of[p]
            for b in bands:
                both = -2.5 * np.log10(10 ** (-0.4 * e.mags[b][j]) + 10 ** (-0.4 * e.mags[b][k]))
                e.obs[b][j] += both - e.mags[b][j]
            sel[k] = False


def _add_spurious(e, field, bands, n_spurious, floor, rng2):
    ny, nx = field.shape
    sp = field.wcs.pixel_to_world(rng2.uniform(5, nx - 5, n_spurious),
                                  rng2.uniform(5, ny - 5, n_spurious))
    v = rng2.uniform(12, 17, n_spurious)
    bv = rng2.uniform(0, 1.5, n_spurious)
    fake = _colour_mags(v, bv)
    e.ra = np.concatenate([e.ra, sp.ra.deg])
    e.dec = np.concatenate([e.dec, sp.dec.deg])
    e.sim_id = np.concatenate([e.sim_id, np.full(n_spurious, -1)])
    e.variable = np.concatenate([e.variable, np.zeros(n_spurious, bool)])
    e.pmra = np.concatenate([e.pmra, np.zeros(n_spurious)])
    e.pmdec = np.concatenate([e.pmdec, np.zeros(n_spurious)])
    ferr = {b: catalog_errors(fake[b], floor) for b in bands}
    e.obs = {b: np.concatenate([e.obs[b], fake[b]]) for b in bands}
    e.errs = {b: np.concatenate([e.errs[b], ferr[b]]) for b in bands}


def _spoil(e, field, bands, seed, s):
    """The imperfections, from their own random stream ``[seed, 13]``."""
    rng2 = np.random.default_rng([seed, 13])
    n = len(e)
    if s.error_scale != 1.0:
        e.obs = {b: e.mags[b] + (e.obs[b] - e.mags[b]) * s.error_scale for b in bands}
    if s.flag_variables != 1.0:
        e.variable = e.variable & (rng2.random(n) < s.flag_variables)
    sel = np.ones(n, bool)
    if s.merge_blends and "blend_of" in field.stars.colnames:
        _merge_blends(e, field.stars, bands, sel)
    if s.drop_fraction:
        sel &= ~((e.sim_id >= 0) & (rng2.random(n) < s.drop_fraction))
    e.select(sel, bands)
    if s.spurious:
        _add_spurious(e, field, bands, s.spurious, s.floor, rng2)


def _normalised_table(t, e, bands, epoch, truth_column):
    n = len(e)
    t["id"] = [f"SIM{i:06d}" for i in range(n)]
    t["ra"] = e.ra
    t["dec"] = e.dec
    t["pmra"] = e.pmra
    t["pmdec"] = e.pmdec
    t["ref_epoch"] = np.full(n, epoch)
    for b in bands:
        t[f"mag_{b}"] = e.obs[b]
        t[f"err_{b}"] = e.errs[b]
    t["variable"] = e.variable
    t["nonstellar"] = np.zeros(n, bool)
    t["otype"] = ["*"] * n
    if truth_column:
        t["sim_star_id"] = e.sim_id
    return t


def _vizier_table(t, e, bands, epoch, s, rng):
    """APASS- or Gaia-style columns (``rng`` draws Gaia source ids and missing magnitudes)."""
    n = len(e)
    if s.style == "apass":
        t["recno"] = np.arange(1, n + 1)
        t["RAJ2000"] = e.ra * u.deg
        t["DEJ2000"] = e.dec * u.deg
    elif s.style == "gaia":
        t["Source"] = rng.integers(10 ** 17, 10 ** 18, n)
        t["RA_ICRS"] = e.ra * u.deg
        t["DE_ICRS"] = e.dec * u.deg
        t["pmRA"] = e.pmra * u.mas / u.yr
        t["pmDE"] = e.pmdec * u.mas / u.yr
        t["Epoch"] = np.full(n, epoch)
        t["VarFlag"] = np.where(e.variable, "VARIABLE", "NOT_AVAILABLE")
    else:
        raise ValueError(f"style must be 'apass', 'gaia' or 'normalised', not {s.style!r}")
    for b in bands:
        m = np.ma.masked_array(e.obs[b], rng.random(n) < s.missing_fraction)
        t[f"{b}mag"] = m * u.mag
        t[f"e_{b}mag"] = np.ma.masked_array(e.errs[b], m.mask) * u.mag
    if s.style == "apass" and "B" in bands and "V" in bands:
        t["B-V"] = (t["Bmag"] - t["Vmag"])
        t["e_B-V"] = np.hypot(t["e_Bmag"], t["e_Vmag"])
    if s.truth_column:
        t["sim_star_id"] = e.sim_id
    return t


def reference_catalog(field, bands=("B", "V"), seed=0, *, settings=None, **keywords):
    """A catalog of the field's stars with realistic errors and VizieR-style columns.

    Catalog magnitudes are the truth plus Gaussian noise of the stated ``e_<band>mag`` error.
    ``style='apass'`` writes ``RAJ2000``, ``DEJ2000``, ``<band>mag``, ``e_<band>mag`` and
    ``B-V``; ``style='gaia'`` writes ``RA_ICRS``, ``DE_ICRS``, ``pmRA``, ``pmDE``, ``Epoch``
    and ``<band>mag``/``e_<band>mag``; ``style='normalised'`` writes the normalised columns
    (``ra``, ``dec``, ``mag_<band>``, ``err_<band>``...). Positions are at the field's catalog
    epoch. ``extra_stars`` catalog stars are added around (outside) the image, and a fraction
    ``missing_fraction`` of magnitudes is left empty (masked). Known variables are flagged
    ``VarFlag='VARIABLE'`` (gaia style) or ``variable`` (normalised).

    ``settings`` is a :class:`CatalogSimSettings`; ``keywords`` are any of its fields
    (override it; the keywords this function always took). The imperfections
    (``drop_fraction``, ``spurious``, ``flag_variables``, ``merge_blends``, ``error_scale``;
    each off by default) draw from their own random stream.
    """
    s = CatalogSimSettings.from_keywords(settings, **keywords)
    rng = np.random.default_rng([seed, 11])
    e, keep = _field_entries(field, bands, s.faint_limit)
    if s.extra_stars:
        _add_outside_stars(e, field, bands, s.extra_stars, rng)
    e.errs = {b: catalog_errors(e.mags[b], s.floor) for b in bands}
    e.obs = {b: e.mags[b] + rng.normal(0.0, e.errs[b]) for b in bands}
    e.sim_id = np.concatenate([np.array(field.stars["star_id"])[keep],
                               np.full(len(e) - int(keep.sum()), -1)])
    if s.spoils:
        _spoil(e, field, bands, seed, s)
    t = Table(meta={"description": "simulated reference catalog", "epoch": field.catalog_epoch})
    if s.style == "normalised":
        return _normalised_table(t, e, bands, field.catalog_epoch, s.truth_column)
    return _vizier_table(t, e, bands, field.catalog_epoch, s, rng)
