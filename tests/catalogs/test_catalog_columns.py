"""Every catalog spec against the columns VizieR publishes for it, through the real client.

The answers are the synthetic VOTables in ``tests/data/cds/synthetic_*.xml`` (column layout
from the published column lists in :mod:`published`, values made up), served by the CDS stub,
which like VizieR drops an ``-out`` name the table does not have without a word.
"""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from published import (
    FILES,
    PUBLISHED,
    SOURCES,
    TABLES,
    published_names,
    read_answer,
    synthetic_table,
)

from glue_zeropoint.catalogs import get_spec, query_vizier
from glue_zeropoint.catalogs.specs import (
    CATALOG_SPECS,
    MissingColumnsError,
    check_answer_columns,
    named_columns,
)
from glue_zeropoint.exceptions import CatalogError

CENTER = SkyCoord(150.0, 20.0, unit="deg")
RADIUS = 10 * u.arcmin
POSITIONS = {"II/336/apass9": ("RAJ2000", "DEJ2000"), "I/322A": ("RA_ICRS", "DE_ICRS"),
             "I/360/syntphot": ("RA_ICRS", "DE_ICRS"), "I/355/gaiadr3": ("RA_ICRS", "DE_ICRS"),
             "J/ApJ/867/105": ("RA_ICRS", "DE_ICRS"), "II/349/ps1": ("RAJ2000", "DEJ2000"),
             "II/183A": ("RAJ2000", "DEJ2000")}


def serve(stub, catalog_id, table=None):
    ra_col, dec_col = POSITIONS[catalog_id]
    answer = read_answer(catalog_id) if table is None else table
    stub.set_vizier(TABLES[catalog_id], answer, ra_col=ra_col, dec_col=dec_col)
    return answer


def values(table, name):
    col = table[name]
    out = np.array(col, dtype=float)
    if hasattr(col, "mask"):
        out[np.asarray(col.mask, bool)] = np.nan
    return out


def spec_columns_are_published(catalog_id):
    """Every column the spec names is a published one (or a documented alias of one)."""
    spec = get_spec(catalog_id)
    published = set(published_names(catalog_id))
    own = [c for c in spec.used_columns()
           if not (spec.companion and c in spec.companion[2] and c != spec.companion[1])]
    for name in own:
        assert any(n in published for n in spec.answer_names(name)), (catalog_id, name)
    assert set(named_columns(spec.request_columns())) <= published
    if spec.companion:
        assert set(spec.companion[2]) <= set(published_names(spec.companion[0]))
    assert spec.source


def test_every_registered_vizier_catalog_has_a_published_column_list():
    assert set(CATALOG_SPECS) <= set(PUBLISHED)
    for catalog_id in PUBLISHED:
        assert SOURCES[catalog_id] and FILES[catalog_id].startswith("synthetic_")
        # the committed answer has exactly the published columns, in order, with units
        answer = read_answer(catalog_id)
        assert answer.colnames == published_names(catalog_id)
        for name, unit, _, _ in PUBLISHED[catalog_id]:
            assert (answer[name].unit is None) == (unit is None), (catalog_id, name)
        # and is what published.py builds (the files were not edited by hand)
        assert synthetic_table(catalog_id).colnames == answer.colnames


def test_apass_dr9(cds_stub):
    spec_columns_are_published("II/336/apass9")
    answer = serve(cds_stub, "II/336/apass9")
    cat = query_vizier("vizier:II/336/apass9", CENTER, RADIUS)
    sent = cds_stub.vizier_requests()[0]["params"]
    assert sent["-source"] == "II/336/apass9" and "recno" not in sent["-out"]
    assert set(answer.colnames) <= set(cat.colnames)
    assert cat.meta["bands"] == ["B", "V", "g", "r", "i"]
    np.testing.assert_allclose(cat["mag_r"], values(answer, "r'mag"), rtol=1e-6)
    np.testing.assert_allclose(cat["err_g"], values(answer, "e_g'mag"), rtol=1e-6)
    # no identifier in APASS: never the VizieR record number, the position instead
    assert not set(cat["id"]) & {str(r) for r in answer["recno"]}
    assert all(i[:5] in ("J150.", "J149.") for i in cat["id"]) and len(set(cat["id"])) == len(cat)
    assert np.all(cat["ref_epoch"] == 2000.0) and np.all(np.isnan(cat["pmra"]))


