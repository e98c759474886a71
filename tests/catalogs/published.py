"""The columns VizieR publishes for each supported catalog, and synthetic answers built from them.

``PUBLISHED[catalog id]`` lists ``(name, unit, dtype, description)`` of the columns this project
relies on or documents, with the source the names were taken from (``SOURCES``). The lists are
not every column of every table (UCAC4 has more), only the ones checked. Where a name could not
be confirmed the entry says so.

``write_answers()`` writes ``tests/data/cds/synthetic_<name>.xml``: VizieR-style VOTable answers
with exactly these columns and units, values made up (derived/synthetic, see
``tests/data/MANIFEST.md``). Run ``python tests/catalogs/published.py`` to rebuild them.
"""

import sys
from pathlib import Path

import numpy as np
from astropy.table import MaskedColumn, Table

DATA = Path(__file__).parent.parent / "data" / "cds"
CENTER = (150.0, 20.0)

_DEG, _MAG, _PM = "deg", "mag", "mas / yr"

SOURCES = {
    "II/336/apass9": "VizieR column listing of II/336/apass9 (ReadMe II/336, Henden+ 2016)",
    "I/322A": "VizieR column listing of I/322A/out (default set) + gmag and e_ errors as "
              "queried by name by other pipelines; RA_ICRS/DE_ICRS since VizieR's 2024 renaming",
    "I/360/syntphot": "Gaia DR3 data model synthetic_photometry_gspc + VizieR names used by "
                      "pipelines querying I/360/syntphot (STDPipe: F<b>, e_F<b>)",
    "I/355/gaiadr3": "VizieR names used by pipelines querying I/355/gaiadr3",
    "J/ApJ/867/105": "Refcat2 README (Tonry+ 2018) + VizieR names used by pipelines querying "
                     "J/ApJ/867/105/refcat2",
    "II/349/ps1": "VizieR names used by pipelines querying II/349/ps1 (epoch column as "
                  "astroquery returns it: _tab1_10)",
    "II/183A": "VizieR names of II/183A/table2 used by pipelines and plugins (Landolt 1992)",
}

#: VizieR table answering each catalog id
TABLES = {"II/336/apass9": "II/336/apass9", "I/322A": "I/322A/out",
          "I/360/syntphot": "I/360/syntphot", "I/355/gaiadr3": "I/355/gaiadr3",
          "J/ApJ/867/105": "J/ApJ/867/105/refcat2", "II/349/ps1": "II/349/ps1",
          "II/183A": "II/183A/table2"}

FILES = {"II/336/apass9": "synthetic_apass9.xml", "I/322A": "synthetic_ucac4.xml",
         "I/360/syntphot": "synthetic_syntphot.xml", "I/355/gaiadr3": "synthetic_gaiadr3.xml",
         "J/ApJ/867/105": "synthetic_refcat2.xml", "II/349/ps1": "synthetic_ps1.xml",
         "II/183A": "synthetic_landolt.xml"}


def _mags(bands, fmt="{b}mag", err="e_{b}mag", what="{b} magnitude"):
    cols = []
    for b in bands:
        cols.append((fmt.format(b=b), _MAG, "f4", what.format(b=b)))
        cols.append((err.format(b=b), _MAG, "f4", f"{fmt.format(b=b)} uncertainty"))
    return cols


