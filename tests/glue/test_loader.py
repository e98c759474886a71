import json
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from glue.core import DataCollection
from glue.core.data_factories import find_factory, load_data
from glue.core.state import GlueSerializer, GlueUnSerializer
from zp_nights import fake_raw_dir, sim_ccd

from glue_zeropoint.exceptions import Cancelled, InputError
from glue_zeropoint.glue import loader
from glue_zeropoint.glue.loader import (
    ccd_to_data,
    data_to_ccd,
    is_product_file,
    is_raw_night_dir,
    load_night,
    products_dir_for,
    wcs_from_meta,
)


@pytest.fixture(autouse=True)
def _registered():
    loader.register()


def _snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in Path(folder).rglob("*"))


def test_ccd_to_data_components_wcs_and_json_meta():
    ccd, _truth = sim_ccd()
    data = ccd_to_data(ccd, "M13 V")
    assert data.label == "M13 V"
    assert [c.label for c in data.main_components] == ["flux", "uncertainty", "mask"]
    assert data.shape == ccd.shape
    np.testing.assert_array_equal(data["flux"], ccd.data)
    np.testing.assert_allclose(data["uncertainty"], ccd.uncertainty.array)
    assert data["mask"].dtype == np.uint8
    assert data.get_component("flux").units == "electron"
    assert data.coords is ccd.wcs
    assert json.loads(json.dumps(dict(data.meta))) == dict(data.meta)
    assert data.meta["exptime"] == 20.0 and data.meta["band"] == "V"
    assert data.meta["filter"] == "V" and data.meta["zp_kind"] == "light"
    # RA is world_component_ids[1] for a RA---TAN, DEC--TAN image
    assert data.world_component_ids[1].label == "Right Ascension"


def test_wcs_header_keeps_sip_which_glue_session_drops():
    ccd, _truth = sim_ccd()
    assert ccd.wcs.sip is not None
    data = ccd_to_data(ccd, "sip")
    restored = wcs_from_meta(data)
    assert restored.sip is not None
    xy = np.array([[5.0, 7.0], [150.0, 140.0]])
    np.testing.assert_allclose(restored.all_pix2world(xy, 0), ccd.wcs.all_pix2world(xy, 0),
                               atol=1e-10)
    back = data_to_ccd(data)
    np.testing.assert_array_equal(back.data, ccd.data)
    np.testing.assert_array_equal(back.mask, ccd.mask)
    assert back.wcs.sip is not None and back.meta["EXPTIME"] == 20.0


def test_product_file_is_recognised_over_glue_fits_reader(zp_products):
    folder, _truths = zp_products
    path = folder / "M13_V_000_cal.fits"
    assert is_product_file(path)
    assert find_factory(str(path)) is loader.calibrated_product_factory
    data = load_data(str(path))
    assert data.label == "M13_V_000"
    assert data.meta["zp_product"] == str(path.resolve())
    assert wcs_from_meta(data).sip is not None


def test_plain_fits_is_left_to_glue(tmp_path):
    path = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(path)
    assert not is_product_file(path)
    assert find_factory(str(path)) is not loader.calibrated_product_factory


def test_folder_of_products_loads_as_is_in_a_fixed_order(zp_products, products_root):
    folder, _truths = zp_products
    assert find_factory(str(folder)) is loader.raw_night_factory
    datasets = load_data(str(folder))
    assert [d.label for d in datasets] == ["M13_V_000", "M13_V_001", "master flat_V"]
    assert [d.meta["zp_kind"] for d in datasets] == ["light", "light", "master"]
    assert not products_root.exists()  # nothing calibrated, nothing written


def test_raw_folder_calibrates_into_products_dir_not_next_to_raw(tmp_path, fake_calibration,
                                                                 products_root):
    raw = fake_raw_dir(tmp_path / "night 2024 été")
    before = _snapshot(tmp_path)
    datasets = load_data(str(raw))
    out = products_dir_for(raw)
    assert out.parent == products_root
    assert fake_calibration.calls == [(raw.resolve(), out)]
    assert [d.label for d in datasets] == ["light_000", "light_001", "master bias"]
    assert all(Path(d.meta["zp_product"]).parent == out for d in datasets)
    # nothing was written into or next to the raw folder
    after = [item for item in _snapshot(tmp_path) if not item[0].startswith("products root")]
    assert after == before
    manifest = json.loads((out / loader.MANIFEST_NAME).read_text())
    assert manifest["raw_dir"] == str(raw.resolve()) and len(manifest["fingerprint"]) == 4


def test_products_are_reused_and_refreshed_when_raw_files_change(tmp_path, fake_calibration):
    raw = fake_raw_dir(tmp_path / "raw")
    load_night(raw)
    load_night(raw)
    assert len(fake_calibration.calls) == 1  # second load read the products
    fits.PrimaryHDU(np.ones((8, 8), np.uint16)).writeto(raw / "extra_light.fits")
    datasets = load_night(raw)
    assert len(fake_calibration.calls) == 2
    assert datasets[0].meta["zp_header"].count("NRAW") == 1