def test_ucac4(cds_stub):
    spec_columns_are_published("I/322A")
    answer = serve(cds_stub, "I/322A")
    cat = query_vizier("I/322A", CENTER, RADIUS)
    sent = cds_stub.vizier_requests()[0]["params"]
    assert sent["-source"] == "I/322A/out"
    assert {"RA_ICRS", "DE_ICRS", "gmag", "e_gmag", "UCAC4"} <= set(sent["-out"].split(","))
    assert list(cat["id"]) == list(answer["UCAC4"])
    np.testing.assert_allclose(cat["ra"], answer["RA_ICRS"])
    np.testing.assert_allclose(cat["pmdec"], answer["pmDE"], rtol=1e-6)
    assert np.all(cat["ref_epoch"] == 2000.0)  # mean positions at J2000.0, not EpRA
    # the APASS bands with their errors; the flags H, B, Z are not magnitudes
    assert [b for b in cat.meta["bands"] if b in "BVgri"] == ["B", "V", "g", "r", "i"]
    assert "H" not in cat.meta["bands"] and cat.meta["band_sources"]["B"] == "Bmag"
    np.testing.assert_allclose(cat["err_V"], values(answer, "e_Vmag"), rtol=1e-6)
    assert np.isnan(cat["mag_V"][-1])  # a missing magnitude stays missing


def test_gaia_dr3_synthetic_photometry(cds_stub):
    spec_columns_are_published("I/360/syntphot")
    answer = serve(cds_stub, "I/360/syntphot")
    main = serve(cds_stub, "I/355/gaiadr3")
    cat = query_vizier("I/360/syntphot", CENTER, RADIUS)
    sent = [r["params"] for r in cds_stub.vizier_requests()]
    assert [p["-source"] for p in sent] == ["I/360/syntphot", "I/355/gaiadr3"]
    assert "*" not in sent[0]["-out"].split(",")
    assert list(cat["id"]) == [str(s) for s in answer["Source"]]
    assert cat.meta["bands"] == ["U", "B", "V", "R", "I", "u", "g", "r", "i", "z"]
    # magnitude errors from the flux errors; a flag of 0 (outside the validated range) = NaN
    flux, eflux = values(answer, "FV"), values(answer, "e_FV")
    np.testing.assert_allclose(cat["err_V"], 2.5 / np.log(10) * eflux / flux, rtol=1e-5)
    assert np.isnan(cat["mag_V"][2]) and np.isfinite(cat["mag_V"][0])
    # proper motions and the variability flag from the Gaia DR3 main table
    np.testing.assert_allclose(cat["pmra"], main["pmRA"])
    np.testing.assert_array_equal(cat["variable"], np.asarray(main["VarFlag"]) == "VARIABLE")
    assert np.all(cat["ref_epoch"] == 2016.0)


def test_atlas_refcat2(cds_stub):
    spec_columns_are_published("J/ApJ/867/105")
    answer = serve(cds_stub, "J/ApJ/867/105")
    cat = query_vizier("vizier:J/ApJ/867/105", CENTER, RADIUS)
    sent = cds_stub.vizier_requests()[0]["params"]
    assert sent["-source"] == "J/ApJ/867/105/refcat2"  # the catalog's table, by name
    assert cat.meta["catalog"] == "vizier:J/ApJ/867/105"
    assert [b for b in cat.meta["bands"] if b in "griz"] == ["g", "r", "i", "z"]
    np.testing.assert_allclose(cat["err_z"], values(answer, "e_zmag"), rtol=1e-6)
    assert np.all(cat["ref_epoch"] == 2015.5)
    # dupvar: CONSTANT 0, VARIABLE 1, NOT_AVAILABLE 2, +4 DUPLICATE -> variable = 1 and 5
    assert list(answer["dupvar"]) == [0, 1, 2, 4, 5, 6, 0, 2]
    assert list(np.flatnonzero(cat["variable"])) == [1, 4]
    assert all(i.startswith("J") for i in cat["id"])


def test_pan_starrs_dr1(cds_stub):
    spec_columns_are_published("II/349/ps1")
    answer = serve(cds_stub, "II/349/ps1")
    cat = query_vizier("II/349/ps1", CENTER, RADIUS)
    sent = cds_stub.vizier_requests()[0]["params"]
    assert "Epoch" not in sent["-out"].split(",")  # optional: comes with the default set
    assert list(cat["id"]) == [str(o) for o in answer["objID"]]
    assert [b for b in cat.meta["bands"] if b in "grizy"] == ["g", "r", "i", "z", "y"]
    # the mean epoch, returned by VizieR as _tab1_10, labels the positions
    assert "Epoch" in cat.colnames and "_tab1_10" not in cat.colnames
    np.testing.assert_allclose(cat["ref_epoch"], answer["_tab1_10"])
    assert np.all(np.isnan(cat["pmra"]))


