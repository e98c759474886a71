"""What each supported reference catalog looks like: columns, bands, epochs, flags.

A :class:`CatalogSpec` tells :func:`~glue_zeropoint.catalogs.normalize_catalog` where to find the
identifier, the position and its epoch, the proper motions, the magnitude and error columns of
each band and the flags of a catalog, and tells the query layer which VizieR table to ask and
which columns to ask for. Column names are VizieR's labels (``r'mag`` stays ``r'mag``).

Columns that exist
------------------
VizieR drops an unknown ``-out`` column without a word, so a wrong name in a spec would quietly
lose a band, an error or a flag. Therefore every column a spec names is checked against the
answer (:func:`check_answer_columns`): a column asked for by name and missing from the answer is
a :class:`MissingColumnsError` naming the column and the catalog. The only exceptions are the
columns in ``optional`` (used when present, never asked for by name, each with its reason), and
two documented spellings of a label in VizieR's VOTables (``aliases``): a label with an
apostrophe may come back with an underscore (``g'mag`` as ``g_mag``), and converted date columns
may come back as ``_tab1_<n>``; such a column is renamed to the label.

Each spec records in ``source`` where its column list comes from. What was checked, and what
could not be (see also the comments by each spec):

* UCAC4 ``I/322A/out``: ``UCAC4``, ``pmRA``, ``pmDE``, ``Bmag``, ``Vmag``, ``gmag``, ``rmag``,
  ``imag`` and their ``e_`` errors from VizieR's own column listing of ``I/322A/out`` and from
  pipelines that query it by these names; VizieR renamed the positions from
  ``RAJ2000``/``DEJ2000`` to ``RA_ICRS``/``DE_ICRS`` in 2024. Positions are the mean positions
  at epoch J2000.0 (VizieR: "Mean right ascension (ICRS), Ep=J2000"); ``EpRA``/``EpDE`` are the
  central epochs of the observations, not the epoch of the positions, so they are not used.
* APASS DR9 ``II/336/apass9``: ``recno RAJ2000 DEJ2000 e_RAJ2000 e_DEJ2000 Field nobs mobs B-V
  e_B-V Vmag e_Vmag Bmag e_Bmag g'mag e_g'mag r'mag e_r'mag i'mag e_i'mag`` (VizieR's column
  listing). No star identifier: ``recno`` is VizieR's record number ("Should Not be used for
  identification"), so ids are made from the position. No proper motions; epoch J2000.0.
* Gaia DR3 synthetic photometry ``I/360/syntphot`` (GSPC, Montegriffo et al. 2023): the Gaia
  table has ``source_id``, ``c_star`` and, per band, flux, flux error, magnitude and a flag (1 =
  G and BP-RP inside the validated range) but no magnitude errors and no positions. VizieR's
  names: ``Source``, ``RA_ICRS``/``DE_ICRS`` (added by VizieR, epoch J2016.0), ``Umag`` ...
  ``Imag`` (Johnson-Kron-Cousins), ``umag`` ... ``zmag`` (standardised SDSS), ``FU`` ... and
  ``e_FU`` ... (fluxes and errors), ``UFlag`` .... The magnitude error is derived from the flux
  error (1.0857 e_F/F); a magnitude whose flag is not 1 is set to NaN in ``mag_<band>``. The
  PS1 ``y`` band of the GSPC is not used (known GaiaXPy bug: no faint-end offset). No proper
  motions and no variability flag: a companion query of the Gaia DR3 main table
  ``I/355/gaiadr3`` (same cone, joined on ``Source``) adds ``pmRA``, ``pmDE`` and ``VarFlag``.
* ATLAS-Refcat2 ``J/ApJ/867/105/refcat2`` (the catalog's one table): ``RA_ICRS``, ``DE_ICRS``
  (Gaia DR2, epoch J2015.5), ``Plx``, ``pmRA``, ``pmDE`` and errors, ``Gmag``, ``gmag`` ...
  ``zmag`` with ``e_`` errors (Pan-STARRS system), ``dupvar``, ``rp1``, ``r1``; no star
  identifier (ids from the position). ``dupvar`` is Gaia's variability flag coded CONSTANT (0),
  VARIABLE (1), NOT_AVAILABLE (2), plus 4 for a DUPLICATE (Tonry et al. 2018, README): a star is
  variable when ``dupvar % 4 == 1`` and a Gaia duplicate when ``dupvar >= 4``.
* Pan-STARRS1 DR1 ``II/349/ps1``: ``objID``, ``RAJ2000``, ``DEJ2000``, ``gmag`` ... ``ymag``
  and ``e_`` errors. No proper motions. The mean epoch of the positions comes in the default
  set but under a name we could not confirm (``Epoch`` in VizieR's column list; astroquery
  answers show it as ``_tab1_10``): it is optional, and without proper motions it only labels
  the positions.
* Landolt (1992) ``II/183A/table2``: ``Star``, ``RAJ2000``/``DEJ2000`` (sexagesimal), ``Vmag``,
  ``B-V``, ``U-B``, ``V-R``, ``R-I``, ``V-I`` and their ``e_`` errors; U, B, R and I are made
  from V and the colours.
* SIMBAD (TAP) gives ``main_id``, ``ra``, ``dec`` (ICRS, J2000), ``otype`` and, through
  ``add_votable_fields('B', 'V', 'R', 'I')``, the fluxes in columns ``B``, ``V``, ``R``, ``I``
  (no errors). Variables are recognised from ``otype`` (V* and its children, candidates
  included), galaxies, nebulae and clusters are ``nonstellar``.

No VizieR ``recno`` is ever used as an identifier: it is a row number of one VizieR table
version, not a name of a star.
"""