@pytest.mark.filterwarnings("ignore:Some non-standard WCS keywords")
def test_session_restore_by_reference_rereads_products(tmp_path, fake_calibration):
    raw = fake_raw_dir(tmp_path / "raw")
    datasets = load_data(str(raw))
    dc = DataCollection(datasets)
    text = GlueSerializer(dc).dumps()
    assert '"path"' in text and "zp_wcs_header" in text
    restored = GlueUnSerializer.loads(text).object("__main__")
    assert len(fake_calibration.calls) == 1  # no recalibration on restore
    assert [d.label for d in restored] == [d.label for d in datasets]
    np.testing.assert_array_equal(restored[0]["flux"], datasets[0]["flux"])
    # whatever glue's WCS record keeps (no SIP unless a session saver adds it), ours has SIP
    assert wcs_from_meta(restored[0]).sip is not None


@pytest.mark.filterwarnings("ignore:Some non-standard WCS keywords")
def test_session_restore_tells_the_factory_through_glues_session_patch(tmp_path, monkeypatch,
                                                                       fake_calibration):
    """glue's public hooks, not its call stack, tell a factory that a session restore calls
    it: our session patch adds ``zp_restoring_session`` to the kwargs of the saved LoadLog,
    glue hands them back to the factory, and the factory then raises instead of reporting an
    error and returning nothing (glue's restore takes element [0] of the result). This fails
    if glue changes how it saves or restores factory-loaded data."""
    raw = fake_raw_dir(tmp_path / "raw")
    datasets = load_data(str(raw))
    assert datasets[0]._load_log.kwargs == {}
    text = GlueSerializer(DataCollection(datasets)).dumps()

    record = json.loads(text)
    marked = loader.mark_session_loads(record)
    assert len(marked) == 1
    log_record = record[marked[0]]
    assert log_record["_type"] == "glue.core.data_factories.helpers.LoadLog"
    assert log_record["kwargs"] == [[[loader.RESTORE_KWARG, True]]]
    assert loader.mark_session_loads(record) == marked  # marking twice changes nothing
    assert record[marked[0]]["kwargs"] == [[[loader.RESTORE_KWARG, True]]]

    calls = []
    real = loader._reporting_errors
    monkeypatch.setattr(loader, "_reporting_errors",
                        lambda path, load, kwargs: calls.append(kwargs) or real(path, load, kwargs))
    restored = GlueUnSerializer.loads(text).object("__main__")
    assert calls == [{loader.RESTORE_KWARG: True}]
    assert [d.label for d in restored] == [d.label for d in datasets]

    reported = []
    previous = loader.set_error_reporter(reported.append)
    try:
        import shutil

        shutil.rmtree(loader.products_dir_for(raw))  # products gone, raw folder gone too
        shutil.rmtree(raw)
        assert load_data(str(raw), factory=loader.raw_night_factory) == []  # GUI: reported
        assert len(reported) == 1 and "no such file or folder" in reported[0]
        with pytest.raises(InputError, match="no such file or folder"):
            GlueUnSerializer.loads(text).object("__main__")  # restore: raised, not [][0]
        assert len(reported) == 1
    finally:
        loader.set_error_reporter(previous)


def test_cancel_returns_no_data_and_leaves_no_manifest(tmp_path, fake_calibration):
    raw = fake_raw_dir(tmp_path / "raw")

    def cancel(done, total, message=""):
        raise Cancelled("user cancelled")

    previous = loader.set_task_runner(lambda task, title: task(cancel))
    try:
        assert loader.raw_night_factory(str(raw)) == []
    finally:
        loader.set_task_runner(previous)
    assert not (products_dir_for(raw) / loader.MANIFEST_NAME).exists()


def test_bad_paths_raise_input_errors(tmp_path, products_root):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not is_raw_night_dir(empty)
    with pytest.raises(InputError, match="no FITS frames"):
        load_night(empty)
    with pytest.raises(InputError, match="no such file"):
        load_night(tmp_path / "missing")
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(plain)
    with pytest.raises(InputError, match="not a calibrated product"):
        load_night(plain)


def test_deep_folders_are_not_scanned_forever(tmp_path):
    deep = tmp_path / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(deep / "x.fits")
    assert not is_raw_night_dir(tmp_path)
    assert is_raw_night_dir(tmp_path / "a" / "b")
    assert os.path.isdir(deep)


def test_real_raw_night_through_glue_factory(tmp_path, products_root):
    from glue_zeropoint.simulate import simulate_night

    raw = tmp_path / "raw night"
    simulate_night(raw, style="maxim", shape=(96, 96), n_bias=3, n_dark=3, n_flat=3,
                   lights=(("V", 20.0, 2),))
    before = _snapshot(raw)
    datasets = load_data(str(raw))
    lights = [d for d in datasets if d.meta["zp_kind"] == "light"]
    assert len(lights) == 2
    for data in lights:
        assert data.shape == (96, 96)
        assert data.meta["band"] == "V" and data.meta["exptime"] == 20.0
        assert data.coords is not None and data.coords.has_celestial
        assert np.nanmedian(data["uncertainty"]) > 0
    assert _snapshot(raw) == before


def test_restore_works_when_the_raw_folder_is_gone(tmp_path, fake_calibration):
    import shutil

    raw = fake_raw_dir(tmp_path / "raw")
    first = load_night(raw)
    shutil.rmtree(raw)
    again = load_night(raw)
    assert [d.label for d in again] == [d.label for d in first]
    assert len(fake_calibration.calls) == 1
