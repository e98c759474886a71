"""read_catalog / write_catalog: local files in every format behave like a query result."""

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from catalog_helpers import CDS

from glue_zeropoint.catalogs import catalog_bands, read_catalog, require_band, write_catalog
from glue_zeropoint.exceptions import CatalogError


@pytest.fixture
def apass_table(field):
    return field.apass()


@pytest.mark.filterwarnings("ignore::astropy.io.votable.exceptions.VOWarning")
@pytest.mark.parametrize("suffix, fmt", [
    (".ecsv", "ascii.ecsv"), (".csv", "ascii.csv"), (".vot", "votable"), (".fits", "fits"),
])
def test_each_format_reads_the_same(tmp_path, apass_table, suffix, fmt):
    path = tmp_path / f"apass{suffix}"
    apass_table.write(path, format=fmt)
    cat = read_catalog(path)
    assert len(cat) == len(apass_table)
    assert catalog_bands(cat) == ["B", "V", "g", "r", "i"]
    np.testing.assert_allclose(cat["mag_V"], apass_table["Vmag"])
    np.testing.assert_allclose(cat["err_r"], apass_table["e_r'mag"])
    np.testing.assert_allclose(cat["ra"], apass_table["RAJ2000"])
    assert cat.meta["catalog"] == str(path) and cat.meta["service"] == "local"
    assert cat.meta["from_cache"] is False
    assert "r'mag" in cat.colnames and "recno" in cat.colnames


def test_landolt_csv_as_a_catalog_file(tmp_path):
    path = tmp_path / "landolt.csv"
    shutil.copy(CDS / "landolt1992_standards.csv", path)
    cat = read_catalog(path)
    assert len(cat) == 526 and catalog_bands(cat) == ["U", "B", "V", "R", "I"]
    require_band(cat, "I")


def test_recorded_vizier_votable_as_a_file(tmp_path):
    path = tmp_path / "kang2010.xml"
    shutil.copy(CDS / "kang2010.xml", path)
    cat = read_catalog(path)
    assert len(cat) == 50 and "Ksmag" in cat.colnames
    assert catalog_bands(cat) == ["J", "H", "Ks"]


@pytest.mark.parametrize("suffix", [".ecsv", ".csv", ".vot", ".fits"])
def test_write_then_read_round_trip(tmp_path, apass_table, suffix):
    from glue_zeropoint.catalogs import normalize_catalog

    cat = normalize_catalog(apass_table, spec="vizier:II/336/apass9")
    path = write_catalog(cat, tmp_path / f"saved{suffix}")
    back = read_catalog(path)
    np.testing.assert_allclose(back["mag_B"], cat["mag_B"])
    assert list(back["id"]) == list(cat["id"])
    assert back.meta["catalog"] == str(path)
    if suffix == ".ecsv":  # ECSV keeps the origin and the query
        assert back.meta["origin_catalog"] == "vizier:II/336/apass9"
    assert not list(tmp_path.glob(".*.tmp"))


def test_no_magnitude_columns_names_file_and_columns(tmp_path):
    path = tmp_path / "positions.csv"
    Table({"name": ["a", "b"], "ra": [1.0, 2.0], "dec": [3.0, 4.0]}).write(path)
    with pytest.raises(CatalogError, match=r"positions.csv: no magnitude columns.*name, ra, dec"):
        read_catalog(path)


def test_missing_band_lists_bands(tmp_path, apass_table):
    path = tmp_path / "apass.ecsv"
    apass_table.write(path)
    cat = read_catalog(path)
    with pytest.raises(CatalogError, match=r"apass.ecsv has no band 'R'; it has: B, V, g, r, i"):
        require_band(cat, "R")


def test_missing_file(tmp_path):
    with pytest.raises(CatalogError, match="no such catalog file"):
        read_catalog(tmp_path / "nothere.ecsv")


def test_unknown_suffix(tmp_path):
    path = tmp_path / "cat.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(CatalogError, match="unknown catalog file type '.xlsx'"):
        read_catalog(path)


def test_fits_without_table(tmp_path):
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(path)
    with pytest.raises(CatalogError, match="no table extension"):
        read_catalog(path)


def test_vizier_error_answer_saved_as_file(tmp_path):
    path = tmp_path / "error.xml"
    shutil.copy(CDS / "no_server_error.xml", path)
    with pytest.raises(CatalogError, match="holds no table"):
        read_catalog(path)


def test_garbled_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("ra,dec,Vmag\n1,2\n3,4,5,6,7\n")
    with pytest.raises(CatalogError, match="bad.csv: cannot be read"):
        read_catalog(path)
