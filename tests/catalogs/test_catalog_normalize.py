"""normalize_catalog, catalog_bands, require_band: columns found by name, colours, flags."""

import numpy as np
import pytest
from astropy.io.votable import parse_single_table
from astropy.table import MaskedColumn, Table
from catalog_helpers import CDS

from glue_zeropoint.catalogs import (
    catalog_bands,
    is_nonstellar_otype,
    is_variable_otype,
    normalize_catalog,
    require_band,
)
from glue_zeropoint.catalogs.normalize import parse_sexagesimal
from glue_zeropoint.exceptions import CatalogError

LANDOLT = CDS / "landolt1992_standards.csv"


def _vot(name):
    return parse_single_table(CDS / name).to_table(use_names_over_ids=True)


def test_landolt_csv_sexagesimal_and_colours():
    raw = Table.read(LANDOLT, format="ascii.csv")
    cat = normalize_catalog(raw, name=str(LANDOLT))
    assert len(cat) == len(raw) == 526
    assert cat.meta["bands"] == ["U", "B", "V", "R", "I"]
    assert cat.meta["catalog"] == str(LANDOLT)
    first = cat[0]
    assert first["id"] == "TPHE A"
    # '00 30 09- 46 31 22'
    assert first["ra"] == pytest.approx((30 / 60 + 9 / 3600) * 15)
    assert first["dec"] == pytest.approx(-(46 + 31 / 60 + 22 / 3600))
    assert first["mag_V"] == pytest.approx(14.651)
    assert first["mag_B"] == pytest.approx(14.651 + 0.793)
    assert first["err_B"] == pytest.approx(np.hypot(0.0028, 0.0046))
    assert first["mag_R"] == pytest.approx(14.651 - 0.435)
    assert first["mag_U"] == pytest.approx(14.651 + 0.793 + 0.38)
    # all positions read, declinations of both signs, original columns kept
    assert np.all(np.isfinite(cat["ra"])) and np.all(np.isfinite(cat["dec"]))
    assert (cat["dec"] > 0).sum() > 200 and (cat["dec"] < 0).sum() > 200
    assert "RA_DE_J2000_hms_dms" in cat.colnames and "B-V" in cat.colnames
    assert cat["ref_epoch"][0] == 2000.0 and np.isnan(cat["pmra"][0])
    assert cat["ra"].dtype == np.float64 and cat["mag_V"].dtype == np.float64


def test_landolt_row_with_minus_zero_declination():
    raw = Table.read(LANDOLT, format="ascii.csv")
    row = [i for i, s in enumerate(raw["RA_DE_J2000_hms_dms"]) if s[8:10] == "-0"][0]
    cat = normalize_catalog(raw, name="landolt")
    assert cat["dec"][row] < 0


@pytest.mark.parametrize("text, hours, expected", [
    ("20 29 24.9", True, (20 + 29 / 60 + 24.9 / 3600) * 15),
    ("-46:31:22", False, -(46 + 31 / 60 + 22 / 3600)),
    ("- 00 12 36", False, -(12 / 60 + 36 / 3600)),
    ("+05 00 00.5", False, 5 + 0.5 / 3600),
    ("12.5", False, 12.5),
    ("junk", False, np.nan),
])
def test_parse_sexagesimal(text, hours, expected):
    value = parse_sexagesimal(text, hours)
    if np.isnan(expected):
        assert np.isnan(value)
    else:
        assert value == pytest.approx(expected)


@pytest.mark.parametrize("mag, err, band", [
    ("V", "e_V", "V"), ("Vmag", "e_Vmag", "V"), ("r'mag", "e_r'mag", "r"),
    ("rmag", "e_rmag", "r"), ("gmag", "gmag_err", "g"), ("mag_V", "err_V", "V"),
    ("Imag", "e_Imag", "I"), ("imag", "e_imag", "i"), ("V_mag", "V_mag_err", "V"),
])
def test_magnitude_columns_found_by_band(mag, err, band):
    table = Table({"RAJ2000": [10.0, 10.1], "DEJ2000": [-5.0, -5.1], mag: [12.0, 13.5],
                   err: [0.01, 0.02]})
    cat = normalize_catalog(table)
    assert catalog_bands(cat) == [band]
    assert list(cat[f"mag_{band}"]) == [12.0, 13.5]
    assert list(cat[f"err_{band}"]) == [0.01, 0.02]
    assert mag in cat.colnames  # original kept