from dataclasses import dataclass, field

from ..exceptions import CatalogError

__all__ = ["CatalogSpec", "CATALOG_SPECS", "get_spec", "spec_for", "default_catalogs_for_band",
           "SIMBAD_SPEC", "JOHNSON_BANDS", "SLOAN_BANDS", "MissingColumnsError",
           "check_answer_columns", "named_columns"]

JOHNSON_BANDS = ("U", "B", "V", "R", "I")
SLOAN_BANDS = ("u", "g", "r", "i", "z")

#: ``-out`` entries that are not column names: VizieR's default set and "all columns".
_NOT_NAMES = ("*", "**", "all")


class MissingColumnsError(CatalogError):
    """A VizieR answer lacks columns that were asked for by name (VizieR drops unknown ones)."""


@dataclass(frozen=True)
class CatalogSpec:
    """Description of one reference catalog.

    Parameters
    ----------
    id : str
        VizieR catalog identifier (``'II/336/apass9'``) or ``'simbad'``.
    title : str
        Human-readable name.
    service : str
        ``'vizier'`` or ``'simbad'``.
    table : str or None
        The VizieR table queried (``-source``) when it differs from ``id`` (e.g.
        ``'J/ApJ/867/105/refcat2'``).
    id_column, ra_column, dec_column : str
        Identifier and position columns (degrees, or sexagesimal strings). ``id_column`` None:
        the catalog has no star identifier and ids are made from the position.
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
        (``dupvar % 4 == 1``), ``'simbad_otype'``, ``'nonzero'``.
    columns : tuple
        Columns to ask VizieR for besides the ones named above (``'*'`` = the table's default
        set).
    optional : tuple
        Columns named above that are *not* asked for by name and may be missing from an
        answer (each one with its reason in the spec's comment); every other named column
        must be in the answer (:func:`check_answer_columns`).
    aliases : dict
        ``label -> (other names, ...)`` under which VizieR's VOTable may return a column; the
        column is renamed to its label. A label with an apostrophe always also matches its
        underscore form.
    companion : tuple or None
        ``(catalog id, key column, columns)`` of a second cone query joined on ``key column``
        (used for proper motions and the Gaia variability flag of ``I/360/syntphot``).
    source : str
        Where the column names come from (ReadMe, VizieR column listing, ...).
    """

    id: str
    title: str
    service: str = "vizier"
    table: str | None = None
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
    optional: tuple = ()
    aliases: dict = field(default_factory=dict)
    companion: tuple | None = None
    source: str = ""

    @property
    def spec_string(self):
        """The string form used in ``meta['catalog']`` (``'vizier:<id>'`` or ``'simbad'``)."""
        return "simbad" if self.service == "simbad" else f"vizier:{self.id}"

    @property
    def vizier_table(self):
        """The VizieR table to query (``-source``)."""
        return self.table or self.id

    @property
    def band_names(self):
        return list(self.bands)

    def used_columns(self):
        """Every column the spec names (id, position, epoch, motions, bands, flags), in order."""
        names = [self.id_column, self.ra_column, self.dec_column, self.epoch_column,
                 self.pmra_column, self.pmdec_column]
        for mag, err in self.bands.values():
            names += [mag, err]
        for flux, err in self.flux_errors.values():
            names += [flux, err]
        names += [flag for flag, _ in self.band_flags.values()]
        names += [col for col, _ in self.variable]
        return list(dict.fromkeys(n for n in names if n))

    def request_columns(self):
        """The VizieR ``-out`` column list: ``columns`` plus every named, non-optional column.

        Columns that come from the companion query are left out.
        """
        wanted = list(self.columns)
        skip = set(self.optional)
        if self.companion:
            skip |= set(self.companion[2]) - {self.companion[1]}
        for col in self.used_columns():
            if col not in wanted and col not in skip:
                wanted.append(col)
        return wanted

    def answer_names(self, label):
        """The names under which a VizieR answer may carry column ``label``, label first."""
        names = [label, *self.aliases.get(label, ())]
        if "'" in label:
            names.append(label.replace("'", "_"))
        return list(dict.fromkeys(names))


