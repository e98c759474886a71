"""The catalog registry and the configuration from the environment."""

import pytest

from glue_zeropoint.catalogs import CATALOG_SPECS, default_catalogs_for_band, get_spec
from glue_zeropoint.catalogs.config import (
    default_cache_dir,
    offline_from_env,
    simbad_base_url,
    vizier_base_url,
)
from glue_zeropoint.catalogs.specs import spec_for
from glue_zeropoint.exceptions import CatalogError


def test_registry_has_the_design_catalogs():
    assert {"II/336/apass9", "I/360/syntphot", "J/ApJ/867/105", "I/322A", "II/349/ps1",
            "II/183A"} <= set(CATALOG_SPECS)
    assert get_spec("simbad").bands == {b: (b, None) for b in "BVRI"}


def test_apass_columns_are_vizier_native():
    spec = get_spec("vizier:II/336/apass9")
    assert spec.bands["r"] == ("r'mag", "e_r'mag")
    columns = spec.request_columns()
    assert columns[0] == "*" and {"Vmag", "e_Vmag", "Bmag", "e_Bmag"} <= set(columns)
    assert "r'mag" in spec.optional and "r'mag" not in columns  # comes with the default set
    assert spec.answer_names("e_r'mag") == ["e_r'mag", "e_r_mag"]
    assert spec.id_column is None and "recno" not in columns


def test_syntphot_takes_pm_and_varflag_from_gaiadr3():
    spec = get_spec("I/360/syntphot")
    assert spec.companion[0] == "I/355/gaiadr3"
    columns = spec.request_columns()
    assert "pmRA" not in columns and "VarFlag" not in columns
    assert {"Vmag", "FV", "e_FV", "VFlag"} <= set(columns)
    assert spec.epoch == 2016.0


def test_sub_table_ids_find_their_catalog():
    assert get_spec("J/ApJ/867/105/refcat2").id == "J/ApJ/867/105"
    assert get_spec("I/322A/out").id == "I/322A"
    assert get_spec("B/unknown") is None
    generic = spec_for("vizier:B/unknown")
    assert generic.spec_string == "vizier:B/unknown" and generic.bands == {}


@pytest.mark.parametrize("band, expected", [
    ("V", ("I/360/syntphot", "II/336/apass9")), ("B", ("I/360/syntphot", "II/336/apass9")),
    ("I", ("I/360/syntphot", "II/336/apass9")), ("r", ("J/ApJ/867/105",)),
    ("r'", ("J/ApJ/867/105",)), ("z", ("J/ApJ/867/105",)),
])
def test_defaults_by_band(band, expected):
    assert default_catalogs_for_band(band) == expected


def test_no_default_for_unknown_band():
    with pytest.raises(CatalogError, match="no default catalog for band 'H'"):
        default_catalogs_for_band("H")


def test_configuration_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("GLUE_ZEROPOINT_VIZIER_URL", raising=False)
    monkeypatch.delenv("GLUE_ZEROPOINT_SIMBAD_URL", raising=False)
    assert vizier_base_url() == "https://vizier.cds.unistra.fr"
    assert simbad_base_url() == "https://simbad.cds.unistra.fr"
    monkeypatch.setenv("GLUE_ZEROPOINT_VIZIER_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("GLUE_ZEROPOINT_SIMBAD_URL", "http://127.0.0.1:8")
    assert vizier_base_url() == "http://127.0.0.1:9"
    assert simbad_base_url() == "http://127.0.0.1:8"
    monkeypatch.setenv("GLUE_ZEROPOINT_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("GLUE_ZEROPOINT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "glue-zeropoint" / "catalogs"
    for value, expected in [("1", True), ("yes", True), ("0", False), ("", False)]:
        monkeypatch.setenv("GLUE_ZEROPOINT_OFFLINE", value)
        assert offline_from_env() is expected


def test_import_is_lazy():
    import subprocess
    import sys

    code = ("import sys, glue_zeropoint.catalogs as c; c.get_catalog; c.query_vizier; "
            "print('astroquery' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