def test_colour_only_gives_the_other_band():
    table = Table({"ra": [1.0], "dec": [2.0], "V": [12.0], "e_V": [0.03], "B-V": [0.6],
                   "e_B-V": [0.04]})
    cat = normalize_catalog(table)
    assert catalog_bands(cat) == ["B", "V"]
    assert cat["mag_B"][0] == pytest.approx(12.6)
    assert cat["err_B"][0] == pytest.approx(0.05)


def test_missing_values_and_sentinels_become_nan():
    table = Table()
    table["RA_ICRS"] = [1.0, 2.0, 3.0]
    table["DE_ICRS"] = [0.0, 0.0, 0.0]
    table["Vmag"] = MaskedColumn([12.0, 13.0, 99.999], mask=[False, True, False])
    table["e_Vmag"] = [0.01, 0.01, -1.0]
    cat = normalize_catalog(table)
    assert cat["mag_V"][0] == 12.0
    assert np.isnan(cat["mag_V"][1]) and np.isnan(cat["mag_V"][2])
    assert np.isnan(cat["err_V"][2])


def test_units_are_converted():
    table = Table({"ra": [0.1], "dec": [0.2], "pmRA": [0.002], "pmDE": [-0.001],
                   "Vmag": [10.0]})
    table["ra"].unit = table["dec"].unit = "rad"
    table["pmRA"].unit = table["pmDE"].unit = "arcsec / yr"
    cat = normalize_catalog(table)
    assert cat["ra"][0] == pytest.approx(np.degrees(0.1))
    assert cat["pmra"][0] == pytest.approx(2.0) and cat["pmdec"][0] == pytest.approx(-1.0)


def test_separate_sexagesimal_string_columns():
    table = Table({"Star": ["A", "B"], "RAJ2000": ["20 29 24.9", "20 29 30.0"],
                   "DEJ2000": ["+40 11 19", "-00 30 00"], "Vmag": [11.0, 12.0]})
    cat = normalize_catalog(table)
    assert cat["ra"][0] == pytest.approx((20 + 29 / 60 + 24.9 / 3600) * 15)
    assert cat["dec"][1] == pytest.approx(-0.5)
    assert list(cat["id"]) == ["A", "B"]


def test_no_position_columns_lists_columns():
    table = Table({"name": ["a"], "Vmag": [12.0]})
    with pytest.raises(CatalogError, match=r"mycat.csv: no position columns.*name, Vmag"):
        normalize_catalog(table, name="mycat.csv")


def test_no_magnitude_columns_real_vizier_answer():
    table = _vot("afgl2591_iram.xml")  # a real VizieR answer without magnitudes
    with pytest.raises(CatalogError, match=r"iram: no magnitude columns.*Prog, Name"):
        normalize_catalog(table, name="iram")


def test_galactic_positions_of_a_real_answer():
    table = _vot("kang2010.xml")  # positions only as _Glon/_Glat, 2MASS J H Ks
    cat = normalize_catalog(table, name="kang2010")
    assert len(cat) == 50
    assert catalog_bands(cat) == ["J", "H", "Ks"]
    # W51 lies near RA 290.9, Dec +14.5
    assert np.all(np.abs(cat["ra"] - 290.9) < 1.0) and np.all(np.abs(cat["dec"] - 14.3) < 1.0)


def test_simbad_answer_flags_and_id():
    table = Table({"main_id": np.array(["V* RR Lyr", "NGC 1", "HD 1", "Gaia 1"], dtype=object),
                   "ra": [1.0, 2.0, 3.0, 4.0], "dec": [0.0, 0.0, 0.0, 0.0],
                   "otype": np.array(["RR*", "G", "*", "V*?"], dtype=object),
                   "V": [7.1, np.nan, 8.0, 9.0], "B": [7.5, np.nan, 8.6, 9.9]})
    cat = normalize_catalog(table, spec="simbad")
    assert list(cat["id"]) == ["V* RR Lyr", "NGC 1", "HD 1", "Gaia 1"]
    assert list(cat["variable"]) == [True, False, False, True]
    assert list(cat["nonstellar"]) == [False, True, False, False]
    assert list(cat["otype"]) == ["RR*", "G", "*", "V*?"]
    assert cat.meta["catalog"] == "simbad" and cat.meta["bands"] == ["B", "V"]
    assert cat["main_id"].dtype.kind == "U"  # object columns become plain strings