def named_columns(columns):
    """The column names in a VizieR ``-out`` list (no ``*``, no computed ``_`` columns).

    Sort prefixes (``+Vmag``, ``-Vmag``) are removed.
    """
    names = []
    for col in columns or ():
        col = str(col).strip()
        if col[:1] in "+-":
            col = col[1:]
        if not col or col in _NOT_NAMES or col.startswith("_"):
            continue
        names.append(col)
    return list(dict.fromkeys(names))


def check_answer_columns(table, catalog_id, columns):
    """Check that a VizieR answer has every column asked for by name; rename known aliases.

    VizieR silently drops an ``-out`` column it does not know, so an answer without one of
    ``columns`` means a wrong column name (or a changed catalog), never "no data".

    Parameters
    ----------
    table : `~astropy.table.Table`
        The answer (modified in place: alias columns get their label, see
        :attr:`CatalogSpec.aliases`).
    catalog_id : str
        The catalog or table queried (finds the spec for aliases and optional columns).
    columns : list of str
        The ``-out`` list that was sent.

    Raises
    ------
    MissingColumnsError
        Naming every missing column, the catalog and the columns the answer has.
    """
    spec = spec_for(catalog_id)
    missing = []
    for label in [*named_columns(columns), *spec.optional]:
        if label in table.colnames:
            continue
        found = next((n for n in spec.answer_names(label)[1:] if n in table.colnames), None)
        if found is not None:
            table.rename_column(found, label)
        elif label not in spec.optional:
            missing.append(label)
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise MissingColumnsError(
            f"VizieR ({catalog_id}) answered without the column{plural} "
            f"{', '.join(repr(m) for m in missing)} asked for; VizieR drops column names it "
            f"does not know, so the name is wrong or the catalog has changed. Columns "
            f"received: {', '.join(table.colnames) or '(none)'}. Fix the spec in "
            f"glue_zeropoint/catalogs/specs.py, or ask for existing columns with columns=...")
    return table


def _jc(*bands, fmt="{b}mag", err="e_{b}mag"):
    return {b: (fmt.format(b=b), err.format(b=b) if err else None) for b in bands}