PUBLISHED = {
    "II/336/apass9": [
        ("recno", None, "i4", "Record number assigned by the VizieR team. Should Not be used "
                              "for identification."),
        ("RAJ2000", _DEG, "f8", "Right ascension in decimal degrees (J2000)"),
        ("DEJ2000", _DEG, "f8", "Declination in decimal degrees (J2000)"),
        ("e_RAJ2000", "arcsec", "f4", "RA uncertainty"),
        ("e_DEJ2000", "arcsec", "f4", "DEC uncertainty"),
        ("Field", None, "i8", "Field name"),
        ("nobs", None, "i2", "Number of observed nights"),
        ("mobs", None, "i2", "Number of images for this field, usually nobs*5"),
        ("B-V", _MAG, "f4", "B-V color index"),
        ("e_B-V", _MAG, "f4", "B-V uncertainty"),
        ("Vmag", _MAG, "f4", "Johnson V-band magnitude"),
        ("e_Vmag", _MAG, "f4", "Vmag uncertainty"),
        ("Bmag", _MAG, "f4", "Johnson B-band magnitude"),
        ("e_Bmag", _MAG, "f4", "Bmag uncertainty"),
        ("g'mag", _MAG, "f4", "g'-band AB magnitude, Sloan filter"),
        ("e_g'mag", _MAG, "f4", "g'mag uncertainty"),
        ("r'mag", _MAG, "f4", "r'-band AB magnitude, Sloan filter"),
        ("e_r'mag", _MAG, "f4", "r'mag uncertainty"),
        ("i'mag", _MAG, "f4", "i'-band AB magnitude, Sloan filter"),
        ("e_i'mag", _MAG, "f4", "i'mag uncertainty"),
    ],
    "I/322A": [
        ("UCAC4", None, "U10", "UCAC4 recommended identifier (ZZZ-NNNNNN)"),
        ("RA_ICRS", _DEG, "f8", "Mean right ascension (ICRS), Ep=J2000"),
        ("DE_ICRS", _DEG, "f8", "Mean declination (ICRS), Ep=J2000"),
        ("ePos", "mas", "i2", "Total mean error on position at Ep=J2000"),
        ("f.mag", _MAG, "f4", "UCAC fit model magnitude (579-642nm)"),
        ("of", None, "i2", "UCAC4 object classification flag"),
        ("db", None, "i2", "UCAC4 double star flag"),
        ("pmRA", _PM, "f4", "Proper motion in RA(*cos(Dec))"),
        ("pmDE", _PM, "f4", "Proper motion in Dec"),
        ("Jmag", _MAG, "f4", "2MASS J magnitude"),
        ("Kmag", _MAG, "f4", "2MASS Ks magnitude"),
        *_mags("BVgri", what="{b} magnitude from APASS"),
        ("H", None, "i2", "Hipparcos/Tycho flag"),
        ("A", None, "i2", "AC2000 flag"),
        ("b", None, "i2", "AGK2 Bonn match flag"),
        ("h", None, "i2", "AGK2 Hamburg match flag"),
        ("Z", None, "i2", "Zone astrographic match flag"),
        ("B", None, "i2", "Black Birch match flag"),
        ("L", None, "i2", "Lick Astrographic match flag"),
        ("N", None, "i2", "NPM Lick match flag"),
        ("S", None, "i2", "SPM Lick match flag"),
    ],
    "I/360/syntphot": [
        ("Source", None, "i8", "Gaia DR3 unique source identifier"),
        ("RA_ICRS", _DEG, "f8", "Right ascension (ICRS) at Ep=2016.0 (from Gaia DR3)"),
        ("DE_ICRS", _DEG, "f8", "Declination (ICRS) at Ep=2016.0 (from Gaia DR3)"),
        *[col for b in "UBVRIugriz" for col in (
            (f"F{b}", "W / (m2 nm)" if b in "UBVRI" else "W / (m2 Hz)", "f4",
             f"{b} flux (synthetic photometry)"),
            (f"e_F{b}", "W / (m2 nm)" if b in "UBVRI" else "W / (m2 Hz)", "f4",
             f"Error on the {b} flux"),
            (f"{b}mag", _MAG, "f4", f"{b} magnitude (synthetic photometry)"),
            (f"{b}Flag", None, "i2", "[0/1] 1 = G mag and BP-RP inside the validated range"),
        )],
    ],
    "I/355/gaiadr3": [
        ("Source", None, "i8", "Unique source identifier (unique within a particular Data "
                               "Release)"),
        ("RA_ICRS", _DEG, "f8", "Right ascension (ICRS) at Ep=2016.0"),
        ("DE_ICRS", _DEG, "f8", "Declination (ICRS) at Ep=2016.0"),
        ("pmRA", _PM, "f8", "Proper motion in right ascension direction, pmRA*cosDE"),
        ("pmDE", _PM, "f8", "Proper motion in declination direction"),
        ("Gmag", _MAG, "f4", "G-band mean magnitude"),
        ("VarFlag", None, "U13", "Photometric variability flag"),
    ],
    "J/ApJ/867/105": [
        ("RA_ICRS", _DEG, "f8", "Right ascension from Gaia DR2, epoch 2015.5"),
        ("DE_ICRS", _DEG, "f8", "Declination from Gaia DR2, epoch 2015.5"),
        ("Plx", "mas", "f4", "Parallax from Gaia DR2"),
        ("e_Plx", "mas", "f4", "Parallax uncertainty"),
        ("pmRA", _PM, "f4", "Proper motion in RA from Gaia DR2"),
        ("e_pmRA", _PM, "f4", "Proper motion uncertainty in RA"),
        ("pmDE", _PM, "f4", "Proper motion in Dec from Gaia DR2"),
        ("e_pmDE", _PM, "f4", "Proper motion uncertainty in Dec"),
        ("Gmag", _MAG, "f4", "Gaia DR2 G magnitude"),
        ("e_Gmag", _MAG, "f4", "Gaia DR2 G magnitude uncertainty"),
        ("dupvar", None, "i2", "Gaia flags: CONSTANT (0), VARIABLE (1) or NOT_AVAILABLE (2), "
                               "+4 if DUPLICATE"),
        ("rp1", "arcsec", "f4", "Radius where cumulative G flux exceeds 0.1x this star"),
        ("r1", "arcsec", "f4", "Radius where cumulative G flux exceeds 1x this star"),
        *_mags("griz", what="Pan-STARRS {b}_P1 magnitude"),
        ("Jmag", _MAG, "f4", "2MASS J magnitude"),
        ("e_Jmag", _MAG, "f4", "2MASS J magnitude uncertainty"),
        ("Kmag", _MAG, "f4", "2MASS K magnitude"),
        ("e_Kmag", _MAG, "f4", "2MASS K magnitude uncertainty"),
    ],
    "II/349/ps1": [
        ("objID", None, "i8", "Unique object identifier"),
        ("RAJ2000", _DEG, "f8", "Right ascension (J2000)"),
        ("DEJ2000", _DEG, "f8", "Declination (J2000)"),
        ("e_RAJ2000", "arcsec", "f4", "Right ascension mean error"),
        ("e_DEJ2000", "arcsec", "f4", "Declination mean error"),
        ("Qual", None, "i2", "Quality flag"),
        ("_tab1_10", "yr", "f8", "Mean observation epoch (VizieR label Epoch; unconfirmed)"),
        ("Nd", None, "i2", "Number of detections"),
        *_mags("grizy", what="Mean PSF {b} magnitude"),
    ],
    "II/183A": [
        ("Star", None, "U12", "Star designation"),
        ("RAJ2000", '"h:m:s"', "U11", "Right ascension (J2000)"),
        ("DEJ2000", '"d:m:s"', "U11", "Declination (J2000)"),
        ("Vmag", _MAG, "f4", "V magnitude"),
        ("B-V", _MAG, "f4", "B-V colour index"),
        ("U-B", _MAG, "f4", "U-B colour index"),
        ("V-R", _MAG, "f4", "V-R colour index"),
        ("R-I", _MAG, "f4", "R-I colour index"),
        ("V-I", _MAG, "f4", "V-I colour index"),
        ("e_Vmag", _MAG, "f4", "Mean error of Vmag"),
        ("e_B-V", _MAG, "f4", "Mean error of B-V"),
        ("e_U-B", _MAG, "f4", "Mean error of U-B"),
        ("e_V-R", _MAG, "f4", "Mean error of V-R"),
        ("e_R-I", _MAG, "f4", "Mean error of R-I"),
        ("e_V-I", _MAG, "f4", "Mean error of V-I"),
    ],
}