def test_recorded_simbad_answer_without_fluxes():
    cat = normalize_catalog(_vot("simbad_M1.vot"), spec="simbad")
    assert len(cat) == 1 and cat["id"][0] == "M   1"
    assert cat["ra"][0] == pytest.approx(83.6287) and cat["dec"][0] == pytest.approx(22.0147)
    assert catalog_bands(cat) == []


@pytest.mark.parametrize("otype, variable, nonstellar", [
    ("V*", True, False), ("RR*", True, False), ("EB*", True, False), ("Mi*", True, False),
    ("Ce*?", True, False), ("RRLyr", True, False), ("*", False, False), ("PM*", False, False),
    ("G", False, True), ("QSO", False, True), ("GlC", False, True), ("PN", False, True),
    ("", False, False),
])
def test_otype_classes(otype, variable, nonstellar):
    assert is_variable_otype(otype) is variable
    assert is_nonstellar_otype(otype) is nonstellar


def test_gaia_varflag_and_refcat2_dupvar():
    table = Table({"RA_ICRS": [1.0, 2.0, 3.0], "DE_ICRS": [0.0, 0.0, 0.0],
                   "gmag": [12.0, 13.0, 14.0], "VarFlag": ["VARIABLE", "NOT_AVAILABLE", ""],
                   "dupvar": [0, 2, 1]})
    cat = normalize_catalog(table)
    assert list(cat["variable"]) == [True, False, True]


def test_spec_applies_epoch_pm_and_flags():
    table = Table({"RA_ICRS": [1.0], "DE_ICRS": [0.0], "pmRA": [5.0], "pmDE": [-3.0],
                   "gmag": [12.0], "e_gmag": [0.01], "dupvar": [1]})
    cat = normalize_catalog(table, spec="vizier:J/ApJ/867/105")
    assert cat["ref_epoch"][0] == 2015.5
    assert cat["pmra"][0] == 5.0 and cat["pmdec"][0] == -3.0
    assert cat["variable"][0]
    assert cat.meta["catalog"] == "vizier:J/ApJ/867/105"


def test_collisions_are_renamed_and_sources_replaced():
    table = Table({"ra": [1.0], "dec": [2.0], "Vmag": [12.0], "otype": [3],
                   "variable": ["yes"]})
    cat = normalize_catalog(table)
    assert cat["otype"][0] == "" and cat["otype_orig"][0] == 3
    assert cat["variable"][0]  # 'yes' read as the variable flag
    assert "variable_orig" not in cat.colnames and "ra_orig" not in cat.colnames


def test_normalising_twice_changes_nothing():
    raw = Table.read(LANDOLT, format="ascii.csv")
    once = normalize_catalog(raw, name="landolt")
    twice = normalize_catalog(once, name="landolt")
    assert once.colnames == twice.colnames
    for name in ("ra", "dec", "mag_B", "err_B", "mag_I"):
        np.testing.assert_array_equal(once[name], twice[name])
    assert list(once["id"]) == list(twice["id"])


def test_require_band_lists_available_bands():
    table = Table({"ra": [1.0], "dec": [2.0], "Bmag": [12.0], "Vmag": [11.5]})
    cat = normalize_catalog(table, name="apass.ecsv")
    assert require_band(cat, "V") == "V"
    assert require_band(cat, "V'") == "V"
    with pytest.raises(CatalogError, match=r"catalog apass.ecsv has no band 'r'; it has: B, V"):
        require_band(cat, "r")


def test_require_band_with_only_missing_values():
    table = Table({"ra": [1.0, 2.0], "dec": [2.0, 3.0], "Bmag": [12.0, 13.0],
                   "Rmag": [np.nan, np.nan]})
    cat = normalize_catalog(table, name="x")
    with pytest.raises(CatalogError, match="no star has a value"):
        require_band(cat, "R")


def test_empty_table_normalises():
    table = Table({"RAJ2000": np.array([], float), "DEJ2000": np.array([], float),
                   "Vmag": np.array([], float)})
    cat = normalize_catalog(table)
    assert len(cat) == 0 and catalog_bands(cat) == ["V"]
    assert cat["id"].dtype.kind == "U"
