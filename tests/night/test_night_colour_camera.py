"""A night of a colour camera (a Bayer pattern in every raw header): calibrated as mosaics,
measured in the G channel (each 2x2 cell one pixel), its frames' band the channel's behind
their own filter, its zero points the channel's; and the same frames measured raw
(``--no-calibrate``), whose region files are in the mosaic's pixels."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from glue_zeropoint.night.outputs import write_night
from glue_zeropoint.night.run import measure_night
from glue_zeropoint.simulate import reference_catalog
from glue_zeropoint.simulate.extinction import DEFAULT_BANDS, write_extinction_night


@pytest.fixture(scope="module")
def colour_night(tmp_path_factory):
    base = tmp_path_factory.mktemp("colour_night")
    truth, lights = write_extinction_night(base / "raw", seed=7, n_per_band=3,
                                           bands={"V": DEFAULT_BANDS["V"]}, cloud=None)
    for path in sorted((base / "raw").glob("*.fit*")):
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["BAYERPAT"] = "RGGB"  # every frame: bias, dark, flat, light
    reference_catalog(truth.field, style="normalised").write(base / "catalog.ecsv")
    return base, truth, lights


def _lights_only(lights, folder):
    """A folder holding copies of the night's raw lights alone (no calibration frames)."""
    folder.mkdir()
    for lt in lights:
        (folder / lt["path"].name).write_bytes(lt["path"].read_bytes())
    return folder