def published_names(catalog_id):
    return [name for name, *_ in PUBLISHED[catalog_id]]


def _values(name, dtype, n, rng, catalog_id):
    """Made-up values of one column: plausible ranges, one missing magnitude."""
    ra0, dec0 = CENTER
    r = 0.06 * np.sqrt((np.arange(n) + 0.5) / n)
    theta = 2.4 * np.arange(n)
    ra = ra0 + r * np.cos(theta) / np.cos(np.radians(dec0))
    dec = dec0 + r * np.sin(theta)
    if name in ("RAJ2000", "RA_ICRS") and dtype.startswith("f"):
        return np.round(ra, 7)
    if name in ("DEJ2000", "DE_ICRS") and dtype.startswith("f"):
        return np.round(dec, 7)
    if name == "RAJ2000":  # Landolt: sexagesimal
        from astropy.coordinates import Angle
        return [Angle(x, "deg").to_string("hourangle", sep=" ", precision=2, pad=True)
                for x in ra]
    if name == "DEJ2000":
        from astropy.coordinates import Angle
        return [Angle(x, "deg").to_string("deg", sep=" ", precision=1, alwayssign=True,
                                          pad=True) for x in dec]
    if name == "UCAC4":
        return [f"551-{48000 + 7 * k:06d}" for k in range(n)]
    if name == "Star":
        return [f"SYN {k + 1:d}" for k in range(n)]
    if name in ("Source", "objID"):
        return (3_900_000_000_000_000 + 1_000_003 * np.arange(n)).astype(np.int64) \
            if name == "Source" else (124001500000000000 + 17 * np.arange(n)).astype(np.int64)
    if name == "recno":
        return np.arange(10_000_001, 10_000_001 + n, dtype=np.int32)
    if name == "VarFlag":
        return np.where(np.arange(n) % 3 == 1, "VARIABLE", "NOT_AVAILABLE")
    if name == "dupvar":
        return np.array([0, 1, 2, 4, 5, 6, 0, 2][:n] + [0] * max(0, n - 8), dtype=np.int16)
    if name.endswith("Flag"):
        return np.where(np.arange(n) == 2, 0, 1).astype(np.int16)
    if name == "_tab1_10":
        return np.round(2011.5 + rng.uniform(0, 2.5, n), 4)
    if name.startswith("F") and len(name) == 2:
        band_mag = 12.0 + 0.4 * np.arange(n)
        return (10 ** (-0.4 * (band_mag + 21.1))).astype("f4")
    if name.startswith("e_F") and len(name) == 4:
        return (10 ** (-0.4 * (12.0 + 0.4 * np.arange(n) + 21.1)) * 0.008).astype("f4")
    if name in ("pmRA", "pmDE"):
        return np.round(rng.normal(0, 12, n), 3)
    if dtype.startswith("f") and (name.endswith("mag") or "-" in name):
        if name.startswith("e_"):
            return np.round(rng.uniform(0.005, 0.05, n), 3).astype("f4")
        if "-" in name:
            return np.round(rng.uniform(-0.2, 1.4, n), 3).astype("f4")
        return np.round(11.5 + 0.45 * np.arange(n) + rng.uniform(-0.2, 0.2, n), 3).astype("f4")
    if dtype.startswith("f"):
        return np.round(rng.uniform(0.01, 3.0, n), 3).astype(dtype)
    if dtype.startswith("i"):
        return rng.integers(0, 5, n).astype(dtype)
    raise ValueError(name)