def test_pan_starrs_without_its_epoch_column(cds_stub):
    table = read_answer("II/349/ps1")
    table.remove_column("_tab1_10")
    serve(cds_stub, "II/349/ps1", table)
    cat = query_vizier("II/349/ps1", CENTER, RADIUS)
    assert np.all(cat["ref_epoch"] == 2000.0)  # no proper motions: the epoch moves nothing


def test_landolt(cds_stub):
    spec_columns_are_published("II/183A")
    answer = serve(cds_stub, "II/183A")
    cat = query_vizier("II/183A", CENTER, RADIUS)
    sent = cds_stub.vizier_requests()[0]["params"]
    assert sent["-source"] == "II/183A/table2"
    assert list(cat["id"]) == list(answer["Star"])
    coords = SkyCoord(list(answer["RAJ2000"]), list(answer["DEJ2000"]),
                      unit=(u.hourangle, u.deg))
    np.testing.assert_allclose(cat["ra"], coords.ra.deg, atol=1e-6)
    assert cat.meta["bands"] == ["U", "B", "V", "R", "I"]
    v, bv = values(answer, "Vmag"), values(answer, "B-V")
    np.testing.assert_allclose(cat["mag_B"], v + bv, rtol=1e-6)
    assert cat.meta["band_sources"]["B"] == "V + (B-V)"


# --------------------------------------------------------------------------- missing columns


def test_a_requested_column_missing_from_the_answer_is_an_error(cds_stub):
    table = read_answer("II/336/apass9")
    table.remove_column("e_Vmag")  # VizieR would drop an unknown name like this
    serve(cds_stub, "II/336/apass9", table)
    with pytest.raises(MissingColumnsError, match=r"VizieR \(II/336/apass9\) answered without "
                                                  r"the column 'e_Vmag' asked for"):
        query_vizier("II/336/apass9", CENTER, RADIUS)
    assert issubclass(MissingColumnsError, CatalogError)


def test_old_column_names_are_an_error_not_a_fallback(cds_stub):
    table = read_answer("I/322A")
    table.rename_columns(["RA_ICRS", "DE_ICRS"], ["RAJ2000", "DEJ2000"])  # before 2024
    cds_stub.set_vizier("I/322A/out", table, ra_col="RAJ2000", dec_col="DEJ2000")
    with pytest.raises(MissingColumnsError, match=r"I/322A/out.*'RA_ICRS', 'DE_ICRS'.*"
                                                  r"Columns received: UCAC4, RAJ2000"):
        query_vizier("I/322A", CENTER, RADIUS)


def test_a_column_missing_from_the_companion_is_an_error_not_a_warning(cds_stub):
    serve(cds_stub, "I/360/syntphot")
    main = read_answer("I/355/gaiadr3")
    main.remove_column("VarFlag")
    serve(cds_stub, "I/355/gaiadr3", main)
    with pytest.raises(MissingColumnsError, match=r"I/355/gaiadr3.*'VarFlag'"):
        query_vizier("I/360/syntphot", CENTER, RADIUS)


def test_columns_asked_for_by_the_caller_are_checked_too(cds_stub):
    serve(cds_stub, "II/336/apass9")
    with pytest.raises(MissingColumnsError, match="'Rmag'"):
        query_vizier("II/336/apass9", CENTER, RADIUS, columns=["*", "Vmag", "Rmag"])


def test_an_apostrophe_label_returned_with_an_underscore_is_renamed(cds_stub):
    table = read_answer("II/336/apass9")
    table.rename_columns(["g'mag", "e_g'mag"], ["g_mag", "e_g_mag"])
    serve(cds_stub, "II/336/apass9", table)
    cat = query_vizier("II/336/apass9", CENTER, RADIUS)
    assert "g'mag" in cat.colnames and "g_mag" not in cat.colnames
    assert cat.meta["band_sources"]["g"] == "g'mag"
    np.testing.assert_allclose(cat["err_g"], values(table, "e_g_mag"), rtol=1e-6)


def test_named_columns_and_the_check_without_a_service():
    assert named_columns(["*", "+Vmag", "-Bmag", "_RAJ2000", "**", "all", "Vmag"]) == \
        ["Vmag", "Bmag"]
    table = synthetic_table("J/ApJ/867/105")
    check_answer_columns(table, "J/ApJ/867/105/refcat2", ["*", "dupvar", "gmag"])
    with pytest.raises(MissingColumnsError, match="'Dup'"):
        check_answer_columns(table, "J/ApJ/867/105/refcat2", ["*", "Dup"])