def test_calibrated_colour_night_is_measured_in_its_green_channel(colour_night):
    base, truth, lights = colour_night
    out = base / "out"
    res = measure_night(base / "raw", str(base / "catalog.ecsv"), out=out,
                        band_map={"V+TG": "V"})
    write_night(res, out, plots=False)
    fr = res.frames
    assert set(fr["band"]) == {"V"} and set(fr["filter"]) == {"V+TG"}
    assert all("colour_G" in str(f) and "mosaic" not in str(f) for f in fr["flags"])
    assert any("colour camera measured in their G channel" in n for n in res.notes)
    products = sorted((out / "calibrated").glob("*_cal.fits"))
    assert products
    with fits.open(products[0]) as hdul:
        raw_shape = fits.getdata(lights[0]["path"]).shape
        assert hdul[0].data.shape == (raw_shape[0] // 2, raw_shape[1] // 2)
        assert hdul[0].header["CFACHAN"] == "G" and hdul[0].header["FILTER"] == "V+TG"
    # half of a star's light falls on green pixels: the channel's zero point is the
    # monochrome camera's minus 2.5 log10(2), within its error
    zp_truth = DEFAULT_BANDS["V"].zp0 - DEFAULT_BANDS["V"].k * np.asarray(fr["airmass"])
    ok = np.asarray(fr["status"]) == "ok"
    assert ok.sum() == len(lights)
    d = np.asarray(fr["zp"])[ok] - (zp_truth[ok] - 2.5 * np.log10(2.0))
    assert np.all(np.abs(d) < 3 * np.asarray(fr["zp_err_total"])[ok] + 0.03), d


def test_raw_colour_frames_measured_as_they_are_keep_mosaic_regions(colour_night):
    base, truth, lights = colour_night
    out = base / "out_raw"
    light_dir = _lights_only(lights, base / "lights_only")
    import os

    cwd = os.getcwd()
    os.chdir(base)  # a relative folder, as typed: the provenance keeps it absolute (Glue)
    try:
        res = measure_night("lights_only", None, out=out, calibrate=False)
    finally:
        os.chdir(cwd)
    assert res.provenance["raw_dir"] == str(light_dir.resolve())
    write_night(res, out, plots=False)
    fr = res.frames
    assert all("colour_G" in str(f) and "mosaic_0.5_0.5" in str(f) for f in fr["flags"])
    det = res.detections
    k = np.asarray(det["frame"]) == fr["frame"][0]
    xs, ys = np.asarray(det["x"])[k], np.asarray(det["y"])[k]
    raw_shape = fits.getdata(lights[0]["path"]).shape
    assert np.nanmax(xs) < raw_shape[1] / 2 and np.nanmax(ys) < raw_shape[0] / 2
    reg = (out / "regions" / (lights[0]["path"].stem + ".reg")).read_text().splitlines()
    circles = [ln for ln in reg if ln.startswith("circle(")]
    rx = np.array([float(c[7:].split(",")[0]) for c in circles])
    # ds9's 1-based pixels of the mosaic: 2 x + 0.5 + 1
    assert np.allclose(np.sort(rx), np.sort(2 * xs + 1.5), atol=1e-3)
    # the truth's stars are where the mosaic file has them
    t = Table(truth.field.stars)
    tx, ty = np.asarray(t["x"], float), np.asarray(t["y"], float)
    on = (tx > 10) & (ty > 10) & (tx < raw_shape[1] - 10) & (ty < raw_shape[0] - 10)
    bright = np.flatnonzero(on)[np.argsort(np.asarray(t["mag_V"])[on])[:5]]
    assert len(bright) == 5
    for i in bright:
        mx, my = float(t["x"][i]), float(t["y"][i])
        d = np.hypot(2 * xs + 0.5 - mx, 2 * ys + 0.5 - my)
        assert np.nanmin(d) < 1.0, (mx, my)


def test_glue_shows_the_channel_a_night_measured_from_mosaic_products(colour_night, tmp_path):
    """Products calibrated as mosaics (--cfa none), then a night of them in G: a click on a
    frame in Glue shows its G channel (half the size), where its stars are, not the mosaic;
    a mosaic of the same frame already in the session is not taken for it."""
    from glue.core import DataCollection

    from glue_zeropoint.calibration import calibrate_night
    from glue_zeropoint.glue import night as gnight
    from glue_zeropoint.glue.loader import ccd_to_data

    base, truth, lights = colour_night
    cal = tmp_path / "cal"
    calibrate_night(base / "raw", cal, cfa="none")
    out = tmp_path / "night"
    res = measure_night(cal, None, out=out, calibrate=False)
    write_night(res, out, plots=False)
    assert all("mosaic_0.5_0.5" in str(f) for f in res.frames["flags"])
    night, stars = gnight.load_night_results(out)
    dc = DataCollection([night, stars])
    from glue_zeropoint.calibration import read_product

    product = sorted(cal.glob("*_cal.fits"))[0]
    dc.append(ccd_to_data(read_product(product), product.stem, product=product))  # a mosaic
    row = int(np.flatnonzero(np.asarray(night["file"]).astype(str) == product.name)[0]) \
        if product.name in np.asarray(night["file"]).astype(str) else 0
    image, frame_stars = gnight.load_frame(dc, night, row)
    mosaic_shape = read_product(product).shape
    assert image.shape == (mosaic_shape[0] // 2, mosaic_shape[1] // 2)
    assert np.nanmax(np.asarray(frame_stars["x"])) < image.shape[1]


def test_frames_that_disagree_on_their_colour_pattern_are_named():
    from astropy.table import Table as T

    from glue_zeropoint.night.run import _colour_note

    frames = T({"flags": ["colour_G,pattern_from_sky", "colour_G", "colour_G,raw", ""]})
    notes = _colour_note(frames)
    assert any("3 frame(s) of a colour camera" in n for n in notes)
    assert any("turned by the sky in 1 of the 3 colour frames only" in n for n in notes)
    frames = T({"flags": ["colour_G,pattern_from_sky", "colour_G,pattern_from_sky"]})
    assert not any("only" in n for n in _colour_note(frames))


def test_a_saved_session_reopens_a_raw_colour_frame_as_its_channel(colour_night, glue_app,
                                                                    tmp_path):
    """A frame of a raw colour night clicked in Glue (its G channel, loaded from the raw
    mosaic) survives a saved session as that channel, its stars still on their stars."""
    from glue_qt.app import GlueApplication

    from glue_zeropoint.glue import night as gnight

    base, truth, lights = colour_night
    out = tmp_path / "night"
    light_dir = _lights_only(lights, tmp_path / "lights")
    write_night(measure_night(light_dir, None, out=out, calibrate=False), out, plots=False)
    night, stars = gnight.load_night_results(out)
    dc = glue_app.data_collection
    dc.extend([night, stars])
    image, frame_stars = gnight.load_frame(dc, night, 0)
    raw_shape = fits.getdata(lights[0]["path"]).shape
    assert image.shape == (raw_shape[0] // 2, raw_shape[1] // 2)
    for include in (True, False):
        path = tmp_path / f"colour_{include}.glu"
        glue_app.save_session(str(path), include_data=include)
        restored = GlueApplication.restore_session(str(path))
        try:
            again = next(d for d in restored.data_collection if d.label == image.label)
            assert again.shape == image.shape
            st = next(d for d in restored.data_collection
                      if d.label == frame_stars.label)
            assert np.nanmax(np.asarray(st["x"])) < image.shape[1]
        finally:
            restored.close()