def synthetic_table(catalog_id, n=8, seed=5):
    """A made-up answer of ``catalog_id`` with exactly the published columns and units."""
    rng = np.random.default_rng(seed)
    t = Table()
    for name, unit, dtype, description in PUBLISHED[catalog_id]:
        values = _values(name, dtype, n, rng, catalog_id)
        if dtype.startswith("f") and name.endswith("mag") and not name.startswith("e_"):
            col = MaskedColumn(values, name=name, mask=np.arange(n) == n - 1)  # one missing
        else:
            col = MaskedColumn(values, name=name)
        col.unit = unit
        col.description = description
        t[name] = col
    return t


def read_answer(catalog_id):
    """The committed synthetic answer of ``catalog_id`` as a Table (for the stub)."""
    from astropy.io.votable import parse

    votable = parse(DATA / FILES[catalog_id])
    return votable.get_first_table().to_table(use_names_over_ids=True)


def write_answers():
    sys.path.insert(0, str(Path(__file__).parent.parent))
    from cds_stub import vizier_votable

    for catalog_id, filename in FILES.items():
        table = synthetic_table(catalog_id)
        payload = vizier_votable(table, TABLES[catalog_id])
        (DATA / filename).write_bytes(payload)


if __name__ == "__main__":
    write_answers()
