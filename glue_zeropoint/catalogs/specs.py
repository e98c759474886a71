"""What each supported reference catalog looks like: columns, bands, epochs, flags.

A :class:`CatalogSpec` tells :func:`~glue_zeropoint.catalogs.normalize_catalog` where to find the
identifier, the position and its epoch, the proper motions, the magnitude and error columns of
each band and the flags of a catalog, and tells the query layer which columns to ask for.
Column names are VizieR's native ones (``r'mag`` stays ``r'mag``).

Decisions worth knowing
-----------------------
* Gaia DR3 synthetic photometry (``I/360/syntphot``, the GSPC of Montegriffo et al. 2023) has
  positions (``RA_ICRS``/``DE_ICRS``, Gaia epoch J2016.0), the magnitudes ``Umag`` ...
  ``Imag`` (Johnson-Kron-Cousins) and ``umag`` ... ``zmag`` (SDSS), the fluxes ``FU`` ... with
  errors ``e_FU`` ..., and per-band flags ``UFlag`` ... (1 = inside the validated colour range).
  It has no proper motions and no variability flag, so its spec names a *companion* query to
  the Gaia DR3 main table ``I/355/gaiadr3`` (same cone, joined on the Gaia ``Source`` id) for
  ``pmRA``/``pmDE`` and ``VarFlag``. Magnitude errors are derived from the flux errors
  (1.0857 e_F/F). A magnitude whose flag is 0 (outside the validated range) is set to NaN in
  ``mag_<band>`` (the original column keeps it).
* ATLAS-Refcat2 (``J/ApJ/867/105``) positions are at epoch J2015.5 with proper motions;
  ``dupvar`` = 1 marks a Gaia variable (2 = duplicate).
* APASS DR9 has no proper motions; positions are taken as epoch J2000.0.
* SIMBAD (TAP) gives ``main_id``, ``ra``, ``dec`` (ICRS, J2000), ``otype`` and, through
  ``add_votable_fields('B', 'V', 'R', 'I')``, the fluxes in columns ``B``, ``V``, ``R``, ``I``
  (no errors). Variables are recognised from ``otype`` (V* and its children, candidates
  included), galaxies, nebulae and clusters are ``nonstellar``.
"""

from dataclasses import dataclass, field

from ..exceptions import CatalogError

__all__ = ["CatalogSpec", "CATALOG_SPECS", "get_spec", "spec_for", "default_catalogs_for_band",
           "SIMBAD_SPEC", "JOHNSON_BANDS", "SLOAN_BANDS"]

JOHNSON_BANDS = ("U", "B", "V", "R", "I")
SLOAN_BANDS = ("u", "g", "r", "i", "z")


@dataclass(frozen=True)
class CatalogSpec:
    """Description of one reference catalog.

    Parameters
    ----------
    id : str
        VizieR identifier (``'II/336/apass9'``) or ``'simbad'``.
    title : str
        Human-readable name.
    service : str
        ``'vizier'`` or ``'simbad'``.
    id_column, ra_column, dec_column : str
        Identifier and position columns (degrees, or sexagesimal strings).
    epoch : float
        Julian year of the positions when no ``epoch_column`` gives it per row.
    epoch_column : str or None
        Column with the position epoch per row (Julian year, or MJD when > 3000).
    pmra_column, pmdec_column : str or None
        Proper motion columns (mas/yr, ``pmra`` includes cos dec).
    bands : dict
        ``band -> (magnitude column, error column or None)``.
    flux_errors : dict
        ``band -> (flux column, flux error column)``: magnitude error derived from the flux
        error when the catalog gives no magnitude error.
    band_flags : dict
        ``band -> (flag column, good value)``: a magnitude whose flag differs is set to NaN.
    variable : tuple
        ``(column, rule)`` pairs; rules ``'gaia_varflag'`` (value ``VARIABLE``), ``'refcat2'``
        (``dupvar == 1``), ``'simbad_otype'``, ``'nonzero'``.
    columns : tuple
        Columns to ask VizieR for (``'*'`` = the catalog's default set).
    companion : tuple or None
        ``(catalog id, key column, columns)`` of a second cone query joined on ``key column``
        (used for proper motions and the Gaia variability flag of ``I/360/syntphot``).
    """

    id: str
    title: str
    service: str = "vizier"
    id_column: str | None = None
    ra_column: str = "RAJ2000"
    dec_column: str = "DEJ2000"
    epoch: float = 2000.0
    epoch_column: str | None = None
    pmra_column: str | None = None
    pmdec_column: str | None = None
    bands: dict = field(default_factory=dict)
    flux_errors: dict = field(default_factory=dict)
    band_flags: dict = field(default_factory=dict)
    variable: tuple = ()
    otype_column: str | None = None
    columns: tuple = ("*",)
    companion: tuple | None = None

    @property
    def spec_string(self):
        """The string form used in ``meta['catalog']`` (``'vizier:<id>'`` or ``'simbad'``)."""
        return "simbad" if self.service == "simbad" else f"vizier:{self.id}"

    @property
    def band_names(self):
        return list(self.bands)

    def request_columns(self):
        """The VizieR ``-out`` column list (``'*'`` plus every column the spec needs)."""
        wanted = list(self.columns)
        extra = [self.id_column, self.ra_column, self.dec_column, self.epoch_column,
                 self.pmra_column, self.pmdec_column]
        for mag, err in self.bands.values():
            extra += [mag, err]
        for flux, err in self.flux_errors.values():
            extra += [flux, err]
        extra += [flag for flag, _ in self.band_flags.values()]
        extra += [col for col, _ in self.variable]
        from_companion = set()
        if self.companion:
            from_companion = set(self.companion[2]) - {self.companion[1]}
        for col in extra:
            if col and col not in wanted and col not in from_companion:
                wanted.append(col)
        return wanted