#: GSPC bands used: Johnson-Kron-Cousins UBVRI and standardised SDSS ugriz (not PS1 y).
_SYNTPHOT_BANDS = ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z")

CATALOG_SPECS = {
    spec.id: spec for spec in [
        # APASS DR9. Columns: VizieR's column listing of II/336/apass9 (recno RAJ2000 DEJ2000
        # e_RAJ2000 e_DEJ2000 Field nobs mobs B-V e_B-V Vmag e_Vmag Bmag e_Bmag g'mag e_g'mag
        # r'mag e_r'mag i'mag e_i'mag), all in the default set. The Sloan columns are optional:
        # they come with '*', and astroquery answers have been seen with g_mag for g'mag
        # (alias). No identifier (recno is a VizieR row number): ids from the position.
        CatalogSpec(
            id="II/336/apass9", title="APASS DR9 (Henden et al. 2015)",
            id_column=None, ra_column="RAJ2000", dec_column="DEJ2000", epoch=2000.0,
            bands={"B": ("Bmag", "e_Bmag"), "V": ("Vmag", "e_Vmag"),
                   "g": ("g'mag", "e_g'mag"), "r": ("r'mag", "e_r'mag"),
                   "i": ("i'mag", "e_i'mag")},
            optional=("g'mag", "e_g'mag", "r'mag", "e_r'mag", "i'mag", "e_i'mag"),
            source="VizieR column listing of II/336/apass9 (ReadMe II/336)"),
        # Gaia DR3 GSPC. Gaia archive data model synthetic_photometry_gspc (source_id, c_star,
        # <band>_jkc_flux/_flux_error/_mag/_flag, ...). VizieR names Source, RA_ICRS, DE_ICRS,
        # <b>mag, F<b>, e_F<b>, <b>Flag: from pipelines querying I/360/syntphot by these names
        # (STDPipe: F<b>/e_F<b> for U B V R I u g r i z; others: Source, RA_ICRS, DE_ICRS,
        # Bmag BFlag Vmag VFlag Rmag RFlag Imag IFlag gmag gFlag rmag rFlag imag iFlag); the
        # ReadMe's byte-by-byte table itself could not be read. UFlag, uFlag, zFlag follow the
        # same pattern (not seen by name).
        CatalogSpec(
            id="I/360/syntphot", title="Gaia DR3 synthetic photometry (GSPC)",
            id_column="Source", ra_column="RA_ICRS", dec_column="DE_ICRS", epoch=2016.0,
            pmra_column="pmRA", pmdec_column="pmDE",
            bands={b: (f"{b}mag", None) for b in _SYNTPHOT_BANDS},
            flux_errors={b: (f"F{b}", f"e_F{b}") for b in _SYNTPHOT_BANDS},
            band_flags={b: (f"{b}Flag", 1) for b in _SYNTPHOT_BANDS},
            variable=(("VarFlag", "gaia_varflag"),),
            columns=(),
            # I/355/gaiadr3: Source, RA_ICRS, DE_ICRS, Gmag, pmRA, pmDE in its default set;
            # VarFlag asked for by name (as other pipelines do: '*', ..., 'VarFlag', 'Dup').
            companion=("I/355/gaiadr3", "Source", ("Source", "pmRA", "pmDE", "VarFlag")),
            source="Gaia DR3 data model (synthetic_photometry_gspc) + VizieR names as used "
                   "by pipelines querying I/360/syntphot (STDPipe and others)"),
        # ATLAS-Refcat2: the catalog has one table, J/ApJ/867/105/refcat2. Names from
        # pipelines querying it (RA_ICRS DE_ICRS Plx e_Plx pmRA e_pmRA pmDE e_pmDE Gmag e_Gmag
        # gmag e_gmag rmag e_rmag imag e_imag zmag e_zmag e_Jmag e_Kmag dupvar rp1 r1), meaning
        # of the fields (epoch 2015.5, dupvar coding) from the Refcat2 README (Tonry 2018).
        CatalogSpec(
            id="J/ApJ/867/105", title="ATLAS-Refcat2 (Tonry et al. 2018)",
            table="J/ApJ/867/105/refcat2",
            id_column=None, ra_column="RA_ICRS", dec_column="DE_ICRS", epoch=2015.5,
            pmra_column="pmRA", pmdec_column="pmDE",
            bands=_jc("g", "r", "i", "z"), variable=(("dupvar", "refcat2"),),
            source="Refcat2 README (Tonry et al. 2018, fields and dupvar coding) + VizieR "
                   "names as used by pipelines querying J/ApJ/867/105/refcat2"),
        # UCAC4: VizieR's column listing of I/322A/out (UCAC4 RAJ2000 DEJ2000 ePos f.mag of db
        # pmRA pmDE Jmag Kmag Bmag Vmag rmag imag H A b h Z B L N S, default set) plus gmag and
        # the e_ errors (asked for by name in other pipelines: Bmag,Vmag,gmag,rmag,imag,e_Vmag,
        # e_Bmag,e_gmag,e_rmag,e_imag,UCAC4). Positions renamed RA_ICRS/DE_ICRS by VizieR in
        # 2024; they are mean positions at J2000.0 (EpRA/EpDE are observation epochs).
        CatalogSpec(
            id="I/322A", title="UCAC4 (Zacharias et al. 2013)", table="I/322A/out",
            id_column="UCAC4", ra_column="RA_ICRS", dec_column="DE_ICRS", epoch=2000.0,
            pmra_column="pmRA", pmdec_column="pmDE",
            bands=_jc("B", "V", "g", "r", "i"),
            source="VizieR column listing of I/322A/out; RA_ICRS/DE_ICRS since VizieR's 2024 "
                   "renaming"),
        # Pan-STARRS1 DR1: objID RAJ2000 DEJ2000 e_RAJ2000 e_DEJ2000 Qual Nd gmag e_gmag ...
        # ymag e_ymag (pipelines querying II/349/ps1 by these names). The mean epoch is in
        # the default set, named Epoch in VizieR's list but returned as _tab1_10 to
        # astroquery: optional (no proper motions, so it does not move the positions).
        CatalogSpec(
            id="II/349/ps1", title="Pan-STARRS1 DR1 (Chambers et al. 2016)",
            id_column="objID", ra_column="RAJ2000", dec_column="DEJ2000", epoch=2000.0,
            epoch_column="Epoch", optional=("Epoch",), aliases={"Epoch": ("_tab1_10",)},
            bands=_jc("g", "r", "i", "z", "y"),
            source="VizieR names as used by pipelines querying II/349/ps1; epoch column "
                   "name unconfirmed"),
        # Landolt (1992): II/183A/table2, Star RAJ2000 DEJ2000 (sexagesimal) Vmag e_Vmag B-V
        # e_B-V U-B e_U-B V-R e_V-R R-I e_R-I V-I e_V-I (pipelines and plugins querying it).
        CatalogSpec(
            id="II/183A", title="Landolt (1992) UBVRI standards", table="II/183A/table2",
            id_column="Star", ra_column="RAJ2000", dec_column="DEJ2000", epoch=2000.0,
            bands={"V": ("Vmag", "e_Vmag")},
            columns=("*", "B-V", "e_B-V", "U-B", "e_U-B", "V-R", "e_V-R", "R-I", "e_R-I",
                     "V-I", "e_V-I"),
            source="VizieR names of II/183A/table2 as used by pipelines and plugins"),
    ]
}

SIMBAD_SPEC = CatalogSpec(
    id="simbad", title="SIMBAD (CDS)", service="simbad", id_column="main_id",
    ra_column="ra", dec_column="dec", epoch=2000.0,
    bands={b: (b, None) for b in ("B", "V", "R", "I")},
    variable=(("otype", "simbad_otype"),), otype_column="otype", columns=())

#: Default catalogs by band, best first (docs/architecture.md section 6).
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