def _jc(*bands, fmt="{b}mag", err="e_{b}mag"):
    return {b: (fmt.format(b=b), err.format(b=b) if err else None) for b in bands}


_SYNTPHOT_BANDS = ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z")

CATALOG_SPECS = {
    spec.id: spec for spec in [
        CatalogSpec(
            id="II/336/apass9", title="APASS DR9 (Henden et al. 2015)",
            id_column="recno", ra_column="RAJ2000", dec_column="DEJ2000", epoch=2000.0,
            bands={"B": ("Bmag", "e_Bmag"), "V": ("Vmag", "e_Vmag"),
                   "g": ("g'mag", "e_g'mag"), "r": ("r'mag", "e_r'mag"),
                   "i": ("i'mag", "e_i'mag")},
            columns=("*", "recno")),
        CatalogSpec(
            id="I/360/syntphot", title="Gaia DR3 synthetic photometry (GSPC)",
            id_column="Source", ra_column="RA_ICRS", dec_column="DE_ICRS", epoch=2016.0,
            pmra_column="pmRA", pmdec_column="pmDE",
            bands={b: (f"{b}mag", None) for b in _SYNTPHOT_BANDS},
            flux_errors={b: (f"F{b}", f"e_F{b}") for b in _SYNTPHOT_BANDS},
            band_flags={b: (f"{b}Flag", 1) for b in _SYNTPHOT_BANDS},
            variable=(("VarFlag", "gaia_varflag"),),
            columns=("Source", "RA_ICRS", "DE_ICRS"),
            companion=("I/355/gaiadr3", "Source", ("Source", "pmRA", "pmDE", "VarFlag"))),
        CatalogSpec(
            id="J/ApJ/867/105", title="ATLAS-Refcat2 (Tonry et al. 2018)",
            id_column=None, ra_column="RA_ICRS", dec_column="DE_ICRS", epoch=2015.5,
            pmra_column="pmRA", pmdec_column="pmDE",
            bands=_jc("g", "r", "i", "z"), variable=(("dupvar", "refcat2"),),
            columns=("*", "dupvar")),
        CatalogSpec(
            id="I/322A", title="UCAC4 (Zacharias et al. 2013)",
            id_column="UCAC4", ra_column="RAJ2000", dec_column="DEJ2000", epoch=2000.0,
            pmra_column="pmRA", pmdec_column="pmDE",
            bands=_jc("B", "V", "g", "r", "i")),
        CatalogSpec(
            id="II/349/ps1", title="Pan-STARRS1 DR1 (Chambers et al. 2016)",
            id_column="objID", ra_column="RAJ2000", dec_column="DEJ2000", epoch=2000.0,
            epoch_column="Epoch",
            bands=_jc("g", "r", "i", "z", "y")),
        CatalogSpec(
            id="II/183A", title="Landolt (1992) UBVRI standards",
            id_column="Star", ra_column="RAJ2000", dec_column="DEJ2000", epoch=2000.0,
            bands={"V": ("Vmag", "e_Vmag")}),
    ]
}

SIMBAD_SPEC = CatalogSpec(
    id="simbad", title="SIMBAD (CDS)", service="simbad", id_column="main_id",
    ra_column="ra", dec_column="dec", epoch=2000.0,
    bands={b: (b, None) for b in ("B", "V", "R", "I")},
    variable=(("otype", "simbad_otype"),), otype_column="otype", columns=())

#: Default catalogs by band, best first (DESIGN.md section 6).
DEFAULTS = {
    **{b: ("I/360/syntphot", "II/336/apass9") for b in JOHNSON_BANDS},
    **{b: ("J/ApJ/867/105",) for b in ("g", "r", "i", "z")},
}


def get_spec(catalog_id):
    """The spec of a VizieR catalog id (or ``'simbad'``), or None when unknown.

    A sub-table id (``'J/ApJ/867/105/refcat2'``) finds its parent's spec.
    """
    if catalog_id is None:
        return None
    key = str(catalog_id).strip()
    if key.lower() == "simbad":
        return SIMBAD_SPEC
    if key.lower().startswith("vizier:"):
        key = key[7:]
    while key:
        if key in CATALOG_SPECS:
            return CATALOG_SPECS[key]
        if "/" not in key:
            break
        key = key.rsplit("/", 1)[0]
    return None


def spec_for(catalog_id):
    """Like :func:`get_spec`, but a generic spec (auto-detected columns) for unknown ids."""
    spec = get_spec(catalog_id)
    if spec is not None:
        return spec
    key = str(catalog_id)
    if key.lower().startswith("vizier:"):
        key = key[7:]
    return CatalogSpec(id=key, title=f"VizieR {key}", id_column=None, ra_column="",
                       dec_column="")


def default_catalogs_for_band(band):
    """The catalog ids to try, best first, for ``spec='default'`` and ``band``.

    Raises
    ------
    CatalogError
        If ``band`` is None or has no default catalog.
    """
    if band is None:
        raise CatalogError("catalog 'default' is chosen by band: pass band= (e.g. 'V' or 'r') "
                           "or name a catalog such as vizier:II/336/apass9")
    band = str(band).strip()
    if band.endswith("'"):
        band = band[:-1]
    if band in DEFAULTS:
        return DEFAULTS[band]
    raise CatalogError(f"no default catalog for band {band!r}; defaults exist for "
                       f"{', '.join(DEFAULTS)}. Name a catalog instead, e.g. vizier:II/349/ps1")
